"""The roles scenario's hosts, named once (molecule.yml creates them)."""

from __future__ import annotations

# Each broker cluster by its inventory group: Debian 13 (RabbitMQ 4.0, behind the proxies) and Debian 12 (3.10).
CLUSTERS = {
    "rabbitmq": ["rmq-trixie-1", "rmq-trixie-2", "rmq-trixie-3"],
    "rabbitmq_bookworm": ["rmq-bookworm-1", "rmq-bookworm-2", "rmq-bookworm-3"],
}
PROXIES = ["haproxy-trixie", "haproxy-bookworm"]
WORKERS = ["worker-trixie", "worker-bookworm"]
EVERY_HOST = [*(node for nodes in CLUSTERS.values() for node in nodes), *PROXIES, *WORKERS]
