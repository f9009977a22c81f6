"""Turn wrk --latency output into one table row; `--ratios` prints sandbox/Prism and sandbox/bare Flask. A name
measured more than once (run.sh alternates the sandbox's PATCH with Prism's) counts with the mean of its rates."""
import json
import re
import sys
from pathlib import Path

RESULTS = Path("/tmp/bench-results.json")


def millis(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


if sys.argv[1] == "--ratios":
    results = {name: sum(rates) / len(rates) for name, rates in json.loads(RESULTS.read_text()).items()}
    sandbox = results["sandbox: valid PATCH"]
    print(f"sandbox/prism (valid PATCH): {sandbox / results['prism: valid PATCH']:.2f}x")
    if results.get("wiremock: valid PATCH"):
        print(f"sandbox/wiremock (valid PATCH, WireMock warmed): {sandbox / results['wiremock: valid PATCH']:.2f}x")
    print(f"sandbox/bare flask (valid PATCH, both gunicorn + uvicorn workers): "
          f"{sandbox / results['bare flask: PATCH']:.2f}x")
    if results.get("sandbox on Redis: valid PATCH"):
        print(f"Redis/SQLite backend (valid PATCH, same run): {results['sandbox on Redis: valid PATCH'] / sandbox:.2f}x")
    granian = results.get("sandbox --server granian: valid PATCH")
    if granian and results.get("bare flask under granian: PATCH"):
        print(f"sandbox/prism (valid PATCH, --server granian): {granian / results['prism: valid PATCH']:.2f}x")
        print(f"sandbox/bare flask (valid PATCH, both granian): {granian / results['bare flask under granian: PATCH']:.2f}x")
    RESULTS.unlink()
    sys.exit()

name, rss, out = sys.argv[1], sys.argv[2], sys.stdin.read()
try:
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
except (AttributeError, KeyError):
    print(f"{name} | could not read wrk's output: {' '.join(out.split())[-400:]}")
    sys.exit()
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print(f"{name} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {non2xx.group(1) if non2xx else 0} | {rss}")
results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
results.setdefault(name, []).append(rate)
RESULTS.write_text(json.dumps(results))
