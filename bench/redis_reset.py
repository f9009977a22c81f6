"""A large reset on Redis beside other clients (issue 26 point 2): the sandbox as `python run.py --backend redis`
serves it, with a redis-server of its own on loopback; while one client resets the default world to `--size`,
`--clients` others send PATCHes, state reads and health checks to it in a loop. Prints the reset's time, the longest
scripts Redis ran (its SLOWLOG), and the other clients' answers: counts by status, and their p50/p99/max latency.
The targets: no 500, no script of 50 ms or more, the others' p99 under 1 s. Needs redis-server.

    .venv/bin/python bench/redis_reset.py [--size 20000] [--clients 4] [--tree DIR]

`--tree DIR` serves another checkout (e.g. a `git worktree` of an earlier revision), to show the before.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from isolation import BODY, PATCH, free_port  # noqa: E402

HERE = Path(__file__).resolve().parent


def send(base: str, method: str, path: str, body: str | None = None, headers: dict | None = None,
         timeout: float = 120) -> tuple[int, str]:
    request = urllib.request.Request(base + path, data=body.encode() if body else None, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def wait_for(base: str) -> None:
    for _ in range(600):
        try:
            if send(base, "GET", "/_sandbox/health", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"no answer from {base}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    args = parser.parse_args()
    redis_port, port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port), "--dir", data,
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        sandbox = None
        try:
            client = redis.Redis(port=redis_port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            sandbox = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--backend", "redis",
                                        "--redis-url", f"redis://127.0.0.1:{redis_port}/0", "--log-level", "warning"],
                                       cwd=args.tree, stdout=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            wait_for(base)
            client.config_set("slowlog-log-slower-than", 10_000)  # microseconds
            client.slowlog_reset()
            answers, done = [], threading.Event()

            def keep_asking():
                while not done.is_set():
                    for method, path, body, headers in (("PATCH", PATCH, BODY, {"Authorization": "Bearer XXXXXX"}),
                                                        ("GET", "/_sandbox/state", None, {}),
                                                        ("GET", "/_sandbox/health", None, {})):
                        started = time.monotonic()
                        status, _ = send(base, method, path, body, headers)
                        answers.append((status, time.monotonic() - started))

            others = [threading.Thread(target=keep_asking) for _ in range(args.clients)]
            for other in others:
                other.start()
            started = time.monotonic()
            status, text = send(base, "POST", "/_sandbox/reset", json.dumps({"size": args.size}))
            took = time.monotonic() - started
            done.set()
            for other in others:
                other.join()
            print(f"reset to size {args.size:,}: {status} in {took:.1f} s ({text[:160]})")
            slow = sorted((entry["duration"] / 1000 for entry in client.slowlog_get(1000)), reverse=True)
            print(f"scripts of 10 ms or more: {len(slow)}; the longest: {', '.join(f'{ms:.0f}' for ms in slow[:5])} ms")
            latencies = sorted(seconds for _, seconds in answers)
            print(f"{args.clients} other clients: {len(answers)} answers, by status {dict(Counter(s for s, _ in answers))}; "
                  f"p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, "
                  f"max {latencies[-1] * 1000:.0f} ms")
        finally:
            if sandbox is not None:
                sandbox.terminate()
                sandbox.wait()
            server.terminate()


if __name__ == "__main__":
    main()
