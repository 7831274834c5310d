"""The roles' type and range checks (plugins/filter/role_inputs.py) and the cases fleetlib.inputs generates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import role_inputs
import yaml
from ansible.errors import AnsibleFilterError
from fleetlib import inputs

PROJECT_DIR = Path(__file__).resolve().parent.parent
ROLES = ("rabbitmq", "haproxy", "celery_worker")


@pytest.mark.parametrize(
    ("spec", "intervals"),
    [
        ("1..65535", [(1, 65535)]),
        ("60000..", [(60000, None)]),
        ("..10", [(None, 10)]),
        ("0, 5..", [(0, 0), (5, None)]),
        ("-1..1", [(-1, 1)]),
    ],
)
def test_ranges_parse(spec: str, intervals: list[tuple[int | None, int | None]]) -> None:
    assert role_inputs.parse_range(spec) == intervals


@pytest.mark.parametrize("spec", ["", "..", "5-6", "a..b", "10..1", "1..2."])
def test_bad_ranges_are_an_error_of_the_spec(spec: str) -> None:
    with pytest.raises(AnsibleFilterError, match="argument_specs"):
        role_inputs.parse_range(spec)


def test_range_words() -> None:
    assert role_inputs.range_words([(0, 0), (5, None)]) == "0 or at least 5"
    assert role_inputs.range_words([(1, 65535)]) == "from 1 to 65535"
    assert role_inputs.range_words([(None, 10)]) == "at most 10"


@pytest.mark.parametrize(
    ("value", "number"),
    [(5, 5), ("5", 5), (" 5 ", 5), ("+5", 5), ("-5", -5), ("0010", 10), (5.0, 5), ("abc", None), ("5.5", None),
     ("1e3", None), ("", None), (True, None), (5.5, None), (None, None), ([5], None), ("٣", None)],
)  # fmt: skip
def test_ints_are_read_as_int_reads_them_or_refused(value: object, number: int | None) -> None:
    assert role_inputs.as_int(value) == number


@pytest.mark.parametrize(
    ("value", "boolean"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False), ("YES", True),
     ("no", False), ("on", True), ("off", False), ("1", True), ("0", False), ("maybe", None), ("y", None),
     ("t", None), (" yes", None), (2, None), (1.0, None), (None, None)],
)  # fmt: skip
def test_bools_are_read_as_bool_reads_them_or_refused(value: object, boolean: bool | None) -> None:
    assert role_inputs.as_bool(value) is boolean


PORT = {"type": "int", "description": ["A port.", "Range: 1..65535"]}
HEARTBEAT = {"type": "int", "description": ["Heartbeat; 0 is off.", "Range: 0, 5.."]}
FLAG = {"type": "bool", "description": "A switch."}


def test_a_refusal_names_the_variable_the_value_and_what_is_expected() -> None:
    options = {"x_port": PORT, "x_heartbeat": HEARTBEAT, "x_flag": FLAG}
    values = {"x_port": "70000", "x_heartbeat": "4", "x_flag": "maybe"}
    assert role_inputs.role_input_problems(options, values) == [
        "x_port must be an integer, from 1 to 65535, got '70000'.",
        "x_heartbeat must be an integer, 0 or at least 5, got '4'.",
        "x_flag must be a boolean: true or false (or yes/no, on/off, 1/0), got 'maybe'.",
    ]


def test_strings_that_read_as_their_yaml_twins_pass() -> None:
    options = {"x_port": PORT, "x_heartbeat": HEARTBEAT, "x_flag": FLAG}
    assert role_inputs.role_input_problems(options, {"x_port": "5672", "x_heartbeat": "0", "x_flag": "false"}) == []


def test_values_of_other_types_and_no_log_options_are_left_alone() -> None:
    options = {"x_name": {"type": "str"}, "x_secret": {"type": "int", "no_log": True}}
    assert role_inputs.role_input_problems(options, {"x_name": 5, "x_secret": "abc"}) == []
    assert role_inputs.role_input_names({**options, "x_port": PORT, "x_flag": FLAG}) == ["x_secret", "x_port", "x_flag"]


def main_options(role: str) -> dict[str, dict[str, Any]]:
    specs = yaml.safe_load((PROJECT_DIR / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_every_int_variable_states_its_range_and_its_default_is_in_it(role: str) -> None:
    options = main_options(role)
    ints = {name: option for name, option in options.items() if option["type"] == "int"}
    assert ints
    assert [name for name, option in ints.items() if not role_inputs.option_range(option)] == []
    defaults = {name: option["default"] for name, option in options.items() if name in ints or option["type"] == "bool"}
    assert role_inputs.role_input_problems(options, defaults) == []


@pytest.mark.parametrize("role", ROLES)
def test_the_generated_cases_are_all_refused(role: str) -> None:
    options = main_options(role)
    found = inputs.cases(role)
    assert {case.variable for case in found} == set(role_inputs.role_input_names(options))
    assert len({case.alias for case in found}) == len(found)
    let_through = [case for case in found if not role_inputs.problem(case.variable, options[case.variable], case.value)]
    assert let_through == []


def test_cases_cover_wrong_types_and_each_end_of_a_range() -> None:
    found = {(case.variable, case.value) for case in inputs.cases("rabbitmq")}
    assert {("rabbitmq_heartbeat", value) for value in ("abc", "-1", "1", "4")} <= found
    assert {("rabbitmq_amqp_port", value) for value in ("0", "65536")} <= found
    assert {("rabbitmq_health_agent", value) for value in ("maybe", "y")} <= found


def test_outside() -> None:
    assert inputs.outside([(0, 0), (5, None)]) == [-1, 1, 4]
    assert inputs.outside([(1, 65535)]) == [0, 65536]
    assert inputs.outside([(None, 10)]) == [11]


def test_effective_values_are_the_defaults_under_the_scenarios_group_vars() -> None:
    values = inputs.effective_values("celery_worker", "roles", ["celery_workers"])
    assert values["celery_worker_max_tasks_per_child"] == 20
    assert values["celery_worker_broker_heartbeat"] == 10
    assert set(values) == set(role_inputs.role_input_names(main_options("celery_worker")))


def test_command_line_strings() -> None:
    values = {"x_port": 5672, "x_flag": False}
    assert inputs.as_strings(values) == ["--extra-vars", "x_port=5672", "--extra-vars", "x_flag=false"]


REPORT: dict[str, Any] = {
    "plays": [
        {
            "tasks": [
                {
                    "task": {"name": "r : Validating arguments against arg spec 'main'", "path": "/p/site.yml:1"},
                    "hosts": {
                        "a": {"failed": True, "action": inputs.ARGSPEC_ACTION, "msg": "argument 'x' ...",
                              "validate_args_context": {"name": "r"}},
                        "b": {"action": inputs.ARGSPEC_ACTION, "msg": "The arg spec validation passed"},
                        "c": {"action": inputs.ARGSPEC_ACTION, "msg": "The arg spec validation passed"},
                    },
                },
                {
                    "task": {"name": "r : Check", "path": "/p/roles/r/tasks/validate.yml:7"},
                    "hosts": {"b": {"failed": True, "action": "ansible.builtin.assert", "msg": "x must be"},
                              "c": {"action": "ansible.builtin.assert", "msg": "All assertions passed"}},
                },
                {
                    "task": {"name": "r : Install", "path": "/p/roles/r/tasks/main.yml:3"},
                    "hosts": {"c": {"failed": True, "changed": True, "msg": "boom"}},
                },
            ]
        }
    ],
    "stats": {"a": {"changed": 0}, "b": {"changed": 0}, "c": {"changed": 1}},
}  # fmt: skip


def test_outcomes_say_where_each_host_stopped() -> None:
    assert inputs.outcomes(REPORT, "r") == {
        "a": inputs.Outcome("a", "r : Validating arguments against arg spec 'main'", True, "argument 'x' ...", 0),
        "b": inputs.Outcome("b", "r : Check", True, "x must be", 0),
        "c": inputs.Outcome("c", "r : Install", False, "boom", 1),
    }


def test_unrefused_names_each_case_the_role_let_through() -> None:
    results = {
        "ok": inputs.Outcome("ok", "r : Check", True, "x_port must be an integer, got 'abc'.", 0),
        "vague": inputs.Outcome("vague", "r : Check", True, "something is wrong", 0),
        "late": inputs.Outcome("late", "r : Install", False, "x_port 'abc'", 1),
    }
    found = [inputs.Case(alias, "x_port", "abc", "wrong type") for alias in ("ok", "vague", "late", "missing")]
    assert [line.split(":")[0] for line in inputs.unrefused(found, results)] == ["x_port='abc' (wrong type)"] * 3
