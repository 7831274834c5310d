#!/usr/bin/env bash
# Make sure this control node can run the lab and the tests: a Docker engine
# that answers, debootstrap for building the test-host images, and the SSH
# client Ansible reaches the test hosts with.
# On Debian as root, whatever is missing is installed from Debian's packages;
# elsewhere the script says what is missing and stops.
set -euo pipefail

log() { printf 'host-prereqs: %s\n' "$*"; }
die() { printf 'host-prereqs: ERROR: %s\n' "$*" >&2; exit 1; }

can_apt() { [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; }

apt_install() {
    can_apt || die "missing $*; install it with your package manager (Debian: apt-get install $*), then re-run."
    log "installing $* from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

engine_answers() { docker info >/dev/null 2>&1; }

start_engine() {
    if [ -d /run/systemd/system ]; then
        systemctl start docker
    else
        # No init system to supervise it (CI sandboxes, containers): run it detached.
        log "starting dockerd (log: /var/log/dockerd.log)"
        nohup dockerd >/var/log/dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do
        engine_answers && return 0
        sleep 1
    done
    die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
}

command -v debootstrap >/dev/null || apt_install debootstrap
{ command -v ssh && command -v ssh-keygen; } >/dev/null || apt_install openssh-client
if ! engine_answers; then
    command -v dockerd >/dev/null || apt_install docker.io
    command -v docker >/dev/null || apt_install docker-cli
    [ "$(id -u)" -eq 0 ] || die "no Docker engine answers and starting one needs root"
    start_engine
fi
log "docker engine $(docker version --format '{{.Server.Version}}'), $(debootstrap --version)"
