"""Can slow clients and held answers starve the default server? (issue 16) Not part of the test suite.

Starts `python run.py` (its defaults), then, for each load below, sends 100 probes one after another (a valid PATCH
and GET /_sandbox/health, alternately) and prints their latency:
- idle;
- 64 connections that sent half a request line and stopped, plus 64 requests held by X-Sandbox-Delay: 5000;
- 64 PATCHes that strike the publisher-timeout fault (held --publisher-timeout, 2 s, then a 502).
With --longest, also the longest hold the spec allows (X-Sandbox-Delay 30000 and a 30,000 ms latency rule): the
answer must come whole, in the vendor's envelope, and be journaled.
    .venv/bin/python bench/starvation.py [--longest]
"""
from __future__ import annotations

import argparse
import http.client
import json
import socket
import threading
import time

from sandbox_server import running

PORT = 18570
PATCH = "/returning-ai/v1/purchase-histories/ORD202641612055614747"
FABRIC = {"Authorization": "Bearer fabric-demo-token", "x-fabric-tenant-id": "61a5f0c2b3d4e5f6a7b8c9d0"}


def call(method, path, headers=None, body=None, timeout=120):
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def probes(n: int = 100) -> str:
    times = {"PATCH": [], "health": []}
    for i in range(n):
        started = time.perf_counter()
        if i % 2:
            status, _ = call("GET", "/_sandbox/health")
            times["health"].append((time.perf_counter() - started) * 1000)
        else:
            status, _ = call("PATCH", PATCH, {"Authorization": "Bearer XXXXXX", "Content-Type": "application/json"},
                             b'{"redemptionInstructions": "probe"}')
            times["PATCH"].append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return "; ".join(f"{name} p50 {pct(t, 50):.1f} p99 {pct(t, 99):.1f} max {max(t):.1f} ms" for name, t in times.items())


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def in_background(target, count):
    results = []
    threads = [threading.Thread(target=lambda: results.append(target()), daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--longest", action="store_true")
    args = parser.parse_args()
    with running(PORT):
        print("idle:", probes())

        stalled = []
        for _ in range(64):
            sock = socket.create_connection(("127.0.0.1", PORT))
            sock.sendall(b"GET /_sandbox/hea")
            stalled.append(sock)
        threads, held = in_background(lambda: call("GET", "/fabric/v3/redemptions?size=1",
                                                   {**FABRIC, "X-Sandbox-Delay": "5000"}), 64)
        time.sleep(0.5)
        print("64 half-sent + 64 held 5 s:", probes())
        for thread in threads:
            thread.join()
        print(f"  the held ones: {sorted(set(s for s, _ in held))} x {len(held)}")
        for sock in stalled:
            sock.close()

        threads, timed_out = in_background(lambda: call(
            "PATCH", PATCH, {"Authorization": "Bearer XXXXXX", "Content-Type": "application/json",
                             "X-Sandbox-Fault": "publisher-timeout"}, b'{"redemptionInstructions": "late"}'), 64)
        time.sleep(0.5)
        print("64 publisher timeouts:", probes())
        for thread in threads:
            thread.join()
        print(f"  the timed-out ones: {sorted(set(s for s, _ in timed_out))} x {len(timed_out)}")

        if args.longest:
            call("POST", "/_sandbox/faults", {"Content-Type": "application/json"}, json.dumps(
                {"vendor": "fabric", "operation": "getRedemption", "fault": "latency", "latencyMs": 30000}).encode())
            started = time.monotonic()
            status, body = call("GET", "/fabric/v3/redemptions/614b58924e92f6861ac9d43b",
                                {**FABRIC, "X-Sandbox-Delay": "30000"})
            entry = json.loads(call("GET", "/_sandbox/requests?operation=getRedemption")[1])["requests"][-1]
            print(f"longest hold: {status} after {time.monotonic() - started:.1f} s, body {body[:60]!r}..., "
                  f"journaled with delayMs {entry['delayMs']}")


if __name__ == "__main__":
    main()
