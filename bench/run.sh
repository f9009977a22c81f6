#!/usr/bin/env bash
# Throughput of the sandbox in its production configuration (run.py's defaults: gunicorn with uvicorn workers,
# SQLite, one worker process per core) against Prism, WireMock (a static stub matching the body, warmed until its
# JIT stops gaining) and a bare Flask endpoint under the same server, same machine, same load, loopback only; the
# same PATCH on the Redis backend (a redis-server of its own on loopback), for the Redis/SQLite ratio. Then memory
# over a longer mixed run, and start-up with 100,000 records per vendor.
# Not part of the test suite. Needs wrk (Debian), npm and Java 17; installs Prism and WireMock into bench/node_modules.
#   bash bench/run.sh [seconds per run, default 10] [seconds of the memory run, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${1:-10}
FLAT_SECONDS=${2:-60}
command -v wrk >/dev/null || { sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_=sudo; $sudo_ apt-get install -y -qq wrk >/dev/null; }
[ -x bench/node_modules/.bin/prism ] && [ -d bench/node_modules/wiremock ] || \
  (cd bench && npm install --silent --no-save @stoplight/prism-cli@5.16.0 wiremock@3.13.2 >/dev/null)
PY=.venv/bin/python
read -r WORKERS THREADS < <($PY -c "from sandbox.serving.launch import DEFAULT_WORKERS as w, DEFAULT_THREADS as t; \
print(w, t['granian'])")
WORKER_CLASS=sandbox.serving.worker.SandboxWorker
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

wait_for() { for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1"; exit 1; }
# Memory of a server, in MB, over the process and all its descendants (gunicorn's workers and their lanes, node's):
# RSS, as the targets are stated; and PSS, which counts a page several processes map (forked copies, shared
# libraries) as a share in each where RSS counts it whole in every one, so its sum is closer to what the server
# holds (the shares of libraries other servers of the run also map go to those).
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
memory_tree() { for p in "$1" $(descendants "$1"); do awk "/^$2:/ {print \$2}" "/proc/$p/smaps_rollup" 2>/dev/null || true; done \
  | awk '{s += $1} END {printf "%.0f", s/1024}'; }
rss_tree() { memory_tree "$1" Rss; }
pss_tree() { memory_tree "$1" Pss; }
since() { echo "$(date +%s.%N) - $1" | bc; }

start=$(date +%s.%N)
$PY run.py --port 18080 > /tmp/bench-sandbox.log 2>&1 & PIDS+=($!); SANDBOX_PID=$!
wait_for http://127.0.0.1:18080/_sandbox/health
echo "sandbox start-up with its default data (size 100, gunicorn $WORKER_CLASS, $WORKERS workers, SQLite): $(since "$start") s"
PYTHONPATH=$PWD .venv/bin/gunicorn -b 127.0.0.1:18081 -w "$WORKERS" -k "$WORKER_CLASS" --chdir bench bare_flask:asgi \
  > /tmp/bench-bare.log 2>&1 & PIDS+=($!); BARE_PID=$!
bench/node_modules/.bin/prism mock specs/returning-ai.yaml -h 127.0.0.1 -p 18082 > /tmp/bench-prism.log 2>&1 & PIDS+=($!); PRISM_PID=$!
java -jar bench/node_modules/wiremock/build/wiremock-standalone-*.jar --bind-address 127.0.0.1 --port 18088 \
  --root-dir bench/wiremock --disable-banner > /tmp/bench-wiremock.log 2>&1 & PIDS+=($!); WIREMOCK_PID=$!
$PY run.py --port 18084 --server granian > /tmp/bench-sandbox-granian.log 2>&1 & PIDS+=($!); GRANIAN_PID=$!
# The Redis backend, as the README asks operators to run Redis (AOF, fsync every second), on loopback.
REDIS_DIR=$(mktemp -d)
redis-server --bind 127.0.0.1 --port 18086 --dir "$REDIS_DIR" --save "" --appendonly yes --appendfsync everysec \
  > /tmp/bench-redis.log 2>&1 & PIDS+=($!); REDIS_PID=$!
for _ in $(seq 1 100); do redis-cli -p 18086 ping > /dev/null 2>&1 && break; sleep 0.05; done
$PY run.py --port 18087 --backend redis --redis-url redis://127.0.0.1:18086/0 > /tmp/bench-sandbox-redis.log 2>&1 & PIDS+=($!)
SANDBOX_REDIS_PID=$!
.venv/bin/granian --interface wsgi --host 127.0.0.1 --port 18085 --workers "$WORKERS" --blocking-threads "$THREADS" \
  --working-dir bench bare_flask:app > /tmp/bench-bare-granian.log 2>&1 & PIDS+=($!); BARE_GRANIAN_PID=$!
wait_for http://127.0.0.1:18081/
wait_for http://127.0.0.1:18082/
wait_for http://127.0.0.1:18088/__admin/health
wait_for http://127.0.0.1:18084/_sandbox/health
wait_for http://127.0.0.1:18085/
wait_for http://127.0.0.1:18087/_sandbox/health

PATCH_BODY='{"redemptionInstructions":"Present this code at checkout.","voucherCode":"ABC-123-XYZ","voucherExpiryDate":"31/12/2027"}'
RAI='Authorization: Bearer XXXXXX|Content-Type: application/json'
run() { # name url method path body headers pid [script]
  local out
  # Warm-up, not measured: each worker's first requests open its database connection and fill its caches.
  METHOD=$3 PATH_=$4 BODY=$5 HEADERS=$6 wrk -t2 -c16 -d2s -s "${8:-bench/request.lua}" "$2" > /dev/null
  out=$(METHOD=$3 PATH_=$4 BODY=$5 HEADERS=$6 wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s "${8:-bench/request.lua}" "$2")
  $PY bench/report.py "$1" "$(rss_tree "$7")" <<<"$out"
}
echo "name | requests/s | p50 ms | p99 ms | non-2xx | RSS MB"
# WireMock's JIT warms over tens of seconds: 10 s rounds, unmeasured, until one gains less than 5% on the one before.
previous=0
for round in $(seq 1 12); do
  rate=$(METHOD=PATCH PATH_=/returning-ai/v1/purchase-histories/ORD202641612055614747 BODY=$PATCH_BODY HEADERS=$RAI \
    wrk -t2 -c16 -d10s -s bench/request.lua http://127.0.0.1:18088 | awk '/Requests\/sec/ {printf "%d", $2}')
  echo "  (WireMock warm-up round $round: $rate req/s)"
  [ "$rate" -lt $((previous * 105 / 100)) ] && break
  previous=$rate
done
# The sandbox against Prism, alternating, after WireMock's warm-up: measured first, the sandbox had shared the cores
# with the JVM still starting (2,360 req/s in one run, where the same server answered 3,865 req/s of the mixed calls later in it); alternating
# puts the two under the same background. Their ratio is that of the means. And first the machine is let settle (at
# most 20 s, until a second passes with the cores 90% idle): the JVM goes on compiling and collecting after its
# warm-up. The sandbox's first round is still its slower one: p99 27.7, 18.9 and 12.3 ms in three settled runs (14.6,
# 31.1 and 43.2 unsettled), the second round's 9.5-13.9; what else slows it is not found yet.
settle() {
  local previous current
  for _ in $(seq 1 20); do
    previous=$(awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
    sleep 1
    current=$(awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat)
    echo "$previous $current" | awk '{exit !(($3 - $1) / ($4 - $2) >= 0.9)}' && return 0
  done
}
settle
for _ in 1 2; do
  run "sandbox: valid PATCH" http://127.0.0.1:18080 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $SANDBOX_PID
  run "prism: valid PATCH" http://127.0.0.1:18082 PATCH /purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $PRISM_PID
done
run "wiremock: valid PATCH" http://127.0.0.1:18088 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $WIREMOCK_PID
run "sandbox on Redis: valid PATCH" http://127.0.0.1:18087 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $SANDBOX_REDIS_PID
run "bare flask: PATCH" http://127.0.0.1:18081 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $BARE_PID
run "sandbox: 400 PATCH" http://127.0.0.1:18080 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 '{"voucherCode":"X"}' "$RAI" $SANDBOX_PID
run "sandbox: capillary update" http://127.0.0.1:18080 PUT /capillary/v2/points/updateRedemption \
  '{"redemptionId":"sTDVyi","billNumber":"idk","entity":{"type":"CUSTOMER","identifierType":"id","identifierValue":"109943742"}}' \
  'Authorization: Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3|Content-Type: application/json' $SANDBOX_PID
run "sandbox: fabric GET" http://127.0.0.1:18080 GET /fabric/v3/redemptions/614b58924e92f6861ac9d43b "" \
  'Authorization: Bearer fabric-demo-token|x-fabric-tenant-id: 61a5f0c2b3d4e5f6a7b8c9d0' $SANDBOX_PID
run "sandbox: mix (1 in 5 a 400)" http://127.0.0.1:18080 GET / "" "" $SANDBOX_PID bench/mix.lua
run "sandbox --server granian: valid PATCH" http://127.0.0.1:18084 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $GRANIAN_PID
run "bare flask under granian: PATCH" http://127.0.0.1:18085 PATCH /returning-ai/v1/purchase-histories/ORD202641612055614747 "$PATCH_BODY" "$RAI" $BARE_GRANIAN_PID
$PY bench/report.py --ratios
kill $WIREMOCK_PID $PRISM_PID $BARE_PID $GRANIAN_PID $BARE_GRANIAN_PID $SANDBOX_REDIS_PID $REDIS_PID
rm -rf "$REDIS_DIR"

echo
echo "memory over a ${FLAT_SECONDS} s mixed run (RSS / PSS MB of the sandbox's processes, every 10 s):"
samples="$(rss_tree $SANDBOX_PID)/$(pss_tree $SANDBOX_PID)"
wrk -t2 -c16 -d"${FLAT_SECONDS}s" -s bench/mix.lua http://127.0.0.1:18080 > /tmp/bench-flat.txt & WRK_PID=$!
for _ in $(seq 10 10 "$FLAT_SECONDS"); do sleep 10; samples="$samples $(rss_tree $SANDBOX_PID)/$(pss_tree $SANDBOX_PID)"; done
wait $WRK_PID
echo "  $samples   ($(grep Requests/sec /tmp/bench-flat.txt | awk '{printf "%.0f", $2}') req/s; the journal keeps the newest 1,000 requests)"
kill $SANDBOX_PID

echo
start=$(date +%s.%N)
$PY run.py --port 18083 --size 13100 > /tmp/bench-large.log 2>&1 & PIDS+=($!); LARGE_PID=$!
wait_for http://127.0.0.1:18083/_sandbox/health
echo "start-up with --size 13100 (about 100,000 records in all, SQLite): $(since "$start") s, RSS $(rss_tree $LARGE_PID) MB, PSS $(pss_tree $LARGE_PID) MB"
curl -s http://127.0.0.1:18083/_sandbox/state | $PY -c "import json,sys; c=json.load(sys.stdin)['collections']; print('  records:', sum(c.values()), c)"
