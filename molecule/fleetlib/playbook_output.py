"""What a playbook run printed (the default callback's text): its recap, the tasks it ran and changed, its diffs."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable

RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")
TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.+?)\] \*")
CHANGED_LINE = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")
FAILED_LINE = re.compile(r"^(?:fatal|failed): \[")


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP's counts per host."""
    lines = output[output.rindex("PLAY RECAP") :].splitlines()[1:]
    found = (RECAP_LINE.match(line.strip()) for line in lines)
    return {
        row["host"]: {key: int(value) for key, value in (pair.split("=") for pair in row["counts"].split())}
        for row in found
        if row
    }


def changed_tasks(output: str) -> set[tuple[str, str]]:
    """(task name, host) of every task or handler that reported a change."""
    task, changed = "", set()
    for line in output.splitlines():
        if header := TASK_HEADER.match(line):
            task = header["name"]
        elif result := CHANGED_LINE.match(line):
            changed.add((task, result["host"]))
    return changed


def failures(output: str) -> str:
    """Each failed task's name and its error (the result's lines up to the next blank one), for a test's message:
    a run's tail may not hold them."""
    task, found, in_failure = "", [], False
    for line in output.splitlines():
        if header := TASK_HEADER.match(line):
            task, in_failure = header["name"], False
        elif FAILED_LINE.match(line):
            found.append(f"TASK [{task}]")
            in_failure = True
        if in_failure:
            in_failure = bool(line.strip()) and len(found) < 200
            found.append(line[:2000])
    return "\n".join(found) or output[-3000:]


def tasks_run(output: str) -> set[str]:
    return {header["name"] for line in output.splitlines() if (header := TASK_HEADER.match(line))}


def diff_lines(output: str) -> list[str]:
    """The - and + lines of every diff hunk in the output."""
    lines, in_hunk = [], False
    for line in output.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            lines.append(line)
        elif not line.startswith(" "):
            in_hunk = False
    return lines


def _as_is(output: str) -> str:
    return output


def assert_ran_everywhere(
    result: subprocess.CompletedProcess[str], hosts: Iterable[str], show: Callable[[str], str] = _as_is
) -> dict[str, dict[str, int]]:
    """The run succeeded, reached these hosts (one per tier, say) and failed nowhere; its recap.

    `show` shapes the output an assertion prints (e.g. with secrets replaced by their names)."""
    assert result.returncode == 0, show(result.stdout + result.stderr)
    counts = recap(result.stdout)
    assert set(counts) >= set(hosts), show(result.stdout)
    assert {host: row["failed"] for host, row in counts.items() if row["failed"]} == {}, show(result.stdout)
    return counts


def assert_nothing_changed(
    result: subprocess.CompletedProcess[str], hosts: Iterable[str], show: Callable[[str], str] = _as_is
) -> dict[str, dict[str, int]]:
    """As assert_ran_everywhere, and no host reports a change; its recap."""
    counts = assert_ran_everywhere(result, hosts, show)
    assert {host: row["changed"] for host, row in counts.items() if row["changed"]} == {}, show(result.stdout)
    return counts
