#!/bin/sh
# Make the board bundle: this checkout's wheel with the deploy files a board
# needs (install-agent.sh, the systemd unit), as one tarball for first-boot
# installs (cloud-init), Ansible or a USB stick:
#
#   deploy/make-bundle.sh [OUT]      # default build/edgebench-bundle.tar.gz
#
# On a board: tar -xzf edgebench-bundle.tar.gz && sudo edgebench-bundle/deploy/install-agent.sh ...
# (install-agent.sh installs the wheel next to deploy/ when there is one).
set -eu
die() { echo "make-bundle.sh: error: $*" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$REPO/build/edgebench-bundle.tar.gz}
case "$OUT" in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
PY=python3
[ -x "$REPO/.venv/bin/python" ] && PY=$REPO/.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/edgebench-bundle/deploy/systemd" "$tmp/src"
# build from a copy of what the distribution holds: setuptools would otherwise
# walk the whole checkout (build/ may hold root file systems)
(cd "$REPO" && cp -r pyproject.toml README.md agent collector models "$tmp/src/")
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m pip wheel --quiet --no-deps -w "$tmp/edgebench-bundle" "$tmp/src" >"$tmp/pip.log" 2>&1 ||
    die "building the wheel failed: $(tail -n 1 "$tmp/pip.log")"
cp "$REPO/deploy/install-agent.sh" "$tmp/edgebench-bundle/deploy/"
cp "$REPO/deploy/systemd/edgebench-agent.service" "$tmp/edgebench-bundle/deploy/systemd/"
mkdir -p "$(dirname "$OUT")"
tar -C "$tmp" -czf "$OUT" edgebench-bundle
echo "$OUT: $(cd "$tmp/edgebench-bundle" && ls -- *.whl) with deploy/install-agent.sh and the unit ($(du -k "$OUT" | cut -f1) KiB)"
