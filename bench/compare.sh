#!/usr/bin/env bash
# The valid PATCH of bench/run.sh, measured on this working tree and on an earlier revision in the same run,
# alternating, so a change can be shown not to slow the sandbox down (the ratio, not the absolute figure, is what
# one run on one machine can tell). Needs wrk; the revision is checked out in a temporary git worktree.
#   bash bench/compare.sh REV [seconds per run, default 10] [rounds, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?a git revision to compare with, e.g. HEAD~3}
SECONDS_PER_RUN=${2:-10}
ROUNDS=${3:-2}
PY=$PWD/.venv/bin/python
OLD=$(mktemp -d)
git worktree add -q --detach "$OLD" "$REV"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; git worktree remove --force "$OLD"; rm -f /tmp/bench-results.json; }
trap cleanup EXIT
wait_for() { for _ in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1"; exit 1; }
(cd "$OLD" && exec $PY run.py --port 18090) > /tmp/compare-old.log 2>&1 & PIDS+=($!)
$PY run.py --port 18091 > /tmp/compare-new.log 2>&1 & PIDS+=($!)
wait_for http://127.0.0.1:18090/_sandbox/health
wait_for http://127.0.0.1:18091/_sandbox/health

export METHOD=PATCH PATH_=/returning-ai/v1/purchase-histories/ORD202641612055614747
export BODY='{"redemptionInstructions":"Present this code at checkout.","voucherCode":"ABC-123-XYZ","voucherExpiryDate":"31/12/2027"}'
export HEADERS='Authorization: Bearer XXXXXX|Content-Type: application/json'
echo "name | requests/s | p50 ms | p99 ms | non-2xx | RSS MB"
for round in $(seq 1 "$ROUNDS"); do
  for side in "$REV:18090" "working tree:18091"; do
    url=http://127.0.0.1:${side##*:}
    wrk -t2 -c16 -d2s -s bench/request.lua "$url" > /dev/null  # warm-up, not measured
    out=$(wrk -t2 -c16 -d"${SECONDS_PER_RUN}s" --latency -s bench/request.lua "$url")
    $PY bench/report.py "round $round, ${side%:*}: valid PATCH" "-" <<<"$out"
  done
done
