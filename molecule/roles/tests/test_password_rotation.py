"""A password rotation never puts the password on a command line on a broker.

While the role rotates the application user's password on both clusters
(RabbitMQ 4.0 and 3.10), a sampler on every broker reads every process's
/proc/PID/cmdline every few milliseconds and records any that holds the new
password. rabbitmqctl lives for a second or more (an Erlang VM), so a password
passed to `rabbitmqctl change_password` as an argument is caught every time.
The new password comes from an ansible-vault file, as users keep it, and the
run is at -vvv --diff: neither password, nor the vault's own password, may
show in its output. Then the new password must open an AMQP connection, and
the old one is put back.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import testinfra.host
from fleetlib.brokers import amqp_connection
from fleetlib.hosts import container_address, get, root, root_succeeds
from fleetlib.project import scenario_group_vars
from fleetlib.vaults import leaked, redacted, vault_file
from fleetlib.waits import wait_for

testinfra_hosts = ["ansible://rmq-trixie-1"]

BROKERS = [f"rmq-{release}-{n}" for release in ("trixie", "bookworm") for n in (1, 2, 3)]
GROUP_VARS = scenario_group_vars("roles")["all"]
# The sampler gets the secret as hex, so its own command line does not hold it.
SAMPLER = """
import os, sys, time, pathlib
secret, out, stop = bytes.fromhex(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
samples, hits = 0, {}
while not stop.exists():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if secret in cmdline:
            hits[pid] = cmdline.split(b"\\0")[0].decode(errors="replace")
    samples += 1
    time.sleep(0.005)
out.write_text(f"{samples} {len(hits)} {sorted(set(hits.values()))}")
"""
OUT, STOP = "/root/argv-sampler.out", "/root/argv-sampler.stop"
# The scenario's converge, its users' part on both clusters' brokers only (the proxies and workers keep theirs).
ROTATION = ("molecule/roles/converge.yml", "--tags", "access", "--limit", "rabbitmq:rabbitmq_bookworm")


def start_sampler(broker: testinfra.host.Host, secret: str) -> None:
    root(broker, f"rm -f {OUT} {STOP}")
    root(broker, f"nohup python3 -c '{SAMPLER}' {secret.encode().hex()} {OUT} {STOP} > /dev/null 2>&1 < /dev/null &")


def stop_sampler(broker: testinfra.host.Host) -> tuple[int, int, str]:
    """Samples taken, processes seen with the secret on their command line, and their programs."""
    root(broker, f"touch {STOP}")
    assert wait_for(lambda: root_succeeds(broker, f"test -e {OUT}"), timeout=10), (
        f"{broker.backend.host}: the sampler did not stop"
    )
    samples, hits, programs = root(broker, f"cat {OUT}").split(" ", 2)
    return int(samples), int(hits), programs


@pytest.mark.usefixtures("stack_whole")
def test_a_rotation_keeps_the_password_off_every_command_line(
    host: testinfra.host.Host,
    playbook_runner_at: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    new = f"rotated-{uuid.uuid4().hex}"
    assert new != GROUP_VARS["rabbitmq_app_password"]
    # From a vault file: a password given with -e would sit on the control node's command line.
    vault_password = f"vault-{uuid.uuid4().hex}"
    vault = vault_file(tmp_path, vault_password, {"rabbitmq_app_password": new})
    secret_values = {
        "new password": new,
        "old password": GROUP_VARS["rabbitmq_app_password"],
        "vault password": vault_password,
    }
    brokers = {name: get(host, name) for name in BROKERS}
    for broker in brokers.values():
        start_sampler(broker, new)
    try:
        rotation = playbook_runner_at(
            *ROTATION, "-vvv", "--diff", "--vault-password-file", str(vault.password_file),
            "--extra-vars", f"@{vault.vars_file}",
        )  # fmt: skip
        samples = {name: stop_sampler(broker) for name, broker in brokers.items()}
        output = rotation.stdout + rotation.stderr
        # The failed tasks first: at -vvv the output's tail is mostly connection lines.
        failed = [line for line in output.splitlines() if line.startswith(("fatal:", "failed:")) or "FAILED!" in line]
        assert rotation.returncode == 0, redacted("\n".join([*failed, "...", output[-3000:]]), secret_values)
        assert leaked(output, secret_values) == []
        for release in ("trixie", "bookworm"):
            amqp_connection(container_address(brokers[f"rmq-{release}-1"]), "celery", new, "celery").close()
    finally:
        back = playbook_runner_at(*ROTATION)
    assert back.returncode == 0, back.stdout
    print("rounds of /proc/*/cmdline sampled, processes with the password:", {n: s[:2] for n, s in samples.items()})
    for name, (count, hits, programs) in samples.items():
        # At 5 ms a round, a rabbitmqctl run of a second is sampled many times over.
        assert count >= 100, f"{name}: only {count} samples of /proc/*/cmdline during the rotation"
        assert hits == 0, f"{name}: {hits} processes had the password on their command line: {programs}"
