"""The messaging topology the workers consume from, as RabbitMQ definitions.

The role declares it once, at deploy time, so that no worker or publisher has
to declare or bind anything when it (re)connects: under Mnesia a `queue.bind`,
even of a binding that exists, waits for a silent node to be declared down
(net_ticktime, about 60 s). What is declared mirrors Celery 5.5+/kombu:

- per task queue: a topic exchange and a quorum queue of the same name, bound
  with the queue's name as routing key (what Celery declares for a queue,
  except that the exchange is a topic one, as native delayed delivery needs);
- native delayed delivery (kombu.transport.native_delayed_delivery): 28 delay
  levels, each a topic exchange and a quorum queue whose messages expire after
  2^level s into the next level, the `celery_delayed_delivery` exchange, and
  per task queue the bindings that route an expired message back to it.
"""

from __future__ import annotations

from typing import Any

# kombu.transport.native_delayed_delivery.MAX_NUMBER_OF_BITS_TO_USE
DELAY_BITS = 28
DELIVERY_EXCHANGE = "celery_delayed_delivery"


def _level(level: int) -> str:
    return f"celery_delayed_{level}"


def _exchange(vhost: str, name: str) -> dict[str, Any]:
    return {"name": name, "vhost": vhost, "type": "topic", "durable": True, "auto_delete": False,
            "internal": False, "arguments": {}}  # fmt: skip


def _queue(vhost: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": arguments}


def _binding(vhost: str, source: str, destination: str, kind: str, routing_key: str) -> dict[str, Any]:
    return {"source": source, "vhost": vhost, "destination": destination, "destination_type": kind,
            "routing_key": routing_key, "arguments": {}}  # fmt: skip


def _delay_levels(vhost: str, queue_type: str) -> dict[str, list[dict[str, Any]]]:
    """What kombu's declare_native_delayed_delivery_exchanges_and_queues declares."""
    exchanges, queues, bindings = [], [], []
    for level in range(DELAY_BITS - 1, -1, -1):
        arguments: dict[str, Any] = {
            "x-queue-type": queue_type,
            "x-overflow": "reject-publish",
            "x-message-ttl": 2**level * 1000,
            "x-dead-letter-exchange": _level(level - 1) if level > 0 else DELIVERY_EXCHANGE,
        }
        if queue_type == "quorum":
            arguments["x-dead-letter-strategy"] = "at-least-once"
        exchanges.append(_exchange(vhost, _level(level)))
        queues.append(_queue(vhost, _level(level), arguments))
        # The level's bit set: wait here for 2^level s.
        bindings.append(_binding(vhost, _level(level), _level(level), "queue", "*." * (DELAY_BITS - 1 - level) + "1.#"))
        # The bit clear: fall through to the next level at once.
        if level > 0:
            bindings.append(
                _binding(vhost, _level(level), _level(level - 1), "exchange", "*." * (DELAY_BITS - 1 - level) + "0.#")
            )
    exchanges.append(_exchange(vhost, DELIVERY_EXCHANGE))
    bindings.append(_binding(vhost, _level(0), DELIVERY_EXCHANGE, "exchange", "*." * (DELAY_BITS - 1) + "0.#"))
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def celery_topology(queue_names: list[str], vhost: str, queue_type: str = "quorum") -> dict[str, Any]:
    """RabbitMQ definitions (the `import_definitions` format) of the task queues and delayed delivery."""
    if not queue_names:
        raise ValueError("celery_topology needs at least one task queue")
    topology = _delay_levels(vhost, queue_type)
    for name in dict.fromkeys(queue_names):
        topology["exchanges"].append(_exchange(vhost, name))
        topology["queues"].append(_queue(vhost, name, {"x-queue-type": queue_type}))
        topology["bindings"] += [
            # A plain publish: exchange `name`, routing key `name`.
            _binding(vhost, name, name, "queue", name),
            # A delayed one comes back from the delivery exchange as `<bits>.name`.
            _binding(vhost, DELIVERY_EXCHANGE, name, "exchange", f"#.{name}"),
            _binding(vhost, name, name, "queue", f"#.{name}"),
        ]
    return topology


def _arguments(value: Any) -> dict[str, Any]:
    """Arguments as a map (the export's form), or from a list of [key, type, value] AMQP table entries."""
    if isinstance(value, dict):
        return value
    return {entry[0]: entry[-1] for entry in value or []}


def _binding_key(entry: dict[str, Any]) -> tuple[str, str, str, str]:
    return entry["source"], entry["destination"], entry["destination_type"], entry["routing_key"]


def celery_topology_diff(wanted: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """What of `wanted` the broker lacks, and what it has in a form that would refuse a declaration.

    definitions is `rabbitmqctl export_definitions`' JSON; only the vhosts of `wanted` are compared.
    """
    vhosts = {entry["vhost"] for entries in wanted.values() for entry in entries}
    have = {kind: [entry for entry in definitions.get(kind, []) if entry.get("vhost") in vhosts]
            for kind in ("exchanges", "queues", "bindings")}  # fmt: skip
    have_exchanges = {entry["name"]: entry["type"] for entry in have["exchanges"]}
    have_queues = {entry["name"]: _arguments(entry.get("arguments")) for entry in have["queues"]}
    have_bindings = {_binding_key(entry) for entry in have["bindings"]}
    conflicts = [
        f"exchange '{entry['name']}' exists as a {have_exchanges[entry['name']]} exchange, not topic"
        for entry in wanted["exchanges"]
        if entry["name"] in have_exchanges and have_exchanges[entry["name"]] != entry["type"]
    ]
    for entry in wanted["queues"]:
        have = have_queues.get(entry["name"])
        if have is None:
            continue
        differ = sorted(key for key, value in entry["arguments"].items() if have.get(key, None) != value)
        if differ:
            conflicts.append(f"queue '{entry['name']}' exists with other arguments ({', '.join(differ)}): {have}")
    missing = {
        "exchanges": [entry for entry in wanted["exchanges"] if entry["name"] not in have_exchanges],
        "queues": [entry for entry in wanted["queues"] if entry["name"] not in have_queues],
        "bindings": [entry for entry in wanted["bindings"] if _binding_key(entry) not in have_bindings],
    }
    return {"missing": missing, "missing_count": sum(len(entries) for entries in missing.values()),
            "conflicts": conflicts}  # fmt: skip


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"celery_topology": celery_topology, "celery_topology_diff": celery_topology_diff}
