#!/usr/bin/env bash
# The Redis backend's valid PATCH before and after a flood of lookups of values nothing has (PATCHes to purchase
# histories that do not exist), each of which the workers' read caches remember: a later write must not pay for
# them (sandbox/storage/redis/cache.py). Not part of the test suite. Needs wrk and redis-server.
#   bash bench/lookup_flood.sh [lookups, default 4900] [seconds per run, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
LOOKUPS=${1:-4900}
SECONDS_PER_RUN=${2:-8}
PY=.venv/bin/python
PIDS=()
REDIS_DIR=$(mktemp -d)
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$REDIS_DIR"; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1"; exit 1; }
redis-server --bind 127.0.0.1 --port 18096 --dir "$REDIS_DIR" --save "" --appendonly yes --appendfsync everysec \
  > /dev/null 2>&1 & PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p 18096 ping > /dev/null 2>&1 && break; sleep 0.05; done
$PY run.py --port 18097 --backend redis --redis-url redis://127.0.0.1:18096/0 > /tmp/bench-flood.log 2>&1 & PIDS+=($!)
wait_for http://127.0.0.1:18097/_sandbox/health
export METHOD=PATCH PATH_=/returning-ai/v1/purchase-histories/ORD202641612055614747
export BODY='{"redemptionInstructions":"Present this code at checkout.","voucherCode":"ABC-123-XYZ","voucherExpiryDate":"31/12/2027"}'
export HEADERS='Authorization: Bearer XXXXXX|Content-Type: application/json'
patch_rate() { wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" -s bench/request.lua http://127.0.0.1:18097 | awk '/Requests\/sec/ {printf "%.0f", $2}'; }
wrk -t2 -c16 -d2s -s bench/request.lua http://127.0.0.1:18097 > /dev/null  # warm-up
echo "valid PATCH on Redis before the flood: $(patch_rate) req/s"
$PY - "$LOOKUPS" <<'PY'
import sys, time
import requests
sessions = [requests.Session() for _ in range(4)]  # kept-alive connections, spread over the workers
started, codes = time.monotonic(), {}
for n in range(int(sys.argv[1])):
    answer = sessions[n % 4].patch(f"http://127.0.0.1:18097/returning-ai/v1/purchase-histories/ORDX{n:08d}",
                                   json={"redemptionInstructions": "x"}, headers={"Authorization": "Bearer XXXXXX"})
    codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
print(f"flood: {sys.argv[1]} PATCHes to purchase histories that do not exist, {codes}, {time.monotonic() - started:.1f} s")
PY
echo "valid PATCH on Redis after the flood: $(patch_rate) req/s"
