"""Memory of the default server under hostile traffic (issue 14): huge bodies (announced and chunked), long URLs,
oversized and too many headers, NaN and deeply nested JSON, fault-rule churn up to the limit, damaged imports, mixed
with valid PATCHes, resets, exports and journal reads (issue 25's soak: `--seconds 600`). Prints the server's RSS (the process and its workers) every `--every` seconds, and the counts of
each answer. Not part of the test suite.
    .venv/bin/python bench/hostile.py [--seconds 600] [--clients 8]
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

from sandbox_server import running

ROOT = Path(__file__).resolve().parent.parent
PORT = 18560
PATCH = "/returning-ai/v1/purchase-histories/ORD202641612055614747"
AUTH = {"Authorization": "Bearer XXXXXX", "Content-Type": "application/json"}


def attacks():
    big = b'{"redemptionInstructions": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    return [
        ("PATCH", PATCH, AUTH, big),  # 413 by Content-Length, never read
        ("chunked", PATCH, AUTH, big),  # 413 while read
        ("GET", "/fabric/v3/redemptions?q=" + "x" * 6000, {}, None),  # 414, the sandbox's
        ("GET", "/fabric/v3/redemptions?q=" + "x" * 9000, {}, None),  # 414, gunicorn's
        ("GET", "/fabric/v3/redemptions", {"X-Pad": "y" * 8000, "X-Pad2": "y" * 8000, "X-Pad3": "y" * 4000}, None),
        ("GET", "/fabric/v3/redemptions", {f"X-H{i}": "1" for i in range(90)}, None),
        ("POST", "/capillary/v2/customers/109943743/redemptions",
         {"Authorization": "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3",
          "Content-Type": "application/json"}, b'{"points": NaN}'),
        ("PATCH", PATCH, AUTH, b'{"redemptionInstructions": "A", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("POST", "/_sandbox/faults", {"Content-Type": "application/json"},
         b'{"vendor": "fabric", "operation": "getRedemption", "fault": "latency"}'),
        ("DELETE", "/_sandbox/faults", {}, None),
        ("POST", "/_sandbox/state/import", {"Content-Type": "application/json"},
         json.dumps({"seed": 1, "size": 1, "collections": {"_world": {"settings": {}}}, "logs": {}}).encode()),
        ("PATCH", PATCH, AUTH, json.dumps({"redemptionInstructions": "z" * 9_000}).encode()),
        ("PATCH", PATCH, AUTH, b'{"redemptionInstructions": "A valid change"}'),
        # whole-world operations among them (issue 25: the soak that found memory rising with the lanes)
        ("POST", "/_sandbox/reset", {"Content-Type": "application/json"}, b"{}"),
        ("GET", "/_sandbox/state/export", {}, None),
        ("GET", "/_sandbox/requests", {}, None),
    ]


def send(method, path, headers, body) -> str:
    if method == "chunked":
        with socket.create_connection(("127.0.0.1", PORT), timeout=30) as sock:
            head = f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            sock.sendall(head.encode())
            try:
                for start in range(0, len(body), 65536):
                    piece = body[start:start + 65536]
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass
            try:
                return sock.recv(64)[9:12].decode() or "closed"
            except OSError:
                return "reset"
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return str(response.status)
    except (OSError, http.client.HTTPException) as failed:
        return type(failed).__name__
    finally:
        connection.close()


def rss_mb(pid: int) -> int:
    out = subprocess.run(["ps", "-o", "rss=", "--pid", str(pid), "--ppid", str(pid)], capture_output=True, text=True)
    return sum(int(x) for x in out.stdout.split()) // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    with running(PORT) as server:
        counts: collections.Counter = collections.Counter()
        stop = time.monotonic() + args.seconds
        catalogue = attacks()

        def client(seed: int) -> None:
            dice = random.Random(seed)
            while time.monotonic() < stop:
                method, path, headers, body = dice.choice(catalogue)
                counts[send(method, path, headers, body)] += 1

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
        samples = [rss_mb(server.pid)]
        for thread in threads:
            thread.start()
        while time.monotonic() < stop:
            time.sleep(min(args.every, max(0.0, stop - time.monotonic())))
            samples.append(rss_mb(server.pid))
        for thread in threads:
            thread.join()
        final = send("PATCH", PATCH, AUTH, b'{"redemptionInstructions": "after"}')
        print(f"RSS MB every {args.every} s over {args.seconds} s of hostile traffic ({args.clients} clients): "
              f"{' '.join(map(str, samples))}; max {max(samples)}")
        print("answers:", dict(counts.most_common()))
        print("a valid PATCH afterwards:", final)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
