"""A client that connects while a broker is silent, before HAProxy has marked it DOWN, still gets a live broker
within its own connect timeout.

In that window `leastconn` may hand a new connection to the silent broker. HAProxy then waits `timeout connect`
before it redispatches the connection to another broker, while the client waits its own connect timeout for the
broker's greeting. When HAProxy waits longer than the client, the client gives up first: a reconnecting worker
or publisher loses another connect timeout (and a TLS close) per attempt (a CI run measured one publish of 11 s).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import amqp
import testinfra.host
from celery_fleet_app.config import broker_tls
from faults import CONNECT_TIMEOUT_S, FAULTS, HEAL_BOUND_S, PASSWORD, TARGET, VHOST
from fleetlib.hosts import container_address, get, root
from fleetlib.proxies import haproxy_stats
from fleetlib.tls import fleet_client_tls
from stack import await_whole, problems_after, proxies

testinfra_hosts = ["ansible://fo-haproxy"]

# Opened at once through a proxy with no other client: leastconn gives each broker, the silent one too,
# two of them (the test checks that the silent broker got some).
CONNECTIONS = 6


def connect_seconds(address: str, tls: dict[str, object]) -> float:
    """Seconds to a complete AMQP handshake through the proxy, as the fleet's clients connect (inf if it failed)."""
    started = time.monotonic()
    connection = amqp.Connection(
        host=address, userid="celery", password=PASSWORD, virtual_host=VHOST,
        ssl=tls, connect_timeout=CONNECT_TIMEOUT_S,
    )  # fmt: skip
    try:
        connection.connect()
    except (OSError, amqp.exceptions.AMQPError):
        return float("inf")
    seconds = time.monotonic() - started
    connection.collect()
    return round(seconds, 2)


def handed_to_target(proxy: testinfra.host.Host) -> int:
    """How many connections the proxy has handed to the broker under test (`stot`), ever."""
    return int(haproxy_stats(proxy)[TARGET]["stot"] or 0)


def test_a_client_connecting_before_the_proxy_notices_gets_a_live_broker(host: testinfra.host.Host) -> None:
    await_whole(host, "before the fault")
    # The second proxy: the workers and the publishers list the first one first, so no client is on it.
    proxy = proxies(host)[1]
    address, target = f"{container_address(proxy)}:5671", get(host, TARGET)
    # Made once, before the threads (each would otherwise write the client's key and certificate).
    tls = broker_tls(fleet_client_tls())
    assert isinstance(tls, dict)
    before = handed_to_target(proxy)
    fault = FAULTS["blackhole"]
    root(target, fault.inject)
    fault_at = time.time()
    try:
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            seconds = list(pool.map(lambda _: connect_seconds(address, tls), range(CONNECTIONS)))
        opened_by = time.time() - fault_at
        handed = handed_to_target(proxy) - before
    finally:
        root(target, fault.heal)
    missing = problems_after(host, HEAL_BOUND_S, interval=1)
    result = {"connect_s": seconds, "handed_to_the_silent_broker": handed, "all_done_after_s": round(opened_by, 2)}
    # Otherwise no connection met the silent broker, and the bound below proved nothing.
    assert handed > 0, f"no connection was handed to the silent broker before it was marked DOWN: {result}"
    late = f"a client waited past its connect timeout ({CONNECT_TIMEOUT_S} s): {result}"
    assert max(seconds) <= CONNECT_TIMEOUT_S, late
    assert not missing, f"the cluster was not whole {HEAL_BOUND_S} s after the heal: {missing}; {result}"
