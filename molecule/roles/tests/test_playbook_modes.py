"""site.yml as users run it besides a plain run, against the converged roles stack.

`--check --diff` before a change, and one phase by its tag. Check mode with
one changed value must report exactly that change and make none; the tag run
must run only its phase and find nothing to change. Both run on a broker and
the proxies and workers of both Debian releases (`--limit`, the others' facts
from a cache), as a user checks a change on a few hosts first. (The refusal of an
unconverged host in check mode is tested on the bare hosts of the testhosts
scenario, and at unit level in tests/test_run_phases.py; site.yml from the
installed collection tarball runs on the failover stack.)
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import testinfra.host
from fleetlib.hosts import get, root
from fleetlib.inputs import fact_cache
from fleetlib.playbook_output import assert_nothing_changed, assert_ran_everywhere, changed_tasks, diff_lines, tasks_run
from fleetlib.playbooks import cached_facts_env, run_playbook
from roles_stack import CLUSTERS, EVERY_HOST, PROXIES, WORKERS

testinfra_hosts = ["ansible://haproxy-trixie"]

SITE = "playbooks/site.yml"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
# One broker of the cluster site.yml deploys (the Debian 12 one is the converge's own), and the proxies and
# workers of both Debian releases: the runs below are --limit'ed to them, and to the control node, where the
# inventory check runs (every role, every phase; the second converge, test_idempotence.py, covers every host).
TIERS = (CLUSTERS["rabbitmq"][0], *PROXIES, *WORKERS)

Runner = Callable[..., subprocess.CompletedProcess[str]]


# The one place this module runs a playbook on the scenario's stack.
@pytest.fixture(scope="module")
def site(scenario_inventory: Path, tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """site.yml on TIERS; the other hosts' facts (a proxy reads its brokers' addresses, a broker its cluster's
    names) from a cache gathered once, as a user's --limit'ed run with a fact cache reads them."""
    cache = tmp_path_factory.mktemp("facts")
    fact_cache(scenario_inventory, EVERY_HOST, cache)
    env = cached_facts_env(cache)
    return lambda *args: run_playbook(
        SITE, scenario_inventory, "--limit", ",".join([*TIERS, "localhost"]), *args, env=env
    )


def test_check_mode_reports_exactly_one_changed_value_and_changes_nothing(
    host: testinfra.host.Host, site: Runner
) -> None:
    """`--check --diff` on the converged stack with one value changed: exactly that line's diff and the reload
    it would bring, on each proxy, and no other task reporting a change on any host of the run (so check mode without
    the change would report none: a separate run would repeat this one), while the file stays as it was."""
    before = {name: root(get(host, name), f"sha256sum {HAPROXY_CFG}") for name in PROXIES}
    result = site("--check", "--diff", "--extra-vars", "haproxy_timeout_client=31")
    assert set(assert_ran_everywhere(result, TIERS)) <= {*TIERS, "localhost"}, "the run went beyond --limit"
    assert diff_lines(result.stdout) == ["-    timeout client 30s", "+    timeout client 31s"] * len(PROXIES), (
        result.stdout
    )
    expected = {
        (task, name)
        for name in PROXIES
        for task in [
            "celery_fleet.fleet.haproxy : Install haproxy.cfg (checked with haproxy -c first)",
            "celery_fleet.fleet.haproxy : Reload HAProxy",
        ]
    }
    assert changed_tasks(result.stdout) == expected, result.stdout
    assert {name: root(get(host, name), f"sha256sum {HAPROXY_CFG}") for name in PROXIES} == before


def test_a_tag_runs_only_its_phase(site: Runner) -> None:
    listed = site("--tags", "configure", "--list-tasks")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    # Every task listed carries the phase's tag or `always` (validation, and the reads later phases need).
    tags = re.findall(r"^ {6}(\S.*?)\tTAGS: \[(.*)\]$", listed.stdout, re.MULTILINE)
    assert tags, listed.stdout
    assert [name for name, tag in tags if not {"configure", "always"} & set(tag.split(", "))] == []

    result = site("--tags", "configure")
    # No task of the inventory check carries the tag: localhost may not show in the recap.
    assert set(assert_nothing_changed(result, TIERS)) <= {*TIERS, "localhost"}, "the run went beyond --limit"
    ran = tasks_run(result.stdout)
    assert {
        "celery_fleet.fleet.rabbitmq : Install rabbitmq.conf, advanced.config and enabled_plugins",
        "celery_fleet.fleet.haproxy : Install haproxy.cfg (checked with haproxy -c first)",
        "celery_fleet.fleet.celery_worker : Write one Supervisor program per worker pool",
    } <= ran, result.stdout
    other_phases = {
        "celery_fleet.fleet.rabbitmq : Install rabbitmq-server",
        "celery_fleet.fleet.rabbitmq : Read the cluster status on the seed",
        "celery_fleet.fleet.rabbitmq : Install the health agent",
        "celery_fleet.fleet.rabbitmq : Read the cluster's vhosts, users and permissions",
        "celery_fleet.fleet.celery_worker : Create the workers' unprivileged user",
        "celery_fleet.fleet.celery_worker : Read the broker's exchanges, queues and bindings",
    }
    assert ran & other_phases == set(), result.stdout
