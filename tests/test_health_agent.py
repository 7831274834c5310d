"""The brokers' health agent: what it answers HAProxy, from real TCP exchanges on this machine."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from rabbitmq_health_agent import Agent, Verdict, accepts, make_server


def listener() -> Iterator[tuple[str, int]]:
    """A TCP server that accepts connections and says nothing."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address
    server.shutdown()
    server.server_close()


@pytest.fixture
def broker() -> Iterator[tuple[str, int]]:
    yield from listener()


@pytest.fixture
def closed_port() -> tuple[str, int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()


def test_a_listening_broker_accepts(broker: tuple[str, int]) -> None:
    assert accepts(broker, timeout=1) == ""


def test_a_closed_port_refuses(closed_port: tuple[str, int]) -> None:
    # (A cut-off peer's "timed out" needs a network that drops packets: the failover scenario has one.)
    assert accepts(closed_port, timeout=0.2) == "Connection refused"


def test_majority_counts_this_node() -> None:
    assert Verdict("", {"b": "", "c": "timed out"}, 3).problem == ""
    cut = Verdict("", {"b": "timed out", "c": "timed out"}, 3).problem
    assert cut == "cut off from the cluster majority: 1 of 3 nodes (b: timed out, c: timed out)"
    refused = Verdict("Connection refused", {"b": "", "c": ""}, 3).problem
    assert refused == "this node does not accept connections: Connection refused"


def test_down_only_after_fall_rounds_and_up_at_once(broker: tuple[str, int], closed_port: tuple[str, int]) -> None:
    agent = Agent(local=broker, peers={"b": closed_port, "c": closed_port}, interval=0.1, timeout=0.1, fall=2)
    assert agent.reply() == "up\n"
    agent.round()
    assert agent.reply() == "up\n"
    agent.round()
    assert agent.reply().startswith("down #cut off from the cluster majority: 1 of 3 nodes")
    agent.peers = {"b": broker, "c": closed_port}
    agent.round()
    assert agent.reply() == "up\n"


def test_many_clients_at_once_are_answered_by_one_thread(broker: tuple[str, int]) -> None:
    agent = Agent(local=broker, peers={}, interval=1, timeout=0.1, fall=1)
    with make_server(agent, ("127.0.0.1", 0)) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        before = threading.active_count()
        clients = [socket.create_connection(server.server_address, timeout=2) for _ in range(50)]
        replies = [client.recv(100) for client in clients]
        assert threading.active_count() == before
        for client in clients:
            client.close()
        server.shutdown()
    assert replies == [b"up\n"] * 50


def test_a_client_that_never_reads_does_not_hold_the_others(broker: tuple[str, int]) -> None:
    agent = Agent(local=broker, peers={}, interval=1, timeout=0.1, fall=1)
    with make_server(agent, ("127.0.0.1", 0)) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        silent = socket.create_connection(server.server_address, timeout=2)
        with socket.create_connection(server.server_address, timeout=2) as client:
            assert client.recv(100) == b"up\n"
        silent.close()
        server.shutdown()
