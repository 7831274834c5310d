"""Each role's README carries exactly the variable table tools/role_docs.py writes from its argument specs."""

from __future__ import annotations

from pathlib import Path

import pytest
import role_docs
from generated_blocks import replace_block


@pytest.mark.parametrize("role", role_docs.ROLES)
def test_the_readme_table_is_what_the_specs_generate(role: str) -> None:
    text = role_docs.readme(role).read_text()
    assert role_docs.with_table(role, text) == text, f"roles/{role}/README.md's variable table is stale: `make docs`"


@pytest.mark.parametrize("role", role_docs.ROLES)
def test_every_option_has_a_row(role: str) -> None:
    table = role_docs.table(role)
    for name in role_docs.option_names(role):
        assert f"| `{name}` |" in table


def test_a_row_shows_type_default_range_and_description() -> None:
    option = {"type": "int", "description": ["Seconds C(x) waits for O(y).", "Range: 0, 5.."]}
    assert role_docs.row("r_wait", option, {"r_wait": 10}) == (
        "| `r_wait` | int | `10` | 0 or at least 5 | Seconds `x` waits for `y`. |"
    )
    choices = {"type": "str", "choices": ["a", "b"], "default": "", "description": "One | two."}
    assert role_docs.row("r_pick", choices, {}) == '| `r_pick` | str | `""` | one of `a`, `b` | One \\| two. |'


def test_a_stale_table_is_seen(tmp_path: Path) -> None:
    text = role_docs.readme("lab").read_text()
    stale = replace_block(text, role_docs.BEGIN, role_docs.END, f"{role_docs.BEGIN}\n| old |\n{role_docs.END}")
    assert role_docs.with_table("lab", stale) == text
    assert role_docs.with_table("lab", stale) != stale


def test_markers_must_be_present() -> None:
    with pytest.raises(ValueError, match="markers"):
        role_docs.with_table("lab", "# no table here\n")


@pytest.mark.parametrize(
    ("role", "playbook"),
    [("rabbitmq", "rabbitmq.yml"), ("haproxy", "haproxy.yml"), ("celery_worker", "celery_workers.yml")],
)
def test_the_example_playbook_is_the_shipped_one(role: str, playbook: str) -> None:
    """The README's example is the playbook the collection runs, so it runs as written."""
    shipped = (role_docs.PROJECT_DIR / "playbooks" / playbook).read_text()
    assert f"```yaml\n{shipped}```" in role_docs.readme(role).read_text()


def test_check_mode_passes_on_the_committed_readmes() -> None:
    assert role_docs.main(["--check"]) == 0
