#!/usr/bin/env bash
# Print what runs where in the lab: container, address, inventory groups, state.
set -euo pipefail
label=celery-fleet.lab
ids=$(docker ps --all --quiet --filter "label=$label")
if [ -z "$ids" ]; then
    echo "The lab is not running: 'make lab' starts it."
    exit 0
fi
{
    echo "HOST ADDRESS GROUPS STATE"
    # shellcheck disable=SC2086 # one argument per container id
    docker inspect --format "{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}} {{index .Config.Labels \"$label.groups\"}} {{.State.Status}}" $ids |
        sed 's#^/##' | sort
} | column -t
echo
echo "Shell on a host, as Ansible gets there (new host keys at every 'make lab', hence no known_hosts):"
echo "  ssh -i .cache/ssh/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null deploy@ADDRESS"
# The monitoring host's web UIs (group monitoring), by the address Docker gave it.
# shellcheck disable=SC2086 # one argument per container id
address=$(docker inspect --format "{{index .Config.Labels \"$label.groups\"}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}" $ids |
    awk '$1 ~ /(^|,)monitoring(,|$)/ {print $2; exit}')
if [ -n "$address" ]; then
    echo "Prometheus:   http://$address:9090/alerts"
    echo "Alertmanager: http://$address:9093/"
fi
echo "Remove the lab: make lab-down"
