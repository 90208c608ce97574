#!/bin/sh
# Debian packages the dashboard's browser test needs: a headless Chromium and
# the ChromeDriver that Selenium drives it through (never a downloaded one:
# the test machines have no internet). Installed only as root (as CI runs) and
# only when missing, so a second run does nothing.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "ui-deps: missing$missing; the dashboard test will fail until you install them as root: apt-get install$missing" >&2
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
