"""The faults the failover tests and `make drill` inject, how each heals, and the bounds that follow from the
roles' settings (haproxy/haproxy.cfg, docs/failover.md); none is a number picked to pass.

A fault is a pair of root commands run on the host it hits: `inject`, then `heal`, which is what the network or
systemd does when the fault ends, never an operator's restart.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetlib.bounds import agent_detection_bound_s, haproxy_detection_bound_s

# Worst case from a broker falling silent to HAProxy marking it DOWN and
# ending its sessions: inter + fall x timeout check + (fall - 1) x fastinter.
DETECTION_S = haproxy_detection_bound_s()
# Worst case from a broker being cut off from its peers (it still greets) to
# its health agent's "down" reaching HAProxy.
AGENT_DETECTION_S = agent_detection_bound_s()
# The teardown (FIN, RST) must reach the worker within detection plus scheduling slack.
SCHEDULING_SLACK_S = 2.0
# Nothing is declared at run time, so a worker torn down consumes again as
# soon as it has reconnected to a live broker and sent basic.consume.
CONSUME_AFTER_TEARDOWN_S = 3.0
# From the fault to tasks completing again: silent faults wait for the health
# check (or the agent); a crash closes its sockets, so HAProxy relays the close at once.
CRASH_CONSUME_BOUND_S = CONSUME_AFTER_TEARDOWN_S


# The tests and drills drive the hosts over SSH (port 22), as a fleet is
# driven. A fault cuts a host's service traffic but leaves that channel open,
# as a separate management network would: the heal must still reach the host.
# The ACCEPT goes in first, so no command's own SSH packet is ever dropped.
def drop_all(*chains: str) -> tuple[str, str]:
    """(inject, heal) commands that drop every packet of the chains (INPUT, OUTPUT) except SSH's."""
    ssh = {"INPUT": "--dport 22", "OUTPUT": "--sport 22"}
    inject = [f"iptables -I {c} 1 -p tcp {ssh[c]} -j ACCEPT && iptables -I {c} 2 -j DROP" for c in chains]
    heal = [f"iptables -D {c} -j DROP && iptables -D {c} -p tcp {ssh[c]} -j ACCEPT" for c in chains]
    return " && ".join(inject), " && ".join(heal)


@dataclass(frozen=True)
class Fault:
    inject: str
    # What the network or systemd does when the fault ends; never an operator's restart.
    heal: str
    # Whether the broker's kernel closes its sockets (the process died): then
    # HAProxy relays that close to the worker as a FIN at once, before any
    # health check. A broker that falls silent is only noticed by the check,
    # and HAProxy must reset the worker's connection (RST) itself.
    closes_its_sockets: bool = False
    # Whether the broker still greets (only its health agent can tell HAProxy).
    detected_by_agent: bool = False

    def idle_client_teardown(self) -> tuple[str, ...]:
        """What the idle client must get from HAProxy (tcpdump's flag letters).

        HAProxy ends a session of a server marked DOWN with a FIN and, with
        `option nolinger`, a RST once it closes the socket. A client that
        answers the FIN with its own first (Celery reads at once) may leave
        HAProxy nothing to reset, so the RST is checked on an idle client.
        """
        return ("R", "F") if self.closes_its_sockets else ("R",)

    def teardown_bound_s(self) -> float:
        return (AGENT_DETECTION_S if self.detected_by_agent else DETECTION_S) + SCHEDULING_SLACK_S

    def consume_bound_s(self) -> float:
        if self.closes_its_sockets:
            return CRASH_CONSUME_BOUND_S
        return self.teardown_bound_s() + CONSUME_AFTER_TEARDOWN_S


def broker_faults(peers: str) -> dict[str, Fault]:
    """The faults of one broker; `peers` are the other brokers, as iptables takes them (comma-separated names or
    addresses)."""
    return {
        # The lost-FIN case from the incident: the broker vanishes from the network.
        "blackhole": Fault(*drop_all("INPUT", "OUTPUT")),
        # Only the broker's outgoing packets are lost.
        "one-way-loss": Fault(*drop_all("OUTPUT")),
        # The broker's processes stop; its kernel still completes TCP handshakes.
        "freeze": Fault("systemctl kill --signal=SIGSTOP rabbitmq-server",
                        "systemctl kill --signal=SIGCONT rabbitmq-server"),
        # The broker is cut off from its peers only: the proxy, the workers and the
        # publisher still reach it, and it still greets them.
        "partition": Fault(f"iptables -I INPUT -s {peers} -j DROP && iptables -I OUTPUT -d {peers} -j DROP",
                           f"iptables -D INPUT -s {peers} -j DROP && iptables -D OUTPUT -d {peers} -j DROP",
                           detected_by_agent=True),
        # The broker dies at once; systemd's Restart=on-failure brings it back.
        "crash": Fault("systemctl kill --signal=SIGKILL rabbitmq-server", "true", closes_its_sockets=True),
    }  # fmt: skip


# The faults of one proxy host, as (inject, heal).
PROXY_HOST_FAULTS = {
    # HAProxy dies (systemd restarts it): its kernel resets every session.
    "proxy-crash": ("systemctl kill --signal=SIGKILL haproxy", "true"),
    # The proxy host vanishes: the incident one tier up.
    "proxy-vanishes": drop_all("INPUT", "OUTPUT"),
}


def fault_commands(name: str, peers: str) -> tuple[str, str]:
    """(inject, heal) of a broker or proxy fault by name; `peers` as broker_faults takes them."""
    if name in PROXY_HOST_FAULTS:
        return PROXY_HOST_FAULTS[name]
    fault = broker_faults(peers)[name]
    return fault.inject, fault.heal
