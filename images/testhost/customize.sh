#!/bin/sh
# Runs inside the debootstrapped root file system (chroot) before it is
# imported as an image. Makes systemd a good PID 1 in a container.
set -eu

# Units that need a real console or hardware, or that would start apt and
# fstrim jobs in the middle of a test run.
for unit in getty.target getty@tty1.service console-getty.service \
    systemd-ask-password-wall.path systemd-pstore.service \
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer \
    remote-fs.target systemd-udevd.service systemd-udev-trigger.service \
    systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount; do
    ln -sf /dev/null "/etc/systemd/system/$unit"
done

# Lean, predictable package installs for the roles under test.
cat > /etc/apt/apt.conf.d/90testhost <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
CONF

# The image ships no package lists, marked stale (epoch mtime, no success
# stamp) so that a role's `cache_valid_time` refreshes them on first use.
apt-get clean
rm -rf /var/lib/apt/lists/* /var/lib/apt/periodic/* /var/log/*.log /tmp/* /var/tmp/*
touch -d @0 /var/lib/apt/lists
: > /etc/machine-id
