#!/bin/sh
# The servers the event tests start on loopback (tests/fixtures/services.py):
# the Mosquitto broker and its mosquitto_pub/mosquitto_sub (Debian), and
# pouchdb-server (npm, into the checkout's .cache/npm) standing in for
# CouchDB. Installed only when missing, so a second run does nothing; the
# Debian packages only as root (as CI runs), otherwise this says what to
# install and the event tests skip.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
prefix="$root/.cache/npm"
POUCHDB_SERVER_VERSION=4.2.0

missing=""
[ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_pub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "events-deps: missing$missing; the event tests will be skipped (install as root: apt-get install$missing)" >&2
        exit 0
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

installed=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' \
    "$prefix/node_modules/pouchdb-server/package.json" 2>/dev/null || true)
if [ "$installed" != "$POUCHDB_SERVER_VERSION" ] || [ ! -x "$prefix/node_modules/.bin/pouchdb-server" ]; then
    mkdir -p "$prefix"
    # --ignore-scripts: the tests run it --in-memory, so the native sqlite3 and
    # leveldown it would build (fetching binaries from GitHub first) go unused.
    npm install --prefix "$prefix" --no-audit --no-fund --silent --ignore-scripts \
        "pouchdb-server@$POUCHDB_SERVER_VERSION"
fi
