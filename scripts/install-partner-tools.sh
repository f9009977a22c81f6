#!/usr/bin/env bash
# The tools partners run on the specs, which tests/test_partner_tools.py runs too: Spectral, Redocly, Prism, newman and
# Postman's converter (openapi-to-postmanv2) from the npm registry into tools/node_modules, at the versions
# tools/package-lock.json pins; Node.js, npm and Java from Debian when the machine has none. (openapi-python-client
# and openapi-generator-cli come with requirements.txt.) Without them those tests are skipped, saying so. .ci/run calls this.
set -euo pipefail
cd "$(dirname "$0")/.."
# Node.js and npm for the tools below; Java for openapi-generator's jar (openapi-generator-cli in requirements.txt).
missing=()
command -v npm >/dev/null || missing+=(nodejs npm)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Install again only when the lock file changed since the last install.
if ! cmp -s tools/package-lock.json tools/node_modules/.installed-from-lock 2>/dev/null; then
  npm ci --prefix tools --no-audit --no-fund --loglevel=error
  cp tools/package-lock.json tools/node_modules/.installed-from-lock
fi
