#!/bin/sh
# Debian packages the test suite needs beyond Python: iproute2 for the
# network-namespace cluster tests and nftables for their packet loss and
# partitions; openssh-server (sshd per namespace),
# openssh-client and systemd (systemd-analyze) for the Ansible rollout tests;
# start-stop-daemon comes with dpkg. Installed only when running as root (as
# CI does) and only when missing; otherwise this does nothing.
set -eu
missing=""
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$missing nftables"
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v ssh >/dev/null 2>&1 || missing="$missing openssh-client"
command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing$missing; the namespace and rollout tests will be skipped (install as root: apt-get install$missing)" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
