#!/usr/bin/env bash
# The tools partners run on the specs, which tests/test_partner_tools.py runs too: Spectral, Redocly, Prism, newman and
# Postman's converter (openapi-to-postmanv2) from the npm registry into tools/node_modules, at the versions
# tools/package-lock.json pins; Node.js and npm from Debian when the machine has none. (openapi-python-client comes
# with requirements.txt.) Without them those tests are skipped, saying so. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# Install again only when the lock file changed since the last install.
if ! cmp -s tools/package-lock.json tools/node_modules/.installed-from-lock 2>/dev/null; then
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  cp tools/package-lock.json tools/node_modules/.installed-from-lock
fi
