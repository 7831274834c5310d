"""The firewall role refuses a table it could not load as meant (plugins/filter/firewall.py)."""

from __future__ import annotations

from firewall import firewall_port_problems

GOOD = [{"port": 5671, "sources": ["10.0.0.21", "10.0.1.0/24"], "what": "AMQP over TLS"}]


def test_a_good_table_has_no_problem() -> None:
    assert firewall_port_problems(GOOD, "rabbitmq") == []


def test_a_port_with_no_source_is_loopback_only_and_fine() -> None:
    assert firewall_port_problems([{"port": 15692, "sources": [], "what": "metrics"}], "rabbitmq") == []


def test_each_mistake_is_named() -> None:
    bad = [
        {"port": 70000, "sources": ["broker-1"], "what": "x"},
        {"port": "5671", "sources": [], "what": "two\nlines"},
        {"port": 5671, "sources": [], "what": "again"},
    ]
    assert firewall_port_problems(bad, "Rabbit MQ") == [
        "firewall_name 'Rabbit MQ' must be a lower-case word (letters, digits, _), e.g. rabbitmq.",
        "port 70000 is not a TCP port (1-65535)",
        "source 'broker-1' is not an IPv4 address or network",
        "port 5671: 'what' must say on one line what listens there",
        "port 5671 is listed twice: give it one entry with every source.",
    ]


def test_vrrp_is_admitted_by_protocol_not_port() -> None:
    vrrp = {"protocol": "vrrp", "sources": ["10.0.0.22"], "what": "VRRP from the other proxies"}
    assert firewall_port_problems([*GOOD, vrrp], "haproxy") == []
    assert firewall_port_problems([{**vrrp, "protocol": "gre"}, vrrp, vrrp], "haproxy") == [
        "protocol 'gre' is not one of vrrp (leave it out for a TCP port)",
        "protocol vrrp is listed twice: give it one entry with every source.",
    ]
