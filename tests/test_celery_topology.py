"""The topology the celery_worker role declares, and how it tells what a broker lacks."""

from __future__ import annotations

from typing import Any

from celery_topology import celery_topology, celery_topology_diff


def exported(topology: dict[str, Any], other_vhost: str = "elsewhere") -> dict[str, Any]:
    """The topology as `rabbitmqctl export_definitions` shows it once declared, beside another vhost's copy."""
    elsewhere = celery_topology(["other"], other_vhost)
    return {kind: topology[kind] + elsewhere[kind] for kind in ("exchanges", "queues", "bindings")} | {"users": []}


def test_delayed_delivery_and_task_queues_are_all_there() -> None:
    topology = celery_topology(["celery", "reports", "celery"], "celery")
    # 28 delay levels and the delivery exchange, plus one exchange per task queue.
    assert len(topology["exchanges"]) == 29 + 2
    assert len(topology["queues"]) == 28 + 2
    # 28 queue and 28 exchange bindings for the levels, three per task queue.
    assert len(topology["bindings"]) == 56 + 2 * 3
    assert {e["type"] for e in topology["exchanges"]} == {"topic"}
    assert {q["arguments"]["x-queue-type"] for q in topology["queues"]} == {"quorum"}
    assert {entry["vhost"] for kind in topology.values() for entry in kind} == {"celery"}


def test_delay_levels_expire_into_the_next_level() -> None:
    queues = {q["name"]: q["arguments"] for q in celery_topology(["celery"], "v")["queues"]}
    assert queues["celery_delayed_27"]["x-message-ttl"] == 2**27 * 1000
    assert queues["celery_delayed_27"]["x-dead-letter-exchange"] == "celery_delayed_26"
    assert queues["celery_delayed_0"]["x-dead-letter-exchange"] == "celery_delayed_delivery"
    assert queues["celery_delayed_0"]["x-dead-letter-strategy"] == "at-least-once"
    assert queues["celery_delayed_0"]["x-overflow"] == "reject-publish"


def test_routing_keys_follow_kombu() -> None:
    bindings = {(b["source"], b["destination"], b["destination_type"]): b["routing_key"]
                for b in celery_topology(["celery"], "v")["bindings"]}  # fmt: skip
    assert bindings["celery_delayed_27", "celery_delayed_27", "queue"] == "1.#"
    assert bindings["celery_delayed_27", "celery_delayed_26", "exchange"] == "0.#"
    assert bindings["celery_delayed_0", "celery_delayed_0", "queue"] == "*." * 27 + "1.#"
    assert bindings["celery_delayed_0", "celery_delayed_delivery", "exchange"] == "*." * 27 + "0.#"
    assert bindings["celery_delayed_delivery", "celery", "exchange"] == "#.celery"


def test_an_empty_broker_lacks_everything() -> None:
    wanted = celery_topology(["celery"], "v")
    diff = celery_topology_diff(wanted, {})
    assert diff["missing"] == wanted
    assert diff["missing_count"] == 29 + 1 + 28 + 1 + 56 + 3
    assert diff["conflicts"] == []


def test_a_declared_topology_lacks_nothing() -> None:
    wanted = celery_topology(["celery"], "v")
    diff = celery_topology_diff(wanted, exported(wanted))
    assert diff["missing_count"] == 0
    assert diff["conflicts"] == []


def test_one_missing_binding_is_found() -> None:
    wanted = celery_topology(["celery"], "v")
    definitions = exported(wanted)
    definitions["bindings"].remove(wanted["bindings"][-1])
    diff = celery_topology_diff(wanted, definitions)
    assert diff["missing_count"] == 1
    assert diff["missing"]["bindings"] == [wanted["bindings"][-1]]


def test_celerys_default_direct_exchange_is_a_conflict() -> None:
    wanted = celery_topology(["celery"], "v")
    diff = celery_topology_diff(wanted, {"exchanges": [{"name": "celery", "vhost": "v", "type": "direct"}]})
    assert diff["conflicts"] == ["exchange 'celery' exists as a direct exchange, not topic"]


def test_a_classic_queue_is_a_conflict_whatever_the_argument_form() -> None:
    wanted = celery_topology(["celery"], "v")
    for arguments in ([["x-queue-type", "longstr", "classic"]], {"x-queue-type": "classic"}, []):
        diff = celery_topology_diff(wanted, {"queues": [{"name": "celery", "vhost": "v", "arguments": arguments}]})
        assert len(diff["conflicts"]) == 1
        assert diff["conflicts"][0].startswith("queue 'celery' exists with other arguments (x-queue-type)")


def test_another_vhost_neither_satisfies_nor_conflicts() -> None:
    wanted = celery_topology(["celery"], "v")
    diff = celery_topology_diff(wanted, exported(celery_topology(["celery"], "elsewhere", queue_type="classic")))
    assert diff["missing"] == wanted
    assert diff["conflicts"] == []
