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

# Reached like a real fleet host: SSH as the unprivileged `deploy`, then sudo
# without a password (Ansible's become). No password: key login only.
useradd --create-home --shell /bin/bash deploy
usermod --password '*' deploy
install -d -m 0700 -o deploy -g deploy /home/deploy/.ssh
printf 'deploy ALL=(ALL:ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/deploy
chmod 0440 /etc/sudoers.d/deploy
visudo -cq
cat > /etc/ssh/sshd_config.d/10-testhost.conf <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
CONF

# No host keys in the image: every container of it would share them. Each
# generates its own at first boot, before sshd starts.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/ssh-hostkeys.service <<'UNIT'
[Unit]
Description=Generate this host's own SSH host keys (the image ships none)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
RequiredBy=ssh.service
UNIT

# The deploy user's public key, as cloud-init would install it from its
# metadata: whoever creates the container mounts it read-only at
# /etc/testhost/authorized_keys (Molecule, the lab). Copied, not used in place,
# so that sshd's StrictModes sees a file owned by deploy, whatever uid owns
# the mounted one on the control node.
cat > /etc/systemd/system/deploy-authorized-keys.service <<'UNIT'
[Unit]
Description=Install the deploy user's authorized SSH key from /etc/testhost
Before=ssh.service
ConditionPathExists=/etc/testhost/authorized_keys

[Service]
Type=oneshot
ExecStart=/usr/bin/install -m 0600 -o deploy -g deploy /etc/testhost/authorized_keys /home/deploy/.ssh/authorized_keys

[Install]
RequiredBy=ssh.service
UNIT
systemctl enable --quiet ssh.service ssh-hostkeys.service deploy-authorized-keys.service >/dev/null

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
