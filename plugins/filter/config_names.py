"""Names that the roles write into configuration files and command lines, checked before any change.

A pool's name becomes a Supervisor section (`[program:celery-NAME]`) and a
file name; its queues are joined with commas onto the worker's command line
and declared on the brokers; a plugin's name is an Erlang atom in
`enabled_plugins`. A name with a space, a comma, a bracket or a line break
would silently produce another file than the one meant (or another program,
or another queue list), so each is held to what its reader accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

# Supervisor program names and file names: the role adds the prefix "celery-".
POOL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# AMQP queue names reach `celery -Q a,b` (no commas or spaces) and RabbitMQ (at most 255 bytes; "amq." is reserved).
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,255}")
# Erlang atoms as RabbitMQ's plugins are named.
PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _name_problem(variable: str, value: Any, pattern: re.Pattern[str], rule: str) -> list[str]:
    if isinstance(value, str) and pattern.fullmatch(value):
        return []
    return [f"{variable}: {value!r} is not a valid name ({rule})."]


def celery_worker_pool_problems(pools: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every problem with the pools' names and queue names, each naming the entry and the rule."""
    problems: list[str] = []
    names = [pool.get("name") for pool in pools]
    for index, pool in enumerate(pools):
        where = f"celery_worker_pools[{index}]"
        problems += _name_problem(f"{where}.name", pool.get("name"), POOL_NAME,
                                  "lower-case letters, digits, '_' and '-', starting with a letter or digit, "
                                  "at most 63 characters")  # fmt: skip
        queues = pool.get("queues")
        if not isinstance(queues, list) or not queues:
            problems.append(f"{where}.queues must be a non-empty list of queue names.")
            continue
        for position, queue in enumerate(queues):
            problems += _name_problem(f"{where}.queues[{position}]", queue, QUEUE_NAME,
                                      "letters, digits, '_', '.', ':', '@' and '-', at most 255")  # fmt: skip
            if isinstance(queue, str) and queue.startswith("amq."):
                problems.append(f"{where}.queues[{position}]: {queue!r} starts with 'amq.', which RabbitMQ reserves.")
    duplicates = sorted({name for name in names if isinstance(name, str) and names.count(name) > 1})
    problems += [
        f"celery_worker_pools: the name {name!r} is used twice; each pool is its own program." for name in duplicates
    ]
    return problems


def rabbitmq_plugin_problems(plugins: Sequence[Any]) -> list[str]:
    return [
        problem
        for index, plugin in enumerate(plugins)
        for problem in _name_problem(
            f"rabbitmq_plugins[{index}]",
            plugin,
            PLUGIN_NAME,
            "a plugin name: lower-case letters, digits and '_', e.g. rabbitmq_prometheus",
        )
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "celery_worker_pool_problems": celery_worker_pool_problems,
            "rabbitmq_plugin_problems": rabbitmq_plugin_problems,
        }
