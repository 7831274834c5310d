"""The failover stack as a network sees it: TLS on every hop, listeners on the inventory's addresses, and a host
firewall that admits each port only from the tier that needs it (docs/security.md#reachability)."""

from __future__ import annotations

import re
import ssl
from concurrent.futures import ThreadPoolExecutor

import amqp
import pytest
import testinfra.host
from alerting import MONITORING
from celery_fleet_app.config import broker_tls
from faults import BROKERS, PASSWORD, PROXIES, VHOST, VIRTUAL_ADDRESS, WORKERS
from fleetlib.hosts import container_address, get, root
from fleetlib.project import PROJECT_DIR
from fleetlib.tls import fleet_client_tls, foreign_client_tls

testinfra_hosts = ["ansible://fo-haproxy"]

# The tiers as the reachability table names them, each with the host a scan starts from and the one it targets.
TIERS = {"worker": WORKERS[0], "proxy": PROXIES[1], "broker": BROKERS[1], "monitoring": MONITORING}
# (Not the monitoring host: a scan of a host from itself finds its own ephemeral ports, by TCP's self-connect.)
TARGETS = {"worker": WORKERS[1], "proxy": PROXIES[0], "broker": BROKERS[0]}
# Every TCP port, 800 connection attempts at a time (below the login's 1024 descriptors), each given 1.5 s: a
# port the firewall drops answers nothing. Non-blocking sockets and a selector: a full scan takes about 3 s.
SCAN_SCRIPT = """
import selectors, socket, sys, time
host, ports, found, started = sys.argv[1], iter(range(1, 65536)), [], {}
selector = selectors.DefaultSelector()
def refill():
    while len(started) < 800 and (port := next(ports, None)):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex((host, port))
        selector.register(sock, selectors.EVENT_WRITE, port)
        started[sock] = time.monotonic()
def forget(sock):
    selector.unregister(sock)
    sock.close()
    del started[sock]
refill()
while started:
    for key, _ in selector.select(0.2):
        if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            found.append(key.data)
        forget(key.fileobj)
    for sock in [s for s, t in started.items() if time.monotonic() - t > 1.5]:
        forget(sock)
    refill()
print(" ".join(str(port) for port in sorted(found)))
"""


def documented_reachability() -> dict[tuple[str, str], set[int]]:
    """docs/security.md's reachability table: (from tier, to tier) -> the ports a scan may find open."""
    text = (PROJECT_DIR / "docs" / "security.md").read_text()
    table = text.split("<!-- reachability -->", 2)[1]
    rows = [line.strip("|").split("|") for line in table.strip().splitlines()[2:]]
    reach = {}
    for source, *cells in rows:
        for target, cell in zip(TARGETS, cells, strict=True):
            reach[(source.strip(), target)] = {int(port) for port in re.findall(r"\d+", cell)}
    return reach


def scan(scanner: testinfra.host.Host, address: str) -> set[int]:
    return {int(port) for port in root(scanner, f"python3 -c '{SCAN_SCRIPT}' {address}").split()}


@pytest.fixture(scope="module")
def scans(host: testinfra.host.Host) -> dict[tuple[str, str], set[int]]:
    """(from tier, to tier) -> the ports found open. Each tier scans its targets one after the other (one scan's
    800 sockets at a time per host), the tiers side by side."""
    addresses = {target: container_address(get(host, name)) for target, name in TARGETS.items()}

    def from_tier(source: str) -> dict[tuple[str, str], set[int]]:
        scanner = get(host, TIERS[source])
        return {(source, target): scan(scanner, address) for target, address in addresses.items()}

    with ThreadPoolExecutor(len(TIERS)) as pool:
        return {pair: ports for found in pool.map(from_tier, TIERS) for pair, ports in found.items()}


@pytest.mark.parametrize("source", TIERS)
def test_a_scan_from_each_tier_finds_only_what_the_docs_list(
    scans: dict[tuple[str, str], set[int]], source: str
) -> None:
    documented = documented_reachability()
    for target in TARGETS:
        assert scans[(source, target)] == documented[(source, target)], (source, target)


@pytest.mark.parametrize("name", [BROKERS[0], PROXIES[0], WORKERS[0], MONITORING])
def test_nothing_listens_on_every_interface_but_ssh(host: testinfra.host.Host, name: str) -> None:
    machine = get(host, name)
    address = container_address(machine)
    # SSH is the operator's (every interface, as Debian sets it); Docker's DNS answers on 127.0.0.11. A proxy
    # listens on the address the proxies share too (docs/security.md#ports), holder or not.
    allowed = {address, "127.0.0.1", "127.0.0.11", *([VIRTUAL_ADDRESS] if name in PROXIES else [])}
    stray = [
        line
        for line in root(machine, "ss -Hltnp").splitlines()
        if line.split()[3].rpartition(":")[0] not in allowed and "sshd" not in line
    ]
    assert stray == []


def connect(address: str, port: int, ssl_options: object) -> amqp.Connection:
    connection = amqp.Connection(
        host=f"{address}:{port}", userid="celery", password=PASSWORD, virtual_host=VHOST,
        connect_timeout=5, ssl=ssl_options,
    )  # fmt: skip
    connection.connect()
    return connection


@pytest.mark.parametrize("target", ["proxy", "broker"])
def test_only_a_certificate_from_the_fleets_ca_gets_in(host: testinfra.host.Host, target: str) -> None:
    address = container_address(get(host, TARGETS[target]))
    # The proxy's certificate carries the pool's name; a broker's, its own.
    name = fleet_client_tls().server_name if target == "proxy" else TARGETS[target]
    fleet = broker_tls(fleet_client_tls()) | {"server_hostname": name}
    connect(address, 5671, fleet).close()
    foreign = broker_tls(foreign_client_tls()) | {"server_hostname": name}
    # TLS 1.3 finishes the client's side of the handshake before the server has checked the client's
    # certificate: the refusal arrives as the server's alert (unknown CA) or as its close right after.
    with pytest.raises(ssl.SSLError, match=r"UNKNOWN_CA|EOF occurred in violation of protocol"):
        connect(address, 5671, foreign).close()


@pytest.mark.parametrize("target", ["proxy", "broker"])
def test_plain_amqp_is_refused(host: testinfra.host.Host, target: str) -> None:
    address = container_address(get(host, TARGETS[target]))
    # No plain listener at all...
    with pytest.raises(ConnectionRefusedError):
        connect(address, 5672, None)
    # ...and AMQP spoken in clear to the TLS port is cut before connection.start (no login is even tried).
    with pytest.raises(OSError, match=r"reset by peer|unexpectedly closed"):
        connect(address, 5671, None)


def test_erlang_distribution_speaks_tls_with_client_certificates(host: testinfra.host.Host) -> None:
    peer = get(host, BROKERS[1])
    tls = "/etc/rabbitmq/tls"
    check = f"openssl s_client -connect {BROKERS[0]}:25672 -CAfile {tls}/ca.crt -verify_return_error -brief"
    with peer.sudo():
        shown = peer.run(f"{check} -cert {tls}/host.crt -key {tls}/host.key < /dev/null")
        anonymous = peer.run(f"{check} < /dev/null")
    assert shown.rc == 0, shown.stderr
    assert "Verification: OK" in shown.stderr, shown.stderr
    # Without a certificate of its own, the client's handshake is refused.
    assert anonymous.rc != 0, anonymous.stderr
    assert "alert handshake failure" in anonymous.stderr, anonymous.stderr
