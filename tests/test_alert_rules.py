"""The monitoring role's alert rules, rendered with the role's defaults, against promtool.

Each rule has a file in tests/alert_rules/ (promtool's unit test format) with
a case where it fires and one where it must not. An expected alert without
`exp_annotations` gets the rule's annotations with its labels filled in, so a
file names only what it is about; a rule whose annotations show `$value`
needs them written out. promtool comes from `make promtool` (tools/promtool.sh).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

PROJECT_DIR = Path(__file__).resolve().parents[1]
ROLE = PROJECT_DIR / "roles" / "monitoring"
CASES = PROJECT_DIR / "tests" / "alert_rules"
PROMTOOL = PROJECT_DIR / ".cache" / "tools" / "promtool"
RULES_FILE = "celery_fleet.rules.yml"
# A cluster of three brokers, as the role's defaults expect.
GROUPS = {"rabbitmq": ["b1", "b2", "b3"]}
LABEL = re.compile(r"\{\{ \$labels\.(\w+) \}\}")
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())


def role_variables() -> dict[str, Any]:
    variables = DEFAULTS | yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    trusted = {name: trust_as_template(value) if isinstance(value, str) else value for name, value in variables.items()}
    return trusted | {"groups": GROUPS, "ansible_managed": "Ansible managed", "inventory_hostname": "m1"}


def render_rules() -> str:
    templar = Templar(loader=DataLoader(), variables=role_variables())
    return templar.template(trust_as_template((ROLE / "templates" / "celery_fleet.rules.yml.j2").read_text()))


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rules")
    (directory / RULES_FILE).write_text(render_rules())
    return directory


@pytest.fixture(scope="module")
def rules(rules_dir: Path) -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load((rules_dir / RULES_FILE).read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def promtool(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), "no promtool: run `make promtool`"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, check=False)


def filled(text: str, labels: dict[str, Any]) -> str:
    """An annotation as Prometheus renders it, for one that shows only labels."""
    return LABEL.sub(lambda found: str(labels[found[1]]), text)


def with_annotations(case: dict[str, Any], rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The case as promtool reads it: the rules file, the role's evaluation interval, full annotations."""
    for test in case["tests"]:
        for check in test.get("alert_rule_test", []):
            annotations = rules[check["alertname"]]["annotations"]
            for alert in check.get("exp_alerts") or []:
                if "exp_annotations" in alert:
                    continue
                assert not any("$value" in text for text in annotations.values()), (
                    f"{check['alertname']} shows $value: write its exp_annotations out"
                )
                alert["exp_annotations"] = {
                    name: filled(text, alert["exp_labels"]) for name, text in annotations.items()
                }
    interval = int(DEFAULTS["monitoring_evaluation_interval_s"])
    return {"rule_files": [RULES_FILE], "evaluation_interval": f"{interval}s", **case}


def test_promtool_checks_the_rendered_rules(rules_dir: Path) -> None:
    result = promtool("check", "rules", RULES_FILE, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_has_a_case_that_fires_and_one_that_must_not(rules: dict[str, dict[str, Any]]) -> None:
    assert sorted(path.stem for path in CASES.glob("*.yml")) == sorted(rules)
    for name in rules:
        checks = [check for test in yaml.safe_load((CASES / f"{name}.yml").read_text())["tests"]
                  for check in test["alert_rule_test"] if check["alertname"] == name]  # fmt: skip
        assert any(check.get("exp_alerts") for check in checks), f"{name}: no case where it fires"
        assert any(not check.get("exp_alerts") for check in checks), f"{name}: no case where it must not fire"


def test_every_rule_has_a_severity_summary_and_runbook(rules: dict[str, dict[str, Any]]) -> None:
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        assert rule["annotations"]["runbook_url"] == f"docs/alerts.md#{name.lower()}"


@pytest.mark.parametrize("case", sorted(CASES.glob("*.yml")), ids=lambda path: path.stem)
def test_the_rule_fires_when_it_should_and_only_then(
    case: Path, rules_dir: Path, rules: dict[str, dict[str, Any]]
) -> None:
    written = rules_dir / case.name
    written.write_text(yaml.safe_dump(with_annotations(yaml.safe_load(case.read_text()), rules), sort_keys=False))
    result = promtool("test", "rules", case.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_runbooks_list_every_rule_with_its_severity(rules: dict[str, dict[str, Any]]) -> None:
    """docs/alerts.md: one table row and one section per rule, the severity as the rule has it."""
    text = (PROJECT_DIR / "docs" / "alerts.md").read_text()
    rows = dict(re.findall(r"^\| \[(\w+)\]\(#\w+\) \| (\w+) \|", text, flags=re.MULTILINE))
    assert rows == {name: rule["labels"]["severity"] for name, rule in rules.items()}
    assert sorted(re.findall(r"^## (\w+)$", text, flags=re.MULTILINE)) == sorted(rules)
