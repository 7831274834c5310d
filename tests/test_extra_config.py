"""The roles' extension points (plugins/filter/extra_config.py) and where the haproxy template puts the lines."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import extra_config
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
ROLE_KEYS = extra_config.conf_keys((PROJECT_DIR / "roles/rabbitmq/templates/rabbitmq.conf.j2").read_text())
SECTIONS = {"global": "global", "defaults": "defaults", "frontend": "frontend amqp", "backend": "backend rabbitmq"}


def conf_problems(config: object) -> list[str]:
    return extra_config.extra_conf_problems(config, "rabbitmq_extra_config", ROLE_KEYS)


def test_the_role_keys_come_from_the_template_with_their_variables() -> None:
    assert ROLE_KEYS["heartbeat"] == "rabbitmq_heartbeat"
    # The last variable of the line names the key: the listener's port, not its address.
    assert ROLE_KEYS["listeners.tcp.default"] == "rabbitmq_amqp_port"
    assert ROLE_KEYS["listeners.ssl.default"] == "rabbitmq_amqps_port"
    # Set through a format: still the role's.
    assert ROLE_KEYS["vm_memory_high_watermark.relative"] == "rabbitmq_memory_high_watermark_percent"
    assert len(ROLE_KEYS) == 17


@pytest.mark.parametrize(
    "key",
    ["log.file.level", "collect_statistics_interval", "auth_backends.1", "log.exchange", r"a\.b.c", "mqtt-x"],
)
def test_rabbitmq_conf_keys_are_accepted(key: str) -> None:
    assert conf_problems({key: "info"}) == []


@pytest.mark.parametrize("key", ["log file", "log..file", ".log", "log.", "log.*.level", "a=b", "", "x#y", 5])
def test_what_is_not_a_rabbitmq_conf_key_is_refused(key: object) -> None:
    [problem] = conf_problems({key: "info"})
    assert problem.startswith("rabbitmq_extra_config: ")
    assert "is not a rabbitmq.conf key" in problem
    assert repr(key) in problem


def test_a_key_the_role_sets_names_its_variable() -> None:
    assert conf_problems({"heartbeat": 30}) == [
        "rabbitmq_extra_config: 'heartbeat' is set by the role itself: remove the key and set rabbitmq_heartbeat: 30 "
        "instead."
    ]


@pytest.mark.parametrize("value", [None, "", "  ", "a\nb", "a\rb", {"a": 1}, [1], "it's #1"])
def test_values_that_are_not_one_line_scalars_are_refused(value: object) -> None:
    [problem] = conf_problems({"log.file.level": value})
    assert problem.startswith("rabbitmq_extra_config['log.file.level'] ")
    assert extra_config.shown(value) in problem


@pytest.mark.parametrize(
    ("value", "written"), [(0.6, "0.6"), (True, "true"), (False, "false"), (5, "5"), ("info", "info"), ("a#b", "'a#b'")]
)
def test_values_are_written_as_rabbitmq_conf_reads_them(value: object, written: str) -> None:
    assert conf_problems({"log.file.level": value}) == []
    assert extra_config.conf_value(value) == written


@pytest.mark.parametrize("config", ["log.file.level=info", ["log.file.level"], None])
def test_rabbitmq_extra_config_must_be_a_dict(config: object) -> None:
    [problem] = conf_problems(config)
    assert problem.startswith("rabbitmq_extra_config must be a dict")
    assert "-e '{" in problem


@pytest.mark.parametrize(
    "line", ["nbthread 2", "  timeout queue 10s", "tcp-request connection reject unless { src 10.0.0.0/8 }", "# note"]
)
def test_haproxy_lines_are_accepted(line: str) -> None:
    assert extra_config.extra_lines_problems({"haproxy_extra_global": [line]}) == []


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("", "non-empty string"),
        ("   ", "non-empty string"),
        (5, "non-empty string"),
        ({"maxconn": 5}, "non-empty string"),
        ("maxconn 5\nbackend evil", "one line"),
        ("maxconn 5\r", "one line"),
        ("backend other", "starts a new section ('backend')"),
        ("  listen stats", "starts a new section ('listen')"),
        ("Frontend x", "starts a new section"),
        ("resolvers dns", "starts a new section"),
        (".if defined(X)", "spans lines"),
    ],
)
def test_haproxy_lines_that_would_break_the_file_are_refused(line: object, why: str) -> None:
    [problem] = extra_config.extra_lines_problems({"haproxy_extra_backend": ["maxconn 5", line]})
    assert problem.startswith("haproxy_extra_backend[1] ")
    assert why in problem
    assert problem.endswith(f"got {extra_config.shown(line)}.")


@pytest.mark.parametrize("lines", ["maxconn 5", {"maxconn": 5}, None])
def test_haproxy_extra_lines_must_be_a_list(lines: object) -> None:
    [problem] = extra_config.extra_lines_problems({"haproxy_extra_defaults": lines})
    assert problem.startswith("haproxy_extra_defaults must be a list")
    assert "-e '{" in problem


def sections(config: str) -> dict[str, list[str]]:
    """The directives of each section of a haproxy.cfg, by its header line."""
    found: dict[str, list[str]] = {}
    current = ""
    for line in config.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            current = line
            found[current] = []
        elif line.strip() and not line.strip().startswith("#") and current:
            found[current].append(line.strip())
    return found


def test_each_sections_extra_lines_end_that_section(tmp_path: Path) -> None:
    extra = {
        f"haproxy_extra_{section}": [f"# {section} marker", f"  timeout queue {n}s "]
        for n, section in enumerate(SECTIONS, 1)
    }
    dest = tmp_path / "haproxy.cfg"
    subprocess.run(
        ["ansible-playbook", "tools/haproxy-reference.yml", "-e", f"reference_dest={dest}", "-e", json.dumps(extra)],
        cwd=PROJECT_DIR,
        env={**os.environ, "ANSIBLE_CONFIG": str(PROJECT_DIR / "ansible.cfg")},
        check=True,
        capture_output=True,
    )
    rendered = sections(dest.read_text())
    for n, (section, header) in enumerate(SECTIONS.items(), 1):
        assert rendered[header][-1] == f"timeout queue {n}s", (section, rendered[header])
    assert f"    # {'backend'} marker\n" in dest.read_text()
