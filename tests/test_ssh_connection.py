"""Ansible reaches hosts as a fleet is reached: SSH as an unprivileged user, root through become."""

import ipaddress
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
TIER_PLAYBOOKS = [
    "rabbitmq.yml",
    "haproxy.yml",
    "celery_workers.yml",
    "haproxy-maintenance.yml",
    "rabbitmq-rolling-restart.yml",
]


@pytest.mark.parametrize("name", TIER_PLAYBOOKS)
def test_every_play_becomes_root_and_assumes_no_remote_user(name: str) -> None:
    for play in yaml.safe_load((PROJECT_DIR / "playbooks" / name).read_text()):
        assert play.get("become") is True, f"{name}: play {play['name']!r} does not declare become: true"
        assert "remote_user" not in play, f"{name}: play {play['name']!r} names a remote user"


def test_no_task_becomes_a_non_root_user() -> None:
    # Becoming an unprivileged user from an unprivileged one needs ACLs (or
    # world-readable temporary files) on the hosts; the roles never do it.
    for path in (PROJECT_DIR / "roles").rglob("*.yml"):
        assert "become_user" not in path.read_text(), path


def test_lab_hosts_are_reached_over_ssh_at_addresses_in_the_lab_subnet() -> None:
    lab_vars = yaml.safe_load((PROJECT_DIR / "inventories" / "lab" / "group_vars" / "lab.yml").read_text())
    assert lab_vars["ansible_connection"] == "ssh"
    assert lab_vars["ansible_user"] == "deploy"
    subnet = ipaddress.ip_network(
        yaml.safe_load((PROJECT_DIR / "roles" / "lab" / "defaults" / "main.yml").read_text())["lab_network_subnet"]
    )
    hosts = yaml.safe_load((PROJECT_DIR / "inventories" / "lab" / "hosts.yml").read_text())
    addresses = [
        host["ansible_host"] for group in hosts["lab"]["children"].values() for host in group["hosts"].values()
    ]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(address) in subnet for address in addresses)


def test_failover_hosts_are_reached_over_ssh_at_their_containers_fixed_addresses() -> None:
    config = yaml.safe_load((PROJECT_DIR / "molecule" / "failover" / "molecule.yml").read_text())
    host_vars = config["provisioner"]["inventory"]["host_vars"]
    subnet = ipaddress.ip_network(config["platforms"][0]["docker_networks"][0]["ipam_config"][0]["subnet"])
    for platform in config["platforms"]:
        address = platform["networks"][0]["ipv4_address"]
        assert ipaddress.ip_address(address) in subnet
        assert host_vars[platform["name"]]["ansible_host"] == address, platform["name"]
        assert host_vars[platform["name"]]["ansible_connection"] == "ssh"
        assert host_vars[platform["name"]]["ansible_user"] == "deploy"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A bare copy of the key script, as if in a fresh checkout."""
    (tmp_path / "tools").mkdir()
    shutil.copy(PROJECT_DIR / "tools" / "ssh-key.sh", tmp_path / "tools" / "ssh-key.sh")
    return tmp_path


def make_key(checkout: Path) -> None:
    subprocess.run([checkout / "tools" / "ssh-key.sh"], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_the_key_pair_is_made_once_per_checkout_under_the_ignored_cache(checkout: Path) -> None:
    make_key(checkout)
    key = checkout / ".cache" / "ssh" / "id_ed25519"
    public = key.with_suffix(".pub").read_text()
    assert public.startswith("ssh-ed25519 ")
    assert key.stat().st_mode & 0o077 == 0
    make_key(checkout)
    assert key.with_suffix(".pub").read_text() == public
    # A bind mount of the missing public key leaves a directory in its place.
    key.with_suffix(".pub").unlink()
    key.with_suffix(".pub").mkdir()
    make_key(checkout)
    assert key.with_suffix(".pub").read_text().split()[:2] == public.split()[:2]
    assert ".cache/" in (PROJECT_DIR / ".gitignore").read_text().splitlines()
