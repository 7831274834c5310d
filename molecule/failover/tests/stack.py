"""The failover stack's hosts as the tests reach them, and whether it is whole."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import testinfra.host
from celery import Celery
from faults import BROKERS, PASSWORD, PROXIES, VHOST, VIRTUAL_ADDRESS
from fleetlib.brokers import cluster_problems, rabbitmqctl_json
from fleetlib.hosts import get
from fleetlib.proxies import address_holders, haproxy_server_status
from fleetlib.publishing import fleet_client
from fleetlib.tls import fleet_client_tls
from fleetlib.waits import problems_within

# The broker whose view of the quorum queues counts (any: with no partition, all agree).
QUEUE_READER = BROKERS[1]
# How long a test waits for the stack to be whole before its fault: not a bound the stack is held to (HEAL_BOUND_S
# is), only a precondition, so it is generous (a machine running every step three times slower than usual
# has been seen).
WHOLE_TIMEOUT_S = 300
# How often the brokers are asked while the stack heals (problems_after).
BROKER_ASK_INTERVAL_S = 2.0


def proxies(host: testinfra.host.Host) -> list[testinfra.host.Host]:
    return [get(host, name) for name in PROXIES]


def proxy_endpoints(host: testinfra.host.Host) -> list[str]:
    """The proxies as the workers reach them: their shared address."""
    return [f"{VIRTUAL_ADDRESS}:5671"]


def fleet_publisher(host: testinfra.host.Host, queue: str) -> Celery:
    """A producer on the control node, configured as the reference app's publishers are: through the proxies'
    shared address, over TLS with a certificate from the fleet's CA."""
    return fleet_client(proxy_endpoints(host), PASSWORD, VHOST, queue, fleet_client_tls())


def queues(broker: testinfra.host.Host) -> list[dict[str, Any]]:
    return rabbitmqctl_json(broker, "list_queues", "--vhost", VHOST, "name", "type", "leader", "members", "online")


def queue_state(broker: testinfra.host.Host, queue: str) -> dict[str, Any]:
    return next(row for row in queues(broker) if row["name"] == queue)


Check = Callable[[testinfra.host.Host, str], list[str]]


def _broker_problems(haproxy: testinfra.host.Host, name: str, brokers: tuple[str, ...] = BROKERS) -> list[str]:
    """What keeps this broker from seeing every broker running and no partition, and (the queue reader) every
    quorum queue with all members online and a leader."""
    broker = get(haproxy, name)
    problems = cluster_problems(broker, len(brokers))
    # (Once the queue reader is replaced, the first broker reads for it.)
    if problems or name != (QUEUE_READER if QUEUE_READER in brokers else brokers[0]):
        return problems
    quorum = [q for q in queues(broker) if q["type"] == "quorum"]
    if not quorum:
        return ["no quorum queue yet"]
    return [
        f"queue {q['name']}: online {sorted(q['online'])}, leader {q['leader'] or 'none'}"
        for q in quorum
        if len(q["online"]) != len(brokers) or not q["leader"]
    ]


def _proxy_problems(haproxy: testinfra.host.Host, name: str) -> list[str]:
    statuses = haproxy_server_status(get(haproxy, name))
    return [f"{server} is {state}" for server, state in statuses.items() if state != "UP"]


def _asked(haproxy: testinfra.host.Host, checks: list[tuple[Check, str]]) -> list[str]:
    """Each check's problems, "<host>: <problem>", the hosts asked side by side."""
    with ThreadPoolExecutor(len(checks)) as pool:
        answers = [(name, pool.submit(check, haproxy, name)) for check, name in checks]
    problems = []
    for name, answer in answers:
        try:
            problems += [f"{name}: {problem}" for problem in answer.result()]
        except AssertionError as error:  # a host that does not answer (yet)
            problems.append(f"{name}: {str(error).splitlines()[0][:200]}")
    return problems


def _proxy_view_problems(haproxy: testinfra.host.Host) -> list[str]:
    """HAProxy showing every broker UP on each proxy, and one proxy holding the virtual address."""
    problems = _asked(haproxy, [(_proxy_problems, name) for name in PROXIES])
    holders = address_holders(proxies(haproxy), VIRTUAL_ADDRESS)
    if len(holders) != 1:
        problems.append(f"the virtual address {VIRTUAL_ADDRESS} is held by {holders or 'no proxy'}")
    return problems


def _broker_view_problems(haproxy: testinfra.host.Host, brokers: tuple[str, ...]) -> list[str]:
    check = functools.partial(_broker_problems, brokers=brokers)
    return _asked(haproxy, [(check, name) for name in brokers])


def stack_problems(
    haproxy: testinfra.host.Host, every_host: bool = False, brokers: tuple[str, ...] = BROKERS
) -> list[str]:
    """What keeps the stack from being whole: every broker running with no partition, every quorum queue with all
    members online and a leader, HAProxy showing every broker UP, one proxy holding the virtual address. Empty
    when whole. `brokers`: the cluster's (another once a broker is replaced).

    The proxies are asked first; while one shows a broker that is not UP, the brokers are not asked (unless
    `every_host`). This is polled before and after every fault, and each rabbitmqctl call starts an Erlang VM
    (about a CPU-second, on the cores the healing brokers need); a proxy's admin socket answers at once.
    """
    problems = _proxy_view_problems(haproxy)
    if problems and not every_host:
        return problems
    return problems + _broker_view_problems(haproxy, brokers)


def problems_after(
    haproxy: testinfra.host.Host, timeout: float, interval: float = 0.5, brokers: tuple[str, ...] = BROKERS
) -> list[str]:
    """Poll until the stack is whole (an empty list) or `timeout` seconds pass (what was still missing).

    The proxies are asked every `interval`; once they show every broker UP, the brokers at most every
    BROKER_ASK_INTERVAL_S, their last answer standing in between: a heal is polled for seconds, and each ask of
    the brokers is four rabbitmqctl calls (about 3 CPU-seconds, on the two cores the healing brokers and the other
    scenario share). So "whole" is known to within that interval.
    """
    said: tuple[float, list[str]] | None = None

    def problems() -> list[str]:
        nonlocal said
        found = _proxy_view_problems(haproxy)
        if found:
            return found
        if said is None or time.monotonic() - said[0] >= BROKER_ASK_INTERVAL_S:
            said = (time.monotonic(), _broker_view_problems(haproxy, brokers))
        return said[1]

    seen = problems_within(problems, timeout, interval)
    # Past the timeout: the whole picture, brokers included, for the message.
    return (stack_problems(haproxy, every_host=True, brokers=brokers) or seen) if seen else []


def await_whole(
    haproxy: testinfra.host.Host, when: str, timeout: float = WHOLE_TIMEOUT_S, brokers: tuple[str, ...] = BROKERS
) -> None:
    """Fail the test, saying what is missing, unless the stack is whole within `timeout` seconds."""
    missing = problems_after(haproxy, timeout, brokers=brokers)
    assert not missing, f"the stack is not whole {when}: {'; '.join(missing)}"
