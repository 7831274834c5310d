#!/usr/bin/python3
"""HAProxy agent for a RabbitMQ node: is this broker in a position to serve clients?

HAProxy's own AMQP check proves that the node greets. A node cut off from its
cluster's majority still greets, but its quorum queues have no leader it can
reach: publishers there wait for confirms that cannot come and consumers get
no deliveries. Every `interval` seconds this agent opens a TCP connection to
the AMQP port of this node and of every peer. When this node does not accept
it, or fewer than a majority of the cluster (this node included) do for
`fall` rounds in a row, it answers HAProxy's agent check (`agent-check` on
the server line) with "down", and HAProxy takes the server out and ends its
sessions (on-marked-down shutdown-sessions). Otherwise it answers "up".

Cheap enough for every second: no Erlang VM started (unlike
rabbitmq-diagnostics), and a connection closed before the AMQP header is not
even logged by RabbitMQ. A frozen node still accepts connections (its kernel
does): HAProxy's own check catches that one. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import socketserver
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("rabbitmq-health-agent")


def accepts(address: tuple[str, int], timeout: float) -> str:
    """'' when a TCP connection to `address` opens within `timeout`, else why not."""
    try:
        socket.create_connection(address, timeout=timeout).close()
    except TimeoutError:
        return "timed out"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return ""


@dataclass
class Verdict:
    """What this node's probes found, and the agent-check line that says it."""

    local: str
    peers: dict[str, str]
    cluster_size: int
    failed_rounds: int = 0

    @property
    def reached(self) -> int:
        return (0 if self.local else 1) + sum(1 for error in self.peers.values() if not error)

    @property
    def majority(self) -> int:
        return self.cluster_size // 2 + 1

    @property
    def problem(self) -> str:
        if self.local:
            return f"this node does not accept connections: {self.local}"
        if self.reached < self.majority:
            unreached = ", ".join(f"{peer}: {error}" for peer, error in sorted(self.peers.items()) if error)
            return f"cut off from the cluster majority: {self.reached} of {self.cluster_size} nodes ({unreached})"
        return ""


@dataclass
class Agent:
    local: tuple[str, int]
    peers: dict[str, tuple[str, int]]
    interval: float
    timeout: float
    fall: int
    verdict: Verdict = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        # Until the first round: up, so that a restarted agent takes nothing out.
        self.verdict = Verdict("", {}, 1)

    def probe(self) -> Verdict:
        targets = {"": self.local, **self.peers}
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            results = dict(zip(targets, pool.map(lambda a: accepts(a, self.timeout), targets.values()), strict=True))
        local = results.pop("")
        return Verdict(local, results, len(self.peers) + 1)

    def round(self) -> None:
        verdict = self.probe()
        with self._lock:
            before = self._reply()
            verdict.failed_rounds = self.verdict.failed_rounds + 1 if verdict.problem else 0
            self.verdict = verdict
            after = self._reply()
        if after != before:
            # The journal keeps why and when HAProxy was told.
            log.warning("telling HAProxy: %s", after.strip())

    def _reply(self) -> str:
        verdict = self.verdict
        if verdict.problem and verdict.failed_rounds >= self.fall:
            return f"down #{verdict.problem}\n"
        return "up\n"

    def reply(self) -> str:
        """The agent-check answer: down only once the problem has lasted `fall` rounds."""
        with self._lock:
            return self._reply()

    def run_rounds(self) -> None:
        while True:
            started = time.monotonic()
            self.round()
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))


class AgentServer(socketserver.TCPServer):
    """Answers one connection at a time: the verdict is ready (the rounds thread keeps it), so a connection
    only copies a line out, and however many connect, the agent runs two threads. Waiting connections queue
    in the kernel's backlog; beyond it, they are refused."""

    allow_reuse_address = True
    request_queue_size = 64


def make_server(agent: Agent, address: tuple[str, int]) -> AgentServer:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            # A client that does not read cannot hold the agent for longer than this.
            self.request.settimeout(1.0)
            # HAProxy reads one line; it shows the text after "#" as the
            # server's agent status and logs it.
            self.request.sendall(agent.reply().encode())

    return AgentServer(address, Handler)


def serve(agent: Agent, address: tuple[str, int]) -> None:
    with make_server(agent, address) as server:
        server.serve_forever()


def endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="JSON settings file")
    config = json.loads(parser.parse_args().config.read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    agent = Agent(
        local=endpoint(config["local"]),
        peers={peer: endpoint(peer) for peer in config["peers"]},
        interval=float(config["interval"]),
        timeout=float(config["timeout"]),
        fall=int(config["fall"]),
    )
    threading.Thread(target=agent.run_rounds, daemon=True).start()
    serve(agent, endpoint(config["listen"]))


if __name__ == "__main__":
    main()
