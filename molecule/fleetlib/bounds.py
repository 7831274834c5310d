"""Detection bounds the haproxy and failover scenarios share, derived from the roles' defaults.

No bound is a number picked to pass: each is the worst case the settings allow,
as haproxy/haproxy.cfg and the README's "How failover works" state it.
"""

from __future__ import annotations

from fleetlib.project import role_defaults


def haproxy_detection_bound_s() -> float:
    """Worst case from a broker failing to HAProxy marking it DOWN, from the haproxy role's defaults.

    inter + fall x timeout check + (fall - 1) x fastinter, as haproxy/haproxy.cfg states it.
    """
    defaults = role_defaults("haproxy")
    worst_ms = (
        defaults["haproxy_check_inter"]
        + defaults["haproxy_check_fall"] * defaults["haproxy_timeout_check"]
        + (defaults["haproxy_check_fall"] - 1) * defaults["haproxy_check_fastinter"]
    )
    return worst_ms / 1000


def agent_detection_bound_s() -> float:
    """Worst case from a broker being cut off from its peers to HAProxy marking it DOWN.

    The round under way may have passed (interval); then `fall` rounds whose
    peer probes time out; then HAProxy's next agent check (agent-inter; the
    agent's verdict takes effect at once: HAProxy's rise and fall for agents are 1).
    """
    agent, haproxy = role_defaults("rabbitmq"), role_defaults("haproxy")
    worst_ms = (
        agent["rabbitmq_health_agent_interval"]
        + agent["rabbitmq_health_agent_fall"] * agent["rabbitmq_health_agent_timeout"]
        + haproxy["haproxy_agent_inter"]
    )
    return worst_ms / 1000
