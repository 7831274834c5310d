"""The converge-time tool's inventories, and the docs' copies of its committed reference runs."""

from __future__ import annotations

import json

import converge_timing


def reference() -> dict[str, dict[str, object]]:
    return json.loads(converge_timing.REFERENCE.read_text())


def test_the_reference_meets_the_scaling_targets() -> None:
    runs = reference()
    two, ten = runs["2-workers"], runs["10-workers"]
    assert ten["first_run_s"] < 2 * two["first_run_s"]
    assert two["second_run_s"] <= two["first_run_s"] / 4
    assert all(run["second_run_changed"] == 0 for run in runs.values())


def test_extra_workers_follow_the_labs_own() -> None:
    hosts = converge_timing.overlay(4)["lab"]["children"]["celery_workers"]["hosts"]
    assert hosts["lab-worker-1"] == {}
    assert hosts["lab-worker-4"] == {"ansible_host": "10.213.1.34"}


def test_the_docker_overlay_moves_every_host_to_the_docker_api() -> None:
    tiers = converge_timing.overlay(2, "docker")["lab"]["children"]
    hosts = {name: host for tier in tiers.values() for name, host in tier["hosts"].items()}
    # Every host of inventories/lab: 3 brokers, 2 proxies, 2 workers, the monitoring host.
    assert len(hosts) == 8
    assert all(host["ansible_connection"] == "community.docker.docker" for host in hosts.values())
    assert all(host["ansible_docker_host"] == name for name, host in hosts.items())


def test_runs_write_to_an_ignored_path() -> None:
    ignored = (converge_timing.PROJECT_DIR / ".gitignore").read_text().split()
    assert converge_timing.OUT_DIR.relative_to(converge_timing.PROJECT_DIR).parts[0] + "/" in ignored
