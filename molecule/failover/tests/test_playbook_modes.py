"""site.yml as users run it besides a plain run, against the converged stack.

--check --diff before a change, one phase by its tag, and the collection
as users install it: the built tarball, installed outside this checkout.
Check mode with one changed value must report exactly that change and make
none; the tag run and the tarball's run must find nothing to change.
(The refusal of an unconverged host in check mode is tested on the bare
hosts of the testhosts scenario, and at unit level in tests/test_run_phases.py.)
"""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import testinfra.host
from faults import PROXIES
from fleetlib.hosts import get, root
from fleetlib.playbooks import run_playbook
from fleetlib.project import PROJECT_DIR

testinfra_hosts = ["ansible://fo-haproxy"]

SITE = "playbooks/site.yml"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")
TASK_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.+?)\] \*")
CHANGED_LINE = re.compile(r"^changed: \[(?P<host>[^\]]+)\]")

Runner = Callable[..., subprocess.CompletedProcess[str]]


# The one place this module runs a playbook on the scenario's stack.
@pytest.fixture(scope="module")
def site() -> Runner:
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    return lambda *args: run_playbook(SITE, inventory, *args)


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP's counts per host."""
    lines = output[output.rindex("PLAY RECAP") :].splitlines()[1:]
    found = (RECAP_LINE.match(line.strip()) for line in lines)
    return {
        row["host"]: {key: int(value) for key, value in (pair.split("=") for pair in row["counts"].split())}
        for row in found
        if row
    }


def changed_tasks(output: str) -> set[tuple[str, str]]:
    """(task name, host) of every task or handler that reported a change."""
    task, changed = "", set()
    for line in output.splitlines():
        if header := TASK_HEADER.match(line):
            task = header["name"]
        elif result := CHANGED_LINE.match(line):
            changed.add((task, result["host"]))
    return changed


def tasks_run(output: str) -> set[str]:
    return {header["name"] for line in output.splitlines() if (header := TASK_HEADER.match(line))}


def diff_lines(output: str) -> list[str]:
    """The - and + lines of every diff hunk in the output."""
    lines, in_hunk = [], False
    for line in output.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
            lines.append(line)
        elif not line.startswith(" "):
            in_hunk = False
    return lines


def assert_ran_everywhere(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """The run succeeded on every tier, with no failure; its recap."""
    assert result.returncode == 0, result.stdout + result.stderr
    counts = recap(result.stdout)
    assert set(counts) >= {"fo-haproxy", "fo-rabbitmq-1", "fo-worker-1"}, result.stdout
    assert {host: row["failed"] for host, row in counts.items() if row["failed"]} == {}, result.stdout
    return counts


def assert_nothing_changed(result: subprocess.CompletedProcess[str]) -> None:
    counts = assert_ran_everywhere(result)
    assert {host: row["changed"] for host, row in counts.items() if row["changed"]} == {}, result.stdout


def test_check_mode_reports_exactly_one_changed_value_and_changes_nothing(
    host: testinfra.host.Host, site: Runner
) -> None:
    """`--check --diff` on the converged stack with one value changed: exactly that line's diff and the reload
    it would bring, on each proxy, and no other task reporting a change on any host (so check mode without
    the change would report none: a separate run would repeat this one), while the file stays as it was."""
    before = {name: root(get(host, name), f"sha256sum {HAPROXY_CFG}") for name in PROXIES}
    result = site("--check", "--diff", "--extra-vars", "haproxy_timeout_client=31")
    assert_ran_everywhere(result)
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
    assert_nothing_changed(result)
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
        "celery_fleet.fleet.haproxy : Install HAProxy",
        "celery_fleet.fleet.celery_worker : Create the workers' unprivileged user",
        "celery_fleet.fleet.celery_worker : Read the broker's exchanges, queues and bindings",
    }
    assert ran & other_phases == set(), result.stdout


def user_env(install: Path) -> dict[str, str]:
    """Only what a user's own setup would give: no ANSIBLE_* of this checkout or of
    Molecule, no ansible.cfg (commands start in the install path), the collection
    found only where it was installed (plus the `ansible` bundle, on Python's path).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    return env | {
        "ANSIBLE_COLLECTIONS_PATH": str(install),
        "ANSIBLE_PIPELINING": "true",
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
        "plugins/filter/run_phases.py",
        "roles/rabbitmq/tasks/main.yml",
        "reference_app/pyproject.toml",
        "haproxy/haproxy.cfg",
        "docs/rabbitmq.md",
    }
    assert needed - set(files) == set(), files
    left_out = ("molecule/", "tests/", "tools/", "images/", "inventories/", ".cache/", "docs/testing.md")
    assert [name for name in files if name.startswith(left_out)] == []


def test_site_from_the_installed_tarball_finds_nothing_to_change(installed_collection: tuple[Path, list[str]]) -> None:
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
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    # A collection's playbook by its full name, as users call it.
    assert_nothing_changed(run_playbook("celery_fleet.fleet.site", inventory, env=env, cwd=install))
