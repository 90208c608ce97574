#!/bin/sh
# The Rust toolchain: Debian's rustc and cargo, the wasm32-wasi standard
# library, and serde_json's sources for offline builds.
#
#   install.sh [--check]    --check: install nothing; say what is missing
#                           (exit status 1) or nothing (0)
set -eu
packages="rustc cargo libstd-rust-dev-wasm32 librust-serde-json-dev"
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
[ "${1:-}" = --check ] && { echo "Debian packages:$missing"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
    echo "install: as root, run: apt-get install$missing" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $missing >/dev/null
