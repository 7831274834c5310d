"""Runs of tasks that take seconds (molecule/fleetlib/longtasks.py): thrown away, completed twice, pools busy."""

from __future__ import annotations

from fleetlib.longtasks import Execution, busy_again, completed_twice, executions, seconds_repeated, thrown_away


def test_a_start_pairs_with_its_own_process_completion() -> None:
    starts = [("t1", 10, 100.0), ("t2", 11, 100.5), ("t1", 12, 108.0)]
    completions = [("t2", 11, 104.5), ("t1", 12, 112.0)]
    assert executions(starts, completions) == [
        Execution("t1", 10, 100.0, None),
        Execution("t2", 11, 100.5, 104.5),
        Execution("t1", 12, 108.0, 112.0),
    ]


def test_a_terminated_run_counts_the_work_it_had_done_at_most_the_task_length() -> None:
    runs = [
        Execution("t1", 10, 100.0, None),  # begun again 3 s in
        Execution("t1", 12, 103.0, 107.0),
        Execution("t2", 11, 100.0, None),  # begun again only 9 s later: it had done the whole 4 s at most
        Execution("t2", 13, 109.0, 113.0),
        Execution("t3", 11, 100.0, 104.0),
    ]
    assert thrown_away(runs, task_s=4.0) == (2, 7.0)


def test_a_token_completed_twice_is_counted_once() -> None:
    runs = [Execution("t1", 10, 100.0, 104.0), Execution("t1", 12, 105.0, 109.0), Execution("t2", 11, 100.0, 104.0)]
    assert completed_twice(runs) == 1
    # The second completion repeated the whole task.
    assert seconds_repeated(runs, task_s=4.0) == 4.0


def test_a_pool_is_busy_again_once_all_its_slots_overlap_after_the_moment() -> None:
    runs = [Execution("a", 1, 100.0, 104.0), Execution("b", 2, 101.0, 105.0), Execution("c", 1, 110.0, 114.0)]
    assert busy_again(runs, after=99.0, slots=2)
    assert not busy_again(runs, after=100.5, slots=2)  # only b, then c: never two at once
