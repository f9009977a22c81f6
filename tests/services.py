"""Servers the tests need, started by the tests themselves on loopback: a throwaway Redis.

Debian's redis-server is installed by scripts/install-services.sh (which .ci/run calls); without it, the Redis
cases are skipped, saying how to get it. SANDBOX_REDIS_URL points the tests at a Redis of your own instead.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

REDIS_MISSING = "redis-server is not installed: bash scripts/install-services.sh (Debian's package)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self):
        self.url = os.environ.get("SANDBOX_REDIS_URL")
        self._process = None

    def start(self) -> str | None:
        """The URL of a running Redis, or None when there is none to be had."""
        if self.url:
            return self.url
        binary = shutil.which("redis-server")
        if binary is None:
            return None
        import redis

        # The suite's processes (pytest-xdist) each start one: a port another took between free_port() and the bind
        # would leave this process talking to the other's server, which goes away when that process ends. The
        # server that answers must be the one started here (its process_id), or another port is tried.
        for _ in range(5):
            port = free_port()
            self._process = subprocess.Popen(
                [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    if client.info("server")["process_id"] == self._process.pid:
                        self.url = f"redis://127.0.0.1:{port}/0"
                        return self.url
                    break
                except redis.ConnectionError:
                    if self._process.poll() is not None:
                        break
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("could not start redis-server on a free port of 127.0.0.1 (5 tries)")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


def unique_prefix() -> str:
    """Keys of one test only, so tests never see each other's state on the shared server."""
    return "test-" + uuid.uuid4().hex[:12]


def drop_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.unlink(*keys)


def wait_for(predicate, timeout: float = 15.0, what: str = "the condition"):
    """The first true value `predicate` returns, polled every 0.2 s; an AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def run_py(log: Path, *options: str, env: dict | None = None):
    """`python run.py --port P OPTIONS` as a user starts it, its output in `log`, once it answers health: yields
    (base URL, port, process), and stops it after. An AssertionError with the log when it exits or does not answer
    within 60 s."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "run.py", "--port", str(port), *options], cwd=ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/_sandbox/health", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("run.py did not answer:\n" + log.read_text()) from None
                time.sleep(0.05)
        yield base, port, process
    finally:
        process.terminate()
        process.wait(timeout=30)
