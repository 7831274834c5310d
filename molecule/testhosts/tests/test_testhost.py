"""The test-host images boot systemd and carry the tools the other scenarios use."""

import pytest
import testinfra.host


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
