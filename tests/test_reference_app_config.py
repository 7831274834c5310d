"""The reference app's Celery configuration carries every hardening setting."""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from celery_fleet_app.config import (
    FleetConfig,
    broker_url,
    celery_settings,
    load_config,
    publisher_settings,
    socket_settings,
)

# What the celery_worker role renders into /etc/celery-fleet/app.json.
INVENTORY_STYLE = {
    "broker_endpoints": ["haproxy-1:5672", "haproxy-2:5672"],
    "user": "celery",
    "password": "p@ss:w/rd;%",
    "vhost": "celery",
    "heartbeat": 10,
    "max_tasks_per_child": 50,
    "max_memory_per_child_kib": 150000,
    "task_time_limit": 300,
    "task_soft_time_limit": 240,
    "keepalive_idle": 1,
    "keepalive_interval": 1,
    "keepalive_count": 3,
    "tcp_user_timeout_ms": 30000,
    "completed_log": "/var/lib/celery-fleet/completed.log",
}


@pytest.fixture
def config(tmp_path: Path) -> FleetConfig:
    path = tmp_path / "app.json"
    path.write_text(json.dumps(INVENTORY_STYLE))
    return load_config(path)


def test_hardening_settings(config: FleetConfig) -> None:
    settings = celery_settings(config)
    expected = {
        "broker_heartbeat": 10,
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "task_default_queue_type": "quorum",
        "worker_detect_quorum_queues": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_max_tasks_per_child": 50,
        "worker_max_memory_per_child": 150000,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_time_limit": 300,
        "task_soft_time_limit": 240,
        "accept_content": ["json"],
    }
    assert {key: settings[key] for key in expected} == expected
    assert settings["broker_transport_options"]["confirm_publish"] is True


def test_heartbeat_is_in_rabbitmqs_recommended_range(config: FleetConfig) -> None:
    assert 5 <= celery_settings(config)["broker_heartbeat"] <= 20


def test_broker_url_lists_every_proxy_for_failover(config: FleetConfig) -> None:
    urls = celery_settings(config)["broker_url"].split(";")
    parts = [urlsplit(url) for url in urls]
    assert [(part.scheme, part.hostname, part.port) for part in parts] == [
        ("amqp", "haproxy-1", 5672),
        ("amqp", "haproxy-2", 5672),
    ]
    for part in parts:
        assert unquote(part.username) == "celery"
        assert unquote(part.password) == "p@ss:w/rd;%"
        assert part.path == "/celery"


def test_broker_url_quotes_a_vhost_with_a_slash() -> None:
    assert broker_url(["proxy:5672"], "u", "p", "/") == "amqp://u:p@proxy:5672/%2F"


def test_broker_url_needs_an_endpoint() -> None:
    with pytest.raises(ValueError, match="at least one broker endpoint"):
        broker_url([], "u", "p", "v")


def test_socket_options_are_keyed_by_socket_constants(config: FleetConfig) -> None:
    options = socket_settings(config)
    assert options == {
        socket.TCP_KEEPIDLE: 1,
        socket.TCP_KEEPINTVL: 1,
        socket.TCP_KEEPCNT: 3,
        socket.TCP_USER_TIMEOUT: 30000,
    }
    assert celery_settings(config)["broker_transport_options"]["socket_settings"] == options


def test_a_publisher_notices_a_dead_proxy_within_seconds(config: FleetConfig) -> None:
    """The workers' settings, but a socket that dies 5 s after the proxy's last answer, probed every second
    while a publish waits for its confirm with nothing in flight."""
    settings = publisher_settings(config)
    assert settings["broker_transport_options"] == {
        "socket_settings": {
            socket.TCP_KEEPIDLE: 1,
            socket.TCP_KEEPINTVL: 1,
            socket.TCP_USER_TIMEOUT: 5000,
        },
        "confirm_publish": True,
    }
    workers = celery_settings(config)
    assert {key: value for key, value in settings.items() if key != "broker_transport_options"} == {
        key: value for key, value in workers.items() if key != "broker_transport_options"
    }
    assert workers["broker_transport_options"]["socket_settings"][socket.TCP_USER_TIMEOUT] == 30000


def test_password_is_not_in_the_repr(config: FleetConfig) -> None:
    assert INVENTORY_STYLE["password"] not in repr(config)


def test_missing_file_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="CELERY_FLEET_CONFIG"):
        load_config(tmp_path / "absent.json")


def test_a_key_a_newer_role_wrote_is_left_out(tmp_path: Path) -> None:
    """--tags configure writes a newer role's app.json beside the installed app: the workers still start."""
    path = tmp_path / "app.json"
    path.write_text(json.dumps({**INVENTORY_STYLE, "a_later_setting": 1}))
    assert load_config(path).heartbeat == INVENTORY_STYLE["heartbeat"]


def test_settings_are_accepted_by_celery(config: FleetConfig) -> None:
    from celery import Celery

    app = Celery("check", set_as_current=False)
    app.conf.update(celery_settings(config))
    assert app.conf.broker_heartbeat == 10
    assert app.conf.task_default_queue_type == "quorum"


def test_control_app_has_the_incidents_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failover control: straight to one broker, no heartbeat, the kernel's socket defaults."""
    import importlib

    path = tmp_path / "app.json"
    path.write_text(json.dumps({**INVENTORY_STYLE, "broker_endpoints": ["rabbitmq-1:5672"]}))
    monkeypatch.setenv("CELERY_FLEET_CONFIG", str(path))
    control = importlib.import_module("celery_fleet_app.control")
    conf = importlib.reload(control).app.conf
    assert urlsplit(conf.broker_url).hostname == "rabbitmq-1"
    assert ";" not in conf.broker_url
    assert conf.broker_heartbeat is None
    assert conf.broker_transport_options["socket_settings"] == {
        socket.TCP_USER_TIMEOUT: 0,
        socket.TCP_KEEPIDLE: 7200,
        socket.TCP_KEEPINTVL: 75,
        socket.TCP_KEEPCNT: 9,
    }
    assert conf.task_default_queue == "control"


def test_the_deployments_queues_are_never_declared_at_run_time(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({**INVENTORY_STYLE, "queues": ["reports", "celery"]}))
    settings = celery_settings(load_config(path))
    queues = {queue.name: queue for queue in settings["task_queues"]}
    assert list(queues) == ["reports", "celery"]
    for name, queue in queues.items():
        assert queue.no_declare
        assert queue.exchange.no_declare
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (name, "topic", name)
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
    assert settings["task_default_queue"] == "reports"
    assert settings["task_create_missing_queues"] is False
    assert settings["worker_enable_remote_control"] is False


def test_the_worker_consumer_has_no_delayed_delivery_declarations(config: FleetConfig) -> None:
    from celery import Celery
    from celery.worker.consumer import Consumer as CeleryConsumer
    from celery_fleet_app.consumer import DELAYED_DELIVERY_STEP, Consumer

    app = Celery("check", set_as_current=False)
    app.conf.update(celery_settings(config))
    assert app.conf.worker_consumer == "celery_fleet_app.consumer:Consumer"
    assert DELAYED_DELIVERY_STEP in CeleryConsumer.Blueprint.default_steps
    assert set(CeleryConsumer.Blueprint.default_steps) - set(Consumer.Blueprint.default_steps) == {
        DELAYED_DELIVERY_STEP
    }


def test_an_app_that_declares_its_own_topology_gets_celerys_defaults(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({**INVENTORY_STYLE, "topology_declared": False}))
    settings = celery_settings(load_config(path))
    [queue] = settings["task_queues"]
    assert not queue.no_declare
    assert not queue.exchange.no_declare
    assert settings["worker_consumer"] == "celery.worker.consumer:Consumer"


TLS = {"ca_file": "/etc/x/ca.crt", "cert_file": "/etc/x/host.crt", "key_file": "/etc/x/host.key"}


def test_tls_connects_with_amqps_and_verifies_the_proxys_name(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({**INVENTORY_STYLE, "tls": {**TLS, "server_name": "amqp.celery-fleet"}}))
    settings = celery_settings(load_config(path))
    assert [urlsplit(url).scheme for url in settings["broker_url"].split(";")] == ["amqps", "amqps"]
    assert settings["broker_use_ssl"] == {
        "ca_certs": "/etc/x/ca.crt",
        "certfile": "/etc/x/host.crt",
        "keyfile": "/etc/x/host.key",
        "cert_reqs": ssl.CERT_REQUIRED,
        # One fixed name, never None: kombu would keep the first URL's host name for every failover target.
        "server_hostname": "amqp.celery-fleet",
    }


def test_without_a_server_name_only_the_cas_signature_is_verified(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text(json.dumps({**INVENTORY_STYLE, "tls": {**TLS, "server_name": ""}}))
    options = celery_settings(load_config(path))["broker_use_ssl"]
    assert "server_hostname" not in options
    assert options["cert_reqs"] == ssl.CERT_REQUIRED


def test_without_tls_the_url_is_plain(config: FleetConfig) -> None:
    assert celery_settings(config)["broker_use_ssl"] is False
