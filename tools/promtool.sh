#!/usr/bin/env bash
# Put promtool at .cache/tools/promtool for the alert rules' unit tests
# (tests/test_alert_rules.py): one on the PATH if there is one, else the one
# in Debian's prometheus package, unpacked without installing the package
# (which would start a Prometheus server on this host).
set -euo pipefail
cd "$(dirname "$0")/.."
target=.cache/tools/promtool
[ -x "$target" ] && exit 0
mkdir -p "$(dirname "$target")"
if command -v promtool >/dev/null; then
    ln -sfn "$(command -v promtool)" "$target"
    exit 0
fi
command -v apt-get >/dev/null || {
    echo "promtool: not found; install Prometheus's promtool on the PATH, then re-run." >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# _apt cannot write to a root-only temporary directory: let it.
chmod 0755 "$work"
(cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
    apt-get update -qq
    (cd "$work" && apt-get download prometheus >/dev/null)
}
dpkg-deb -x "$work"/prometheus_*.deb "$work/unpacked"
install -m 0755 "$work/unpacked/usr/bin/promtool" "$target"
echo "promtool: $("$target" --version 2>&1 | head -1)"
