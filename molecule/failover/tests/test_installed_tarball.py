"""The collection as users install it: the built tarball, installed outside this checkout, and its site.yml and
monitoring.yml run against the converged failover stack, after the faults and the broker's replacement, in one
ansible-playbook run: they must find nothing to change (the scenario's second run, in place of Molecule's
idempotence step), so the replacement left the fleet as the inventory describes it.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import testinfra.host
from fleetlib.playbook_output import assert_nothing_changed
from fleetlib.playbooks import run_playbook
from fleetlib.project import PROJECT_DIR
from replacement import inventory_now

testinfra_hosts = ["ansible://fo-haproxy"]

# One host of each tier site.yml deploys.
TIERS = ("fo-rabbitmq-1", "fo-haproxy", "fo-worker-1")


def user_env(install: Path) -> dict[str, str]:
    """Only what a user's own setup would give: no ANSIBLE_* of this checkout or of
    Molecule, no ansible.cfg (commands start in the install path), the collection
    found only where it was installed (plus the `ansible` bundle, on Python's path).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    return env | {
        "ANSIBLE_COLLECTIONS_PATH": str(install),
        "ANSIBLE_PIPELINING": "true",
        # As a user with more hosts than Ansible's default 5 forks sets it: the nine hosts in one batch, not two.
        "ANSIBLE_FORKS": "10",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s",
        "ANSIBLE_NOCOLOR": "1",
    }


@pytest.fixture(scope="module")
def installed_collection() -> Iterator[tuple[Path, list[str]]]:
    """The tarball built from this checkout, installed into an empty path outside it: (path, tarball's files)."""
    (PROJECT_DIR / ".cache").mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=PROJECT_DIR / ".cache", prefix="collection-build-") as build,
        tempfile.TemporaryDirectory(prefix="celery-fleet-installed-") as install,
    ):
        galaxy = ["ansible-galaxy", "collection"]
        subprocess.run([*galaxy, "build", str(PROJECT_DIR), "--output-path", build], check=True, timeout=300)
        tarball = next(Path(build).glob("celery_fleet-fleet-*.tar.gz"))
        with tarfile.open(tarball) as archive:
            files = sorted(archive.getnames())
        # --no-deps: Galaxy is unreachable, and the dependencies (ansible.posix,
        # community.*) come with the `ansible` bundle, found on Python's path.
        # In the user's environment: with this checkout's (or Molecule's) collections
        # path, ansible-galaxy finds the checkout's link and installs nothing.
        subprocess.run(
            [*galaxy, "install", str(tarball), "-p", install, "--no-deps"],
            check=True,
            timeout=300,
            env=user_env(Path(install)),
            cwd=install,
        )
        yield Path(install), files


def test_the_tarball_holds_what_users_run_and_nothing_else(installed_collection: tuple[Path, list[str]]) -> None:
    _, files = installed_collection
    # reference_app/: the celery_worker role's default app source ({{ role_path }}/../../reference_app).
    needed = {
        "MANIFEST.json",
        "playbooks/site.yml",
        "playbooks/rabbitmq-rolling-restart.yml",
        "plugins/action/debian_packages.py",
        "plugins/module_utils/run_phases.py",
        "roles/rabbitmq/tasks/main.yml",
        "playbooks/diagnose.yml",
        "plugins/modules/celery_worker_probe.py",
        "plugins/modules/haproxy_sessions.py",
        "plugins/module_utils/diagnosis.py",
        "roles/diagnose/tasks/main.yml",
        "playbooks/monitoring.yml",
        "roles/monitoring/templates/celery_fleet.rules.yml.j2",
        "roles/node_exporter/tasks/main.yml",
        "roles/celery_worker/files/celery_fleet_feed.py",
        "plugins/module_utils/procfs.py",
        "reference_app/pyproject.toml",
        "haproxy/haproxy.cfg",
        "docs/rabbitmq.md",
    }
    assert needed - set(files) == set(), files
    left_out = ("molecule/", "tests/", "tools/", "images/", "inventories/", ".cache/", "docs/testing.md")
    assert [name for name in files if name.startswith(left_out)] == []


def test_site_and_monitoring_from_the_installed_tarball_find_nothing_to_change(
    host: testinfra.host.Host, installed_collection: tuple[Path, list[str]], scenario_inventory: Path
) -> None:
    install, _ = installed_collection
    env = user_env(install)
    listed = subprocess.run(
        ["ansible-galaxy", "collection", "list", "celery_fleet.fleet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=install,
        check=False,
    )
    assert str(install / "ansible_collections") in listed.stdout, listed.stdout + listed.stderr
    assert str(PROJECT_DIR) not in listed.stdout, listed.stdout
    # After the replacement (test_replace_node.py), the inventory an operator edited for it.
    inventory = inventory_now(host, scenario_inventory)
    # The collection's playbooks by their full names, as users call them; both in one run (ansible-playbook takes
    # several), as the scenario's converge runs them.
    result = run_playbook("celery_fleet.fleet.site", inventory, "celery_fleet.fleet.monitoring", env=env, cwd=install)
    assert_nothing_changed(result, ("fo-monitoring", *TIERS))
