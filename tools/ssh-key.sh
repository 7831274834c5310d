#!/usr/bin/env bash
# The SSH key pair Ansible and the tests reach the test hosts with, as the
# unprivileged `deploy` user: one per checkout, under the ignored .cache/, never
# committed. Containers get the public half at creation (see
# images/testhost/customize.sh); the private half never leaves this machine.
# `make molecule` and `make lab` run this; so does Molecule's dependency step.
set -euo pipefail
cd "$(dirname "$0")/.."
key=.cache/ssh/id_ed25519
command -v ssh-keygen >/dev/null || { echo "ssh-key: ssh-keygen is missing; run 'make host-prereqs'" >&2; exit 1; }
mkdir -p .cache/ssh
chmod 0700 .cache/ssh
if [ ! -f "$key" ]; then
    ssh-keygen -q -t ed25519 -N '' -C "celery-fleet test hosts ($(hostname))" -f "$key"
    echo "ssh-key: created $key"
elif [ ! -f "$key.pub" ]; then
    # A bind mount of a missing file leaves a directory in its place.
    rmdir "$key.pub" 2>/dev/null || true
    ssh-keygen -y -f "$key" > "$key.pub"
fi
