"""haproxy/haproxy.cfg is exactly what the haproxy role renders for the reference inventory."""

from pathlib import Path

from fleetlib.playbooks import run_playbook
from fleetlib.project import PROJECT_DIR

REFERENCE = PROJECT_DIR / "haproxy" / "haproxy.cfg"


def render_reference(dest: Path) -> str:
    result = run_playbook("tools/haproxy-reference.yml", None, "--extra-vars", f"reference_dest={dest}")
    assert result.returncode == 0, result.stdout + result.stderr
    return dest.read_text()


def test_reference_matches_the_role(tmp_path: Path) -> None:
    rendered = render_reference(tmp_path / "haproxy.cfg")
    assert rendered == REFERENCE.read_text(), "haproxy/haproxy.cfg drifted from the role: run `make haproxy-reference`"


def test_reference_has_the_protections() -> None:
    lines = [line.strip() for line in REFERENCE.read_text().splitlines()]
    directives = [line for line in lines if line and not line.startswith("#")]
    assert "option nolinger" in directives
    assert "tcp-check send-binary 414d515000000901" in directives
    assert any("on-marked-down shutdown-sessions" in line for line in directives if line.startswith("default-server"))
    assert "balance leastconn" in directives


def test_each_sections_extra_lines_have_an_example() -> None:
    """The reference shows, in a comment at the end of each section, how to add a line to it."""
    text = REFERENCE.read_text()
    for name in ("haproxy_extra_global", "haproxy_extra_defaults", "haproxy_extra_frontend", "haproxy_extra_backend"):
        assert f"    # More lines for this section: {name}, e.g.\n    #   {name}: [" in text, name


def test_every_directive_is_explained() -> None:
    """Each directive (or run of related ones) follows a comment, as the reference promises."""
    unexplained = []
    previous = ""
    for line in REFERENCE.read_text().splitlines():
        stripped = line.strip()
        is_directive = line.startswith("    ") and stripped and not stripped.startswith("#")
        if is_directive and not previous.startswith(("#", "option", "timeout", "tcp-check", "server", "user")):
            unexplained.append(stripped)
        previous = stripped
    assert unexplained == []
