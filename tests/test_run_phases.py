"""The refusal each role gives, at the start, to a host it cannot predict or finish in this run."""

from __future__ import annotations

import pytest
from run_phases import install_phase_skipped, missing_packages, unconverged_host_problem


def test_a_plain_run_installs() -> None:
    assert install_phase_skipped(False, ["all"], []) == ""


@pytest.mark.parametrize("run_tags", [["install"], ["configure", "install"], ["tagged"], []])
def test_tags_that_include_the_install_phase(run_tags: list[str]) -> None:
    assert install_phase_skipped(False, run_tags, []) == ""


def test_check_mode_installs_nothing() -> None:
    assert install_phase_skipped(True, ["all"], []) == "check mode"


def test_tags_without_install_and_skipped_install() -> None:
    assert install_phase_skipped(False, ["configure"], []) == "--tags configure"
    assert install_phase_skipped(False, ["all"], ["install"]) == "--skip-tags install"


def test_dpkg_lines_name_the_missing_packages() -> None:
    # dpkg-query prints no line for a package it has never seen.
    lines = ["python3-venv installed"]
    assert missing_packages(lines, ["supervisor", "python3-venv"]) == ["supervisor"]
    assert missing_packages(["haproxy config-files"], ["haproxy"]) == ["haproxy"]
    assert missing_packages(["haproxy installed"], ["haproxy"]) == []
    assert missing_packages([], ["rabbitmq-server"]) == ["rabbitmq-server"]


def test_an_unconverged_host_is_refused_in_check_mode_with_the_reason_and_the_fix() -> None:
    message = unconverged_host_problem(["rabbitmq-server"], "rmq-1", True, ["all"], [])
    assert message.startswith("check mode needs a converged fleet: rabbitmq-server is not installed on rmq-1")
    assert "without --check first" in message


def test_a_tag_run_without_install_is_refused_on_an_unconverged_host() -> None:
    message = unconverged_host_problem(["supervisor", "python3-venv"], "w-1", False, ["configure"], [])
    assert message.startswith("--tags configure leaves out the install phase, but supervisor, python3-venv are not")
    assert "--tags install" in message


@pytest.mark.parametrize(
    ("missing", "check_mode", "run_tags"),
    [([], True, ["all"]), ([], False, ["configure"]), (["haproxy"], False, ["all"]), (["haproxy"], False, ["install"])],
)
def test_nothing_to_refuse(missing: list[str], check_mode: bool, run_tags: list[str]) -> None:
    assert unconverged_host_problem(missing, "h", check_mode, run_tags, []) == ""
