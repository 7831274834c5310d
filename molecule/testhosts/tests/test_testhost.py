"""The test-host images boot systemd, carry the tools the other scenarios use, and take SSH logins as `deploy`."""

import subprocess
from pathlib import Path

import pytest
import testinfra.host
from fleetlib.hosts import container_address


def test_systemd_is_pid_1_and_running(host: testinfra.host.Host) -> None:
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


@pytest.mark.parametrize("command", ["python3", "sudo", "ip", "iptables", "tcpdump", "pgrep"])
def test_tool_is_installed(host: testinfra.host.Host, command: str) -> None:
    assert host.exists(command)


def test_network_sysctls_are_writable_after_prepare(host: testinfra.host.Host) -> None:
    # Per network namespace: writing it changes this container only.
    with host.sudo():
        result = host.run("sysctl -w net.ipv4.tcp_keepalive_time=7201")
    assert result.rc == 0, result.stderr
    assert host.sysctl("net.ipv4.tcp_keepalive_time") == 7201


def test_iptables_can_filter(host: testinfra.host.Host) -> None:
    result = host.run("iptables -L OUTPUT -n")
    assert result.rc == 0, result.stderr


# --- Reached as a fleet host is: SSH as the unprivileged `deploy`, then sudo ---

SSH_KEY = Path(__file__).resolve().parents[3] / ".cache" / "ssh" / "id_ed25519"
# Throw-away containers with fresh host keys at every create: nothing to pin.
SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]  # fmt: skip


def ssh(host: testinfra.host.Host, user: str, command: str) -> subprocess.CompletedProcess[str]:
    """Run a command on the host over SSH from the control node, with this checkout's key."""
    return subprocess.run(
        ["ssh", "-i", str(SSH_KEY), *SSH_OPTIONS, f"{user}@{container_address(host)}", command],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_sshd_is_enabled_and_running(host: testinfra.host.Host) -> None:
    sshd = host.service("ssh")
    assert sshd.is_enabled
    assert sshd.is_running


def test_deploy_logs_in_with_the_checkout_key_and_sudo_asks_no_password(host: testinfra.host.Host) -> None:
    result = ssh(host, "deploy", "id -un && sudo --non-interactive id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["deploy", "root"]


def test_root_cannot_log_in_over_ssh(host: testinfra.host.Host) -> None:
    result = ssh(host, "root", "true")
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_host_keys_are_made_by_each_container_not_shipped_in_the_image(host: testinfra.host.Host) -> None:
    container = host.backend.get_hostname()
    image = subprocess.run(["docker", "inspect", "--format", "{{.Image}}", container],
                           capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    shipped = subprocess.run(["docker", "run", "--rm", image, "sh", "-c", "ls /etc/ssh/ssh_host_* 2>/dev/null || true"],
                             capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    assert shipped == [], f"{image} ships SSH host keys: every container of it would share them"
    # This container made its own at boot, and sshd presents it.
    own = host.file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()[1]
    scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", container_address(host)],
                          capture_output=True, text=True, timeout=30, check=True).stdout.split()  # fmt: skip
    assert own in scan


# --- The bytecode cache for Ansible's payloads (images/testhost/ansiballz_bytecode.py) ---

CACHE_DIR = "/var/cache/ansiballz-bytecode"


def test_every_system_python_loads_the_bytecode_cache(host: testinfra.host.Host) -> None:
    script = "import zipimport, ansiballz_bytecode as cache; print(zipimport._compile_source is cache.cached_compile)"
    loaded = host.run(f"python3 -c '{script}'")
    assert loaded.stdout.strip() == "True", loaded.stdout + loaded.stderr
    # Compiled in the image: a user other than root could not write its bytecode, and would compile it each time.
    assert host.run("ls /usr/lib/python3/dist-packages/__pycache__/ansiballz_bytecode.*.pyc").rc == 0


def test_a_user_other_than_root_does_not_use_the_bytecode_cache(host: testinfra.host.Host) -> None:
    script = "import ansiballz_bytecode as cache; print(cache.usable(cache.CACHE_DIR))"
    used = host.run(f"runuser -u deploy -- python3 -c '{script}'")
    assert used.stdout.strip() == "False", used.stdout + used.stderr


def test_the_converge_left_compiled_payloads_in_a_cache_only_root_can_write(host: testinfra.host.Host) -> None:
    # The converge's fact gathering ran as root (this scenario connects through Docker, as root).
    cache = host.file(CACHE_DIR)
    assert (cache.is_directory, cache.user, cache.mode) == (True, "root", 0o700)
    assert host.run(f"ls {CACHE_DIR}").stdout.split() != []
