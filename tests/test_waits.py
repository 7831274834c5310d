"""Polling for a list of problems (molecule/fleetlib/waits.py): what a failing wait says comes from its last poll."""

from __future__ import annotations

from fleetlib.waits import problems_within


def test_an_empty_list_once_the_problems_are_gone() -> None:
    answers = iter([["a broker is DOWN"], ["a queue has no leader"], []])
    assert problems_within(lambda: next(answers), timeout=5, interval=0) == []


def test_past_the_timeout_the_last_polls_problems() -> None:
    answers = iter([["first"], ["last"]])
    assert problems_within(lambda: next(answers, ["last"]), timeout=0, interval=0) == ["first"]
    polls = iter([["first"], ["second"], ["last"]])
    assert problems_within(lambda: next(polls, ["last"]), timeout=0.05, interval=0.01) == ["last"]
