"""Checks and rendering of the roles' extension points: settings a user adds without forking a template.

- rabbitmq_extra_config (rabbitmq role): a dict of rabbitmq.conf keys to
  values, rendered after the role's own keys. rabbitmq.conf is parsed by
  cuttlefish: a key is dot-separated words of letters, digits, `_` and `-`
  (a dot inside a word escaped as `\\.`); a value runs to the end of the line
  or to a `#`, which starts a comment unless the value is in single quotes.
  Refused: a key of any other form, a key the role sets itself (its variable
  is named), a value that is not a string, number or boolean, or that holds
  a line break (it would start another setting).
- haproxy_extra_<section> (haproxy role): lists of lines rendered at the end
  of a section of haproxy.cfg. Refused: anything but a non-empty string, a
  line break, or a line starting with a section keyword or a `.if`-style
  directive: either would move the lines after it into another section.

Neither checks that RabbitMQ or HAProxy knows a key or a keyword: HAProxy's
`haproxy -c` does (the template's validate), and RabbitMQ refuses to start
with a key it does not know (the rolling restart stops at that first node).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

try:  # As Ansible loads it, a plugin of the collection; role_inputs.shown quotes values the same way everywhere.
    from ansible_collections.celery_fleet.fleet.plugins.filter.role_inputs import shown
except ImportError:  # The unit tests import both from plugins/filter.
    from role_inputs import shown

# cuttlefish's conf_parse.peg: key <- word ("." word)*; word <- ("\\." / [A-Za-z0-9_-])+
_CONF_WORD = r"(?:\\\.|[A-Za-z0-9_-])+"
CONF_KEY = re.compile(rf"^{_CONF_WORD}(?:\.{_CONF_WORD})*$")
# A line of the role's rabbitmq.conf.j2 that sets a key from variables: "heartbeat = {{ rabbitmq_heartbeat ...",
# "listeners.ssl.default = {{ rabbitmq_listen_address }}:{{ rabbitmq_amqps_port | int }}" (the last one names it).
_ROLE_SETTING = re.compile(r"^(?P<key>[\w.-]+) = (?P<value>.*\{\{.*)$", re.MULTILINE)
_ROLE_VARIABLE = re.compile(r"\brabbitmq_\w+")
# Section keywords of HAProxy 2.6-3.x (cfgparse's registered sections), each of which ends the section before it.
HAPROXY_SECTIONS = frozenset(
    {
        "global",
        "defaults",
        "frontend",
        "backend",
        "listen",
        "userlist",
        "peers",
        "mailers",
        "resolvers",
        "program",
        "http-errors",
        "ring",
        "cache",
        "fcgi-app",
        "log-forward",
        "namespace_list",
        "crt-store",
        "traces",
        "acme",
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def conf_keys(template: str) -> dict[str, str]:
    """The rabbitmq.conf keys the role's template sets, each with the variable that sets it."""
    keys = {}
    for found in _ROLE_SETTING.finditer(template):
        variables = _ROLE_VARIABLE.findall(found["value"])
        if variables:
            keys[found["key"]] = variables[-1]
    return keys


def conf_value(value: object) -> str:
    """A value as rabbitmq.conf needs it: booleans in lower case, a value holding `#` in single quotes."""
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    return f"'{text}'" if "#" in text else text


def conf_value_problem(value: object) -> str | None:
    """Why a rabbitmq.conf value cannot be written on one line, or None."""
    if value is None or isinstance(value, (dict, list)) or not isinstance(value, (str, int, float)):
        return "must be a string, a number or a boolean"
    text = str(value)
    if not text.strip():
        return "must not be empty"
    if _CONTROL.search(text):
        return "must be one line (no line break or control character)"
    if "#" in text and "'" in text:
        return "cannot hold both # and ' (rabbitmq.conf quotes a value with # in single quotes)"
    return None


def extra_conf_problems(config: object, name: str, role_keys: Mapping[str, str]) -> list[str]:
    """One message per bad entry of a dict of rabbitmq.conf settings, naming the variable, the key and the fix."""
    if not isinstance(config, Mapping):
        return [
            f"{name} must be a dict of rabbitmq.conf keys to values, got {shown(config)}. From the command line "
            f'give it as JSON: -e \'{{"{name}": {{"log.file.level": "info"}}}}\'.'
        ]
    problems = []
    for key, value in config.items():
        if not isinstance(key, str) or not CONF_KEY.match(key):
            problems.append(
                f"{name}: {shown(key)} is not a rabbitmq.conf key. A key is words of letters, digits, _ and - "
                "joined by dots, e.g. log.file.level; fix or remove it."
            )
        elif key in role_keys:
            problems.append(
                f"{name}: {key!r} is set by the role itself: remove the key and set "
                f"{role_keys[key]}: {conf_value(value)} instead."
            )
        found = conf_value_problem(value)
        if found:
            problems.append(f"{name}[{shown(key)}] {found}, got {shown(value)}.")
    return problems


def extra_lines_problems(values: Mapping[str, object]) -> list[str]:
    """One message per bad line of each haproxy_extra_* list (by variable name), naming the variable and line."""
    problems = []
    for name, lines in values.items():
        if not isinstance(lines, list):
            problems.append(
                f"{name} must be a list of haproxy.cfg lines, got {shown(lines)}. From the command line give it "
                f'as JSON: -e \'{{"{name}": ["timeout queue 10s"]}}\'.'
            )
            continue
        for index, line in enumerate(lines):
            found = extra_line_problem(line)
            if found:
                problems.append(f"{name}[{index}] {found}, got {shown(line)}.")
    return problems


def extra_line_problem(line: Any) -> str | None:
    """Why a line cannot be added to a section of haproxy.cfg, or None."""
    if not isinstance(line, str) or not line.strip():
        return "must be a non-empty string (one haproxy.cfg line)"
    if _CONTROL.search(line):
        return "must be one line (no line break or control character); give each line as its own item"
    first = line.split()[0]
    if first.lower() in HAPROXY_SECTIONS:
        return (
            f"starts a new section ({first!r}) and would move the role's lines after it into that section; "
            "add only lines of this section"
        )
    if first.startswith("."):
        return f"is a directive ({first!r}) that spans lines; add plain lines of this section"
    return None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "conf_keys": conf_keys,
            "conf_value": conf_value,
            "extra_conf_problems": extra_conf_problems,
            "extra_lines_problems": extra_lines_problems,
        }
