"""Run inventories/example, as shipped, against lab containers standing in for its hosts.

    python tools/example_on_lab.py

The example's hosts.yml, group_vars and vault are used unchanged, with the
documented vault key in a password file. The only additions are what a user's
SSH set-up would hold (each example host's address, a lab container's, and
the lab's key), the proxies' virtual address on the lab's network, and the
two variables that let the roles accept the example's published secrets on
these throw-away stand-ins. Brings the lab up with four workers, runs site.yml twice (the
second must report changed=0), sends one task through the example's proxies,
removes the lab and writes .cache/example-on-lab/result.json.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
import uuid

from converge_timing import LAB, PROJECT_DIR, changed_total, overlay, playbook

OUT_DIR = PROJECT_DIR / ".cache" / "example-on-lab"
EXAMPLE = PROJECT_DIR / "inventories" / "example"
VAULT_KEY = "example-vault-key"  # documented in inventories/example/README.md
WORKERS = 4
# The celery_worker role's defaults, which the example keeps.
VENV_PYTHON = "/opt/celery-fleet/venv/bin/python"
COMPLETED_LOG = "/var/lib/celery-fleet/completed.log"


def addresses() -> dict[str, str]:
    """Each example host's address: that of the lab container that plays it."""
    return {
        "rabbitmq-1.example.internal": "10.213.1.11",
        "rabbitmq-2.example.internal": "10.213.1.12",
        "rabbitmq-3.example.internal": "10.213.1.13",
        "amqp-proxy-1.example.internal": "10.213.1.21",
        "amqp-proxy-2.example.internal": "10.213.1.22",
    } | {f"worker-{n:02d}.example.internal": f"10.213.1.{30 + n}" for n in range(1, WORKERS + 1)}


def stand_ins() -> dict[str, object]:
    """The example's hosts reached at those addresses with the lab's key."""
    ssh = {
        "ansible_ssh_private_key_file": str(PROJECT_DIR / ".cache" / "ssh" / "id_ed25519"),
        # The containers make new host keys whenever they are created.
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
    }
    # The example's vault key is documented, so its secrets are refused anywhere but a lab.
    published = {"rabbitmq_allow_published_secrets": True, "celery_worker_allow_published_secrets": True}
    # The example's virtual address is a placeholder of its own network: the stand-ins share one of the lab's
    # (host variables, which outrank the example's group_vars).
    hosts = {name: {"ansible_host": address, "haproxy_virtual_address": "10.213.1.20"}
             for name, address in addresses().items()}  # fmt: skip
    return {"all": {"vars": ssh | published, "hosts": hosts}}


def resolve_names() -> None:
    """The fleet's DNS, in /etc/hosts: the example names its brokers and proxies to each other by host name."""
    lines = "".join(f"{address} {name}\n" for name, address in addresses().items())
    containers = subprocess.run(
        ["docker", "ps", "--filter", "label=celery-fleet.lab", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for container in containers:
        append = ["docker", "exec", "-i", container, "sh", "-c", "cat >> /etc/hosts"]
        subprocess.run(append, input=lines, text=True, check=True)


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    lab_overlay = OUT_DIR / "lab-inventory.json"
    lab_overlay.write_text(json.dumps(overlay(WORKERS)))
    example_overlay = OUT_DIR / "addresses.json"
    example_overlay.write_text(json.dumps(stand_ins()))
    lab = [LAB, lab_overlay]
    example = [EXAMPLE, example_overlay]
    with tempfile.NamedTemporaryFile("w", dir=OUT_DIR, suffix=".key") as key:
        key.write(VAULT_KEY + "\n")
        key.flush()
        vault = ("--vault-password-file", key.name)
        try:
            playbook(lab, "playbooks/lab.yml")
            resolve_names()
            first, _ = playbook(example, "playbooks/site.yml", *vault, log=OUT_DIR / "site-run-1.log")
            second, second_out = playbook(example, "playbooks/site.yml", *vault, log=OUT_DIR / "site-run-2.log")
            task = round_trip()
        finally:
            playbook(lab, "playbooks/lab.yml", "--extra-vars", "lab_state=absent")
    result = {
        "first_run_s": first,
        "second_run_s": second,
        "second_run_changed": changed_total(second_out),
        "hosts": len(re.findall(r"^\S+\s+: ok=", second_out, re.MULTILINE)),
        "task_completed_on": task,
    }
    (OUT_DIR / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["second_run_changed"] == 0 and task in worker_containers() else 1


def worker_containers() -> list[str]:
    return [f"lab-worker-{n}" for n in range(1, WORKERS + 1)]


def round_trip(timeout_s: float = 60.0) -> str:
    """Publish one `record` task from worker-01 through the example's proxies; the worker host that ran it."""
    token = uuid.uuid4().hex
    publish = f"from celery_fleet_app.tasks import record; record.delay({token!r})"
    subprocess.run(["docker", "exec", "lab-worker-1", VENV_PYTHON, "-c", publish], check=True, timeout=60)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for container in worker_containers():
            log = subprocess.run(["docker", "exec", container, "cat", COMPLETED_LOG], capture_output=True, text=True)
            if token in log.stdout:
                return container
        time.sleep(1)
    return "not completed"


if __name__ == "__main__":
    sys.exit(main())
