#!/usr/bin/env bash
# Throughput of the sandbox against Prism and a bare Flask endpoint, same machine, same load, loopback only.
# Not part of the test suite. Needs wrk (Debian) and npm; installs Prism into bench/node_modules.
#   bash bench/run.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
command -v wrk >/dev/null || { sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo; $sudo_ apt-get install -y -qq wrk >/dev/null; }
[ -x bench/node_modules/.bin/prism ] || (cd bench && npm install --silent --no-save @stoplight/prism-cli >/dev/null)
PY=.venv/bin/python
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

start=$(date +%s.%N)
$PY run.py --port 18080 > /tmp/bench-sandbox.log 2>&1 & PIDS+=($!); SANDBOX_PID=$!
wait_for http://127.0.0.1:18080/_sandbox/health
echo "sandbox start-up with its default data: $(echo "$(date +%s.%N) - $start" | bc) s"
.venv/bin/gunicorn -b 127.0.0.1:18081 -w 1 -k gthread --threads 8 --chdir bench bare_flask:app > /tmp/bench-bare.log 2>&1 & PIDS+=($!); BARE_PID=$!
bench/node_modules/.bin/prism mock specs/returning-ai.yaml -h 127.0.0.1 -p 18082 > /tmp/bench-prism.log 2>&1 & PIDS+=($!); PRISM_PID=$!
wait_for http://127.0.0.1:18081/
wait_for http://127.0.0.1:18082/

PATCH_BODY='{"redemptionInstructions":"Present this code at checkout.","voucherCode":"ABC-123-XYZ","voucherExpiryDate":"31/12/2027"}'
RAI='Authorization: Bearer XXXXXX|Content-Type: application/json'
run() { # name url method path body headers pid
  local out rss
  out=$(METHOD=$3 PATH_=$4 BODY=$5 HEADERS=$6 wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s bench/request.lua "$2")
  rss=$(ps -o rss= -p "$7" | awk '{printf "%.0f", $1/1024}')
  $PY bench/report.py "$1" "$rss" <<<"$out"
}
echo "name | requests/s | p50 ms | p99 ms | non-2xx | RSS MB"
run "sandbox: valid PATCH" http://127.0.0.1:18080 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $SANDBOX_PID
run "prism: valid PATCH" http://127.0.0.1:18082 PATCH /purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $PRISM_PID
run "bare flask: PATCH" http://127.0.0.1:18081 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $BARE_PID
run "sandbox: 400 PATCH" http://127.0.0.1:18080 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 '{"voucherCode":"X"}' "$RAI" $SANDBOX_PID
run "sandbox: capillary update" http://127.0.0.1:18080 PUT /capillary/v2/points/updateRedemption \
  '{"redemptionId":"sTDVyi","billNumber":"idk","entity":{"type":"CUSTOMER","identifierType":"id","identifierValue":"109943742"}}' \
  'Authorization: Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3|Content-Type: application/json' $SANDBOX_PID
run "sandbox: fabric GET" http://127.0.0.1:18080 GET /fabric/v3/redemptions/614b58924e92f6861ac9d43b "" \
  'Authorization: Bearer fabric-demo-token|x-fabric-tenant-id: 61a5f0c2b3d4e5f6a7b8c9d0' $SANDBOX_PID
$PY bench/report.py --ratios
