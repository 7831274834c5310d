"""Write each role's variable table into its README from meta/argument_specs.yml.

    python tools/role_docs.py          # rewrite every role's table (make docs)
    python tools/role_docs.py --check  # exit 1, naming the READMEs, if any table is stale

The table sits between BEGIN and END in roles/<role>/README.md. Each row is one
option of an entry point: name, type, default (argument_specs', else the role's
defaults/main.yml), range (the description's "Range: ..." item, read by the
collection's own parser in plugins/filter/role_inputs.py) or choices, and the
rest of the description. tests/test_role_docs.py fails when a README differs
from what this writes, so the specs stay the one source of each variable's facts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from generated_blocks import replace_block

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR / "plugins" / "filter"))
from role_inputs import RANGE_PREFIX, option_range, range_words  # noqa: E402

ROLES = ["rabbitmq", "haproxy", "celery_worker", "pki", "firewall", "diagnose", "monitoring", "node_exporter", "lab"]
BEGIN = "<!-- BEGIN generated variables: make docs -->"
END = "<!-- END generated variables -->"
# Ansible's documentation markup in argument specs: O(option), C(code), V(value), I(italic).
_MARKUP = re.compile(r"\b([OCVI])\(([^()]*)\)")


def readme(role: str) -> Path:
    return PROJECT_DIR / "roles" / role / "README.md"


def markdown(text: str) -> str:
    """Ansible markup as Markdown, on one line, safe inside a table cell."""
    text = _MARKUP.sub(lambda m: f"*{m[2]}*" if m[1] == "I" else f"`{m[2]}`", text)
    return " ".join(text.split()).replace("|", "\\|")


def shown_default(value: object) -> str:
    """A default as YAML would read it back, in a code span."""
    if isinstance(value, str):
        text = value if value else '""'
    else:
        text = json.dumps(value) if isinstance(value, list | dict) else yaml.safe_dump(value).split("\n")[0]
    escaped = text.replace("|", "\\|")
    return f"`{escaped}`"


def description_items(option: Mapping[str, Any]) -> list[str]:
    description = option.get("description", [])
    return [description] if isinstance(description, str) else list(description)


def range_cell(option: Mapping[str, Any]) -> str:
    if "choices" in option:
        return "one of " + ", ".join(f"`{choice}`" for choice in option["choices"])
    intervals = option_range(option)
    return range_words(intervals) if intervals else ""


def row(name: str, option: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    kind = option.get("type", "str")
    if kind == "list" and "elements" in option:
        kind = f"list of {option['elements']}"
    if option.get("required"):
        default = "required"
    elif "default" in option:
        default = shown_default(option["default"])
    elif name in defaults:
        default = shown_default(defaults[name])
    else:
        default = ""
    text = " ".join(item for item in description_items(option) if not item.startswith(RANGE_PREFIX))
    return f"| `{name}` | {kind} | {default} | {range_cell(option)} | {markdown(text)} |"


def specs(role: str) -> dict[str, Any]:
    """The role's entry points and their specs, from meta/argument_specs.yml."""
    return yaml.safe_load((PROJECT_DIR / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def option_names(role: str) -> set[str]:
    return {name for spec in specs(role).values() for name in spec.get("options", {})}


def table(role: str) -> str:
    """The generated block of one role, markers included."""
    role_dir = PROJECT_DIR / "roles" / role
    entry_points = specs(role)
    defaults = yaml.safe_load((role_dir / "defaults" / "main.yml").read_text()) or {}
    lines = [BEGIN, "", "Generated from `meta/argument_specs.yml` by `make docs`: edit the specs, not this table."]
    for entry_point, spec in entry_points.items():
        if len(entry_points) > 1:
            tasks = "tasks/main.yml" if entry_point == "main" else f"tasks/{entry_point}.yml"
            lines += ["", f"Entry point `{entry_point}` ({tasks}): {markdown(spec.get('short_description', ''))}."]
        lines += ["", "| variable | type | default | range | description |", "|---|---|---|---|---|"]
        lines += [row(name, option, defaults) for name, option in spec.get("options", {}).items()]
    return "\n".join([*lines, "", END])


def with_table(role: str, text: str) -> str:
    """The README text with its generated block replaced by a fresh one."""
    return replace_block(text, BEGIN, END, table(role))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; fail if a README is stale")
    args = parser.parse_args(argv)
    stale = []
    for role in ROLES:
        current = readme(role).read_text()
        fresh = with_table(role, current)
        if fresh != current:
            stale.append(str(readme(role).relative_to(PROJECT_DIR)))
            if not args.check:
                readme(role).write_text(fresh)
    if args.check and stale:
        print("stale variable tables (run `make docs`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
