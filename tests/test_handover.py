"""The handover protocol's files and its command line (celery_fleet_app.handover), in a directory of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from celery_fleet_app import handover
from celery_fleet_app.handover import Request


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has ended and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def run(directory: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The command line's one JSON line."""
    assert handover.main(["--directory", str(directory), *argv]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    return json.loads(line)


def request(directory: Path, *, move: bool = False, nodes: list[str] | None = None, rid: str = "r1") -> Request:
    written = Request(id=rid, until=time.time() + 60, nodes=nodes, move=move)
    handover.write_request(directory, written)
    return written


def test_a_request_targets_its_nodes_until_it_runs_out() -> None:
    everyone = Request(id="r1", until=100.0)
    assert everyone.targets("w1@a")
    assert everyone.targets("w2@a")
    some = Request(id="r1", until=100.0, nodes=["w1@a"])
    assert some.targets("w1@a")
    assert not some.targets("w2@a")
    assert not Request(id="r1", until=100.0, nodes=[]).targets("w1@a")
    assert some.live(99.9)
    assert not some.live(100.0)
    assert not some.live(100.1)


def test_a_request_reads_back_as_written(tmp_path: Path) -> None:
    written = Request(id="r1", until=123.5, nodes=["w1@a"], move=True)
    handover.write_request(tmp_path, written)
    assert handover.read_request(tmp_path) == written
    # Nothing is left beside it.
    assert [path.name for path in tmp_path.iterdir()] == [handover.REQUEST]


@pytest.mark.parametrize(
    "text",
    [
        "",
        '{"id": "r1", "until":',
        "garbage",
        "null",
        "[]",
        '"r1"',
        '{"id": "r1"}',
        '{"id": "r1", "until": 1, "x": 2}',
        '{"id": "r1", "until": "soon"}',
        '{"id": "r1", "until": 1, "nodes": "w1@a"}',
        '{"id": 1, "until": 1}',
        '{"id": "r1", "until": 1, "move": "yes"}',
    ],
)
def test_a_half_written_or_foreign_request_counts_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / handover.REQUEST).write_text(text, encoding="utf-8")
    assert handover.read_request(tmp_path) is None


@pytest.mark.parametrize("text", ["[]", '"idle"', '{"id": "r1", "state": 1}'])
def test_a_foreign_answer_counts_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / "w1@a.state").write_text(text, encoding="utf-8")
    assert handover.node_state(tmp_path, "w1@a", "r1") == ""


def test_no_request_file_is_no_request(tmp_path: Path) -> None:
    assert handover.read_request(tmp_path) is None
    assert handover.read_request(tmp_path / "missing") is None


def test_begin_asks_only_the_workers_that_run(
    tmp_path: Path, dead_pid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    handover.announce(tmp_path, "w2@a", dead_pid)
    (tmp_path / "w3@a.node").write_text("not a pid", encoding="utf-8")
    before = time.time()
    assert run(tmp_path, "begin", "--id", "r1", "--for-s", "30", "--move", capsys=capsys) == {"requested": ["w1@a"]}
    written = handover.read_request(tmp_path)
    assert written is not None
    assert (written.id, written.nodes, written.move) == ("r1", None, True)
    assert before + 30 <= written.until <= time.time() + 30


def test_begin_with_nodes_asks_only_those(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for node in ("w1@a", "w2@a", "w3@a"):
        handover.announce(tmp_path, node, os.getpid())
    argv = ["begin", "--id", "r1", "--for-s", "30", "--node", "w3@a", "--node", "w1@a", "--node", "w9@a"]
    assert run(tmp_path, *argv, capsys=capsys) == {"requested": ["w1@a", "w3@a"]}
    written = handover.read_request(tmp_path)
    assert written is not None
    assert written.nodes == ["w3@a", "w1@a", "w9@a"]
    assert written.move is False


def test_begin_with_nothing_targeted_writes_no_request(
    tmp_path: Path, dead_pid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(tmp_path, "begin", "--id", "r1", "--for-s", "30", capsys=capsys) == {"requested": []}
    handover.announce(tmp_path, "w1@a", dead_pid)
    handover.announce(tmp_path, "w2@a", os.getpid())
    assert run(tmp_path, "begin", "--id", "r1", "--for-s", "30", "--node", "w1@a", capsys=capsys) == {"requested": []}
    assert not (tmp_path / handover.REQUEST).exists()


def test_without_move_idle_or_moved_is_ready(tmp_path: Path) -> None:
    for node in ("w1@a", "w2@a", "w3@a"):
        handover.announce(tmp_path, node, os.getpid())
    asked = request(tmp_path)
    handover.answer(tmp_path, "w1@a", "r1", "idle")
    handover.answer(tmp_path, "w2@a", "r1", "moved")
    assert handover.progress(tmp_path, asked) == {"ready": ["w1@a", "w2@a"], "busy": ["w3@a"]}
    handover.answer(tmp_path, "w3@a", "r1", "idle")
    found = handover.wait(tmp_path, asked, timeout_s=5)
    assert (found["ready"], found["busy"]) == (["w1@a", "w2@a", "w3@a"], [])
    assert found["waited_s"] == 0.0


def test_with_move_only_moved_is_ready(tmp_path: Path) -> None:
    for node in ("w1@a", "w2@a"):
        handover.announce(tmp_path, node, os.getpid())
    asked = request(tmp_path, move=True)
    handover.answer(tmp_path, "w1@a", "r1", "idle")
    handover.answer(tmp_path, "w2@a", "r1", "moved")
    assert handover.progress(tmp_path, asked) == {"ready": ["w2@a"], "busy": ["w1@a"]}
    handover.answer(tmp_path, "w1@a", "r1", "moved")
    assert handover.progress(tmp_path, asked) == {"ready": ["w1@a", "w2@a"], "busy": []}


def test_an_answer_to_another_request_does_not_count(tmp_path: Path) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    asked = request(tmp_path, rid="r2")
    handover.answer(tmp_path, "w1@a", "r1", "moved")
    assert handover.node_state(tmp_path, "w1@a", "r2") == ""
    assert handover.progress(tmp_path, asked) == {"ready": [], "busy": ["w1@a"]}
    # Nor does a state file that is not one.
    (tmp_path / "w1@a.state").write_text("{half", encoding="utf-8")
    assert handover.node_state(tmp_path, "w1@a", "r2") == ""


def test_only_targeted_running_workers_are_waited_for(tmp_path: Path, dead_pid: int) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    handover.announce(tmp_path, "w2@a", os.getpid())
    handover.announce(tmp_path, "w3@a", dead_pid)
    asked = request(tmp_path, nodes=["w1@a", "w3@a"])
    assert handover.progress(tmp_path, asked) == {"ready": [], "busy": ["w1@a"]}


def test_the_timeout_bounds_the_wait(tmp_path: Path) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    handover.announce(tmp_path, "w2@a", os.getpid())
    asked = request(tmp_path)
    handover.answer(tmp_path, "w2@a", "r1", "idle")
    started = time.monotonic()
    found = handover.wait(tmp_path, asked, timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.3 + handover.POLL_S + 1.0
    assert (found["ready"], found["busy"]) == (["w2@a"], ["w1@a"])
    assert 0.3 <= found["waited_s"] < 1.5


def test_wait_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    request(tmp_path)
    handover.answer(tmp_path, "w1@a", "r1", "idle")
    assert run(tmp_path, "wait", "--id", "r1", "--timeout-s", "5", capsys=capsys) == {
        "ready": ["w1@a"],
        "busy": [],
        "waited_s": 0.0,
    }
    handover.answer(tmp_path, "w1@a", "other", "idle")
    found = run(tmp_path, "wait", "--id", "r1", "--timeout-s", "0.3", capsys=capsys)
    assert (found["ready"], found["busy"]) == ([], ["w1@a"])


def test_wait_for_a_request_not_in_force_says_so_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    expected = {"ready": [], "busy": [], "waited_s": 0.0, "error": "no request r1 in force"}
    started = time.monotonic()
    assert run(tmp_path, "wait", "--id", "r1", "--timeout-s", "30", capsys=capsys) == expected
    request(tmp_path, rid="r2")
    assert run(tmp_path, "wait", "--id", "r1", "--timeout-s", "30", capsys=capsys) == expected
    assert time.monotonic() - started < 5


def test_end_withdraws_only_its_own_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "end", "--id", "r1", capsys=capsys) == {"withdrawn": False}
    request(tmp_path, rid="r2")
    assert run(tmp_path, "end", "--id", "r1", capsys=capsys) == {"withdrawn": False}
    assert handover.read_request(tmp_path) is not None
    assert run(tmp_path, "end", "--id", "r2", capsys=capsys) == {"withdrawn": True}
    assert not (tmp_path / handover.REQUEST).exists()
    assert run(tmp_path, "end", "--id", "r2", capsys=capsys) == {"withdrawn": False}


def test_a_begin_wait_end_round(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    assert run(tmp_path, "begin", "--id", "r1", "--for-s", "60", "--move", capsys=capsys) == {"requested": ["w1@a"]}
    handover.answer(tmp_path, "w1@a", "r1", "moved")
    found = run(tmp_path, "wait", "--id", "r1", "--timeout-s", "5", capsys=capsys)
    assert (found["ready"], found["busy"]) == (["w1@a"], [])
    assert run(tmp_path, "end", "--id", "r1", capsys=capsys) == {"withdrawn": True}


def test_a_link_planted_in_the_directory_is_replaced_not_followed(tmp_path: Path) -> None:
    """The directory is the workers' user's and the command line runs as root: no write goes through a link."""
    victim = tmp_path / "victim"
    victim.write_text("root's file", encoding="utf-8")
    directory = tmp_path / "handover"
    directory.mkdir()
    (directory / handover.REQUEST).symlink_to(victim)
    handover.write_request(directory, handover.Request(id="r1", until=time.time() + 60))
    assert victim.read_text(encoding="utf-8") == "root's file"
    assert not (directory / handover.REQUEST).is_symlink()
    assert handover.read_request(directory) is not None


def test_a_link_or_a_fifo_is_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text('{"id": "r1", "state": "idle"}', encoding="utf-8")
    (tmp_path / "w1@a.state").symlink_to(secret)
    os.mkfifo(tmp_path / "w2@a.state")
    assert handover.node_state(tmp_path, "w1@a", "r1") == ""
    assert handover.node_state(tmp_path, "w2@a", "r1") == ""


def test_the_hosts_waited_for_one_after_another_share_one_deadline(tmp_path: Path) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    request = handover.Request(id="r1", until=time.time() + 60, wait_until=time.time() + 0.3)
    started = time.monotonic()
    found = handover.wait(tmp_path, request, timeout_s=30)
    assert found["busy"] == ["w1@a"]
    assert time.monotonic() - started < 2


def test_a_stopped_worker_takes_its_announcement_back(tmp_path: Path) -> None:
    handover.announce(tmp_path, "w1@a", os.getpid())
    handover.retire(tmp_path, "w1@a")
    assert handover.running_nodes(tmp_path) == []
