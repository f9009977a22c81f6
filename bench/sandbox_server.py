"""`python run.py` started for a bench script, as partners run it: running(port) yields once it answers health."""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def running(port: int, *options: str):
    server = subprocess.Popen([sys.executable, "run.py", "--port", str(port), *options], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.05)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)
