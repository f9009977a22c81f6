#!/usr/bin/env bash
# What the tests start on loopback, from Debian's packages: headless Chromium and its driver
# (tests/test_ui_browser.py) and redis-server (the Redis backend's runs; tests/services.py starts it).
# Without them those tests are skipped, saying so.
set -euo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v redis-server >/dev/null || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
