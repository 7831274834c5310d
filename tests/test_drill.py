"""`make drill`: bad input refused before anything is touched, and the docs' picture drawn from the committed record.

The drill itself runs on the failover stack (molecule/failover/tests/test_alerts.py), which checks the picture it
draws there; these need no containers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import drill
import pytest
from fleetlib.drill import timeline
from fleetlib.drill_plot import draw, picture_problems

INVENTORY = {
    "all": {
        "children": {
            group: {"hosts": {f"{group}-{n}": {"ansible_host": f"192.0.2.{10 * i + n}"} for n in (1, 2)}}
            for i, group in enumerate(("rabbitmq", "haproxy", "celery_workers", "monitoring"))
        }
    }
}


@pytest.fixture
def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """Run the drill as `make drill` does (its values in the environment); it must refuse, exit 2, with one line
    on stderr and nothing else."""

    def run(*args: str, env: dict[str, str] | None = None) -> str:
        for name in ("DRILL_FAULT", "DRILL_TARGET", "DRILL_HOLD"):
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        assert drill.main(list(args)) == 2
        out, err = capsys.readouterr()
        assert not out, out
        assert err.startswith("drill: "), err
        assert err.count("\n") == 1, err
        return err

    return run


@pytest.mark.parametrize(
    ("env", "says"),
    [({"DRILL_FAULT": ""}, "FAULT=''"), ({"DRILL_FAULT": "meteor"}, "FAULT='meteor' is not a drill"),
     ({"DRILL_FAULT": "blackhole", "DRILL_HOLD": "ten"}, "HOLD='ten'"),
     ({"DRILL_FAULT": "crash", "DRILL_HOLD": "0.5"}, "HOLD='0.5'"),
     ({"DRILL_FAULT": "crash", "DRILL_HOLD": "nan"}, "HOLD='nan'"),
     ({"DRILL_FAULT": "crash", "DRILL_HOLD": "99999"}, "HOLD='99999'"),
     ({"DRILL_FAULT": "crash", "DRILL_HOLD": "'; rm -rf /"}, "HOLD=\"'; rm -rf /\"")],
)  # fmt: skip
def test_a_bad_value_is_refused_naming_it_and_the_fix(
    refused: Callable[..., str], env: dict[str, str], says: str
) -> None:
    message = refused(env=env)
    assert says in message, message
    assert "give one" in message, message


def test_a_target_not_in_the_faults_tier_is_refused(refused: Callable[..., str], tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps(INVENTORY))
    env = {"DRILL_FAULT": "proxy-vanishes", "DRILL_TARGET": "rabbitmq-1"}
    message = refused("--inventory", str(inventory), env=env)
    assert "TARGET='rabbitmq-1' is not a host proxy-vanishes can hit: give one of haproxy-1, haproxy-2" in message


def test_an_undeployed_fleet_is_refused(refused: Callable[..., str], tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.json"
    inventory.write_text(json.dumps(INVENTORY))
    message = refused("--inventory", str(inventory), env={"DRILL_FAULT": "blackhole"})
    assert "no fleet CA" in message, message


def test_the_docs_picture_is_drawn_from_the_committed_record() -> None:
    record = json.loads(drill.REFERENCE.read_text())
    assert not picture_problems(drill.PICTURE, record)


def test_a_record_draws_a_valid_picture_that_names_it(tmp_path: Path) -> None:
    record = json.loads(drill.REFERENCE.read_text())
    assert not picture_problems(draw(record, tmp_path / "drill.png"), record)
    # Another run's data: the picture says it is not this record's.
    other = {**record, "tasks_published": record["tasks_published"] + 1}
    assert picture_problems(tmp_path / "drill.png", other) == [
        f"{tmp_path / 'drill.png'} was not drawn from this record"
    ]


def test_the_timeline_reads_in_order() -> None:
    record = json.loads(drill.REFERENCE.read_text())
    lines = timeline(record).splitlines()
    stamps = [float(line.split(" s  ")[0]) for line in lines if " s  " in line]
    assert stamps == sorted(stamps)
    assert any("healed" in line for line in lines)
    assert any(line.startswith("Tasks: ") and f"{record['tasks_lost']} lost" in line for line in lines), lines


def test_a_vaulted_inventory_is_refused_without_its_secrets(refused: Callable[..., str]) -> None:
    message = refused("--inventory", str(drill.PROJECT_DIR / "inventories" / "example"), env={"DRILL_FAULT": "crash"})
    assert "reads plain variables only" in message, message
