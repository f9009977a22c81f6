"""One world cannot slow another (issue 15): the default world's PATCH latency idle, then while a workspace reseeds
in a loop (POST /_sandbox/reset with X-Sandbox-Workspace), on the sandbox as `python run.py` serves it (gunicorn,
SQLite). Prints p50/p99 of both runs and their ratios (the target: within 2x of idle), and of a control run with a
core kept busy by a process that calls nothing: the share of the slow-down that is the machine's, not the sandbox's.
Needs wrk.

    .venv/bin/python bench/isolation.py [--seconds 10] [--connections 1] [--size 100] [--resetters 1] [--tree DIR]

`--resetters N` reseeds with N clients at once (issue 25: 24 must keep the default world within 2x of idle).

`--tree DIR` serves another checkout (e.g. a `git worktree` of an earlier revision), to show the before.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PATCH = "/returning-ai/v1/purchase-histories/ORD202641612055614747"
BODY = '{"redemptionInstructions":"Present this code at checkout.","voucherCode":"ABC-123-XYZ","voucherExpiryDate":"31/12/2027"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers={
        "Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def millis(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def wrk(base: str, seconds: float, connections: int) -> dict:
    env = {**os.environ, "METHOD": "PATCH", "PATH_": PATCH, "BODY": BODY,
           "HEADERS": "Authorization: Bearer XXXXXX|Content-Type: application/json"}
    command = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(HERE / "request.lua"), base]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),
            "p99": millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),
            "non2xx": int(non2xx.group(1)) if non2xx else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=1, help="wrk connections on the default world's PATCH")
    parser.add_argument("--size", type=int, default=100, help="the reseeding workspace's size")
    parser.add_argument("--resetters", type=int, default=1, help="clients reseeding the workspace at once")
    parser.add_argument("--tree", type=Path, default=HERE.parent, help="the checkout to serve")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="isolation-", suffix=".log", delete=False)
    server = subprocess.Popen([str(HERE.parent / ".venv/bin/python"), "run.py", "--port", str(port)], cwd=args.tree,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                call(base, "GET", "/_sandbox/health")
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit(f"no answer from {base}; see {log.name}")
        workspace = call(base, "POST", "/_sandbox/workspaces", {"size": args.size})["id"]
        scoped = {"X-Sandbox-Workspace": workspace}
        started = time.perf_counter()
        call(base, "POST", "/_sandbox/reset", {}, scoped)
        one_reseed = (time.perf_counter() - started) * 1000

        wrk(base, 2, args.connections)  # warm-up, not measured
        idle = wrk(base, args.seconds, args.connections)

        stop = threading.Event()
        reseeds = []

        def reseed_loop():
            while not stop.is_set():
                call(base, "POST", "/_sandbox/reset", {}, scoped)
                reseeds.append(time.perf_counter())

        loops = [threading.Thread(target=reseed_loop) for _ in range(args.resetters)]
        for loop in loops:
            loop.start()
        time.sleep(0.5)
        busy = wrk(base, args.seconds, args.connections)
        stop.set()
        for loop in loops:
            loop.join()

        # The control: one core kept as busy as the reseeding worker keeps it, by a process that calls nothing. On
        # a small machine this, not any lock, is what is left between the idle and the reseeding figures.
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            burning = wrk(base, args.seconds, args.connections)
        finally:
            burner.kill()
            burner.wait()
    finally:
        server.terminate()
        server.wait(timeout=30)
    os.unlink(log.name)  # kept only when something failed

    print(f"served from {args.tree} ({base}); workspace size {args.size}, one reseed {one_reseed:.0f} ms; "
          f"wrk 1 thread x {args.connections} connection(s), {args.seconds:g} s per run, {args.resetters} reseeding "
          f"client(s)")
    print("default world's valid PATCH | requests/s | p50 ms | p99 ms | non-2xx")
    for name, run in (("idle", idle), (f"workspace reseeding ({len(reseeds)} reseeds)", busy),
                      ("control: one core busy outside the sandbox", burning)):
        print(f"{name} | {run['rate']:,.0f} | {run['p50']:.2f} | {run['p99']:.2f} | {run['non2xx']}")
    print(f"reseeding / idle: p50 {busy['p50'] / idle['p50']:.2f}x, p99 {busy['p99'] / idle['p99']:.2f}x (target: within 2x)")
    print(f"reseeding / control: p50 {busy['p50'] / burning['p50']:.2f}x, p99 {busy['p99'] / burning['p99']:.2f}x")


if __name__ == "__main__":
    main()
