"""Type and range checks of a role's int and bool variables, read from its meta/argument_specs.yml.

A value may come from YAML (an int or a bool), from JSON extra vars (the
same), or from `-e name=value` (always a string). The role's templates and
conditions read every such variable through `| int` or `| bool`, so a string
works as its YAML twin, provided it reads as one: these checks refuse,
before any change, a value that `| int` or `| bool` would misread.

- int: an int (not a bool), a whole float (5.0, from JSON), or a string of
  digits with an optional sign, surrounding blanks allowed. Refused: "abc",
  "5.5", "1e3", true. (Ansible's argument-spec validation lets "1e3" and true
  through, and `| int` reads "1e999" as 0.)
- bool: a bool, 0 or 1, or one of the strings true/false, yes/no, on/off,
  1/0 in any case: exactly what `| bool` reads without a deprecation warning.
  Refused: "maybe", "y", "t", " yes" (argument-spec validation takes "y" as
  true, `| bool` as false).
- range: an int option's description may hold one item "Range: <spec>"
  (a list item of its own, no final period), where <spec> is a
  comma-separated list of N, N..M, N.. or ..M: "Range: 0, 5.." is 0 or at
  least 5.

One file for every role of the collection: each role's tasks/validate.yml
calls it as celery_fleet.fleet.role_input_problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

Interval = tuple[int | None, int | None]

_INTEGER = re.compile(r"^\s*[-+]?[0-9]+\s*$")
_INTERVAL = re.compile(r"^(?P<low>-?[0-9]+)?(?P<dots>\.\.)?(?P<high>-?[0-9]+)?$")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
RANGE_PREFIX = "Range: "


def parse_range(spec: str) -> list[Interval]:
    """'0, 5..' -> [(0, 0), (5, None)]; an interval's missing end is open."""
    intervals: list[Interval] = []
    for item in spec.split(","):
        found = _INTERVAL.match(item.strip())
        if not found or not (found["low"] or found["high"]) or (found["high"] and not found["dots"]):
            raise AnsibleFilterError(f"bad range {spec!r} in meta/argument_specs.yml: use N, N..M, N.. or ..M")
        low = int(found["low"]) if found["low"] else None
        high = int(found["high"]) if found["high"] else None
        if low is not None and high is not None and low > high:
            raise AnsibleFilterError(f"bad range {spec!r} in meta/argument_specs.yml: {low} is above {high}")
        intervals.append((low, low) if not found["dots"] else (low, high))
    return intervals


def option_range(option: Mapping[str, Any]) -> list[Interval]:
    """The intervals an option's description gives in its "Range: ..." item (none: any int)."""
    description = option.get("description", [])
    items = [description] if isinstance(description, str) else list(description)
    specs = [item[len(RANGE_PREFIX) :] for item in items if item.startswith(RANGE_PREFIX)]
    return parse_range(specs[0]) if specs else []


def range_words(intervals: Sequence[Interval]) -> str:
    """[(0, 0), (5, None)] -> '0 or at least 5'."""
    words = []
    for low, high in intervals:
        if low is not None and low == high:
            words.append(str(low))
        elif high is None:
            words.append(f"at least {low}")
        elif low is None:
            words.append(f"at most {high}")
        else:
            words.append(f"from {low} to {high}")
    return " or ".join(words)


def in_range(number: int, intervals: Sequence[Interval]) -> bool:
    return not intervals or any(
        (low is None or number >= low) and (high is None or number <= high) for low, high in intervals
    )


def as_int(value: object) -> int | None:
    """The int `| int` reads from value, or None where it would misread it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    return None


def as_bool(value: object) -> bool | None:
    """The bool `| bool` reads from value, or None where it would misread it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOLEANS.get(value.lower())
    return None


def shown(value: object) -> str:
    """A value as the user gave it: strings quoted, the rest as YAML writes them."""
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def problem(name: str, option: Mapping[str, Any], value: object) -> str | None:
    """Why value is refused for the option, naming both; None if it is fine."""
    if option.get("type") == "bool":
        if as_bool(value) is None:
            return f"{name} must be a boolean: true or false (or yes/no, on/off, 1/0), got {shown(value)}."
        return None
    if option.get("type") != "int":
        return None
    intervals = option_range(option)
    expected = f"an integer, {range_words(intervals)}" if intervals else "an integer"
    number = as_int(value)
    if number is None or not in_range(number, intervals):
        return f"{name} must be {expected}, got {shown(value)}."
    return None


def role_input_problems(options: Mapping[str, Mapping[str, Any]], values: Mapping[str, object]) -> list[str]:
    """One message per value in `values` that its option in `options` refuses (no_log options: never shown)."""
    problems = []
    for name, value in values.items():
        option = options.get(name)
        if option is None or option.get("no_log"):
            continue
        found = problem(name, option, value)
        if found:
            problems.append(found)
    return problems


def role_input_names(options: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The int and bool options, the ones role_input_problems checks."""
    return [name for name, option in options.items() if option.get("type") in ("int", "bool")]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"role_input_problems": role_input_problems, "role_input_names": role_input_names}
