"""How run.py serves the app: gunicorn's arbiter with the sandbox's uvicorn workers (the default: worker.py,
protocol.py, bridge.py), or granian; and the check that the port is free before anything is seeded."""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import socket
from pathlib import Path

from sandbox.config import Settings, from_env
from sandbox.core import logs

SERVERS = ("gunicorn", "granian")
SETTINGS_ENV = "SANDBOX_SERVE_SETTINGS"  # how run.py hands its settings to granian's worker processes

# One worker process per core (at least 2): each runs the app one request at a time in its event loop and never
# waits for a client (sandbox/serving/), so more processes than cores only add memory. Measured on 2 cores (valid
# PATCH, SQLite, wrk at 16 connections, three alternating 8 s rounds, the earlier loop of the same design): 2 workers
# 1,061-1,345 req/s, p99 23-34 ms, RSS 186 MB; 4 workers 1,120-1,270 req/s, p99 32-47 ms, RSS 304 MB.
DEFAULT_WORKERS = max(2, min(os.cpu_count() or 1, 8))
# --threads: under gunicorn, the threads of each worker that run whole-world operations (serving/bridge.py); under
# granian, the threads of each worker that run requests (1: measured fastest, and no GIL contention).
DEFAULT_THREADS = {"gunicorn": 4, "granian": 1}

KEEPALIVE_SECONDS = 5


def server_name(args) -> str:
    if args.server == "granian":
        return f"granian, {args.workers} worker process(es) x {args.threads} thread(s)"
    return (f"gunicorn with uvicorn workers (sandbox/serving/), {args.workers} worker process(es), each with "
            f"{args.threads} thread(s) for whole-world operations")


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (a one-line message), or None when it can. Checked by binding
    as gunicorn will (SO_REUSEADDR, so a port whose old connections linger in TIME_WAIT is free) and letting go."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, OverflowError) as exc:
        return f"Cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"Port {port} on {host} is already in use (another sandbox?): stop that server, or choose "
                        f"another port with --port")
            return f"Cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def serve(app, args) -> None:
    if args.server == "granian":
        return serve_granian(app, args)
    from gunicorn.app.base import BaseApplication

    from .bridge import Bridge

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{args.host}:{args.port}")
            # The app (and the seeded data) is made once, before the fork; every worker shares the backend.
            self.cfg.set("preload_app", True)
            self.cfg.set("workers", args.workers)
            self.cfg.set("worker_class", "sandbox.serving.worker.SandboxWorker")
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            # HTTP/1.1 keep-alive, an idle connection closed after this many seconds.
            self.cfg.set("keepalive", KEEPALIVE_SECONDS)
            # The loop answers the arbiter's heartbeat while whole-world operations run in threads; a worker whose
            # loop is stuck this long is killed and replaced, and the arbiter logs it.
            self.cfg.set("timeout", 60)
            # Each worker sends webhook deliveries (threads do not cross the fork): any of them may pick up what a
            # worker that died left (webhooks/sender.py).
            self.cfg.set("post_worker_init", lambda worker: app.extensions["sandbox"].sender.ensure_running())

        def load(self):
            return Bridge(app, threads=args.threads)

    Server().run()


def serve_granian(app, args) -> None:
    """granian spawns its workers, each importing the app anew: they get run.py's settings through the
    environment and join the world this process has seeded (a temporary database is named explicitly)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    sandbox = app.extensions["sandbox"]
    fields = {f.name: getattr(sandbox.settings, f.name) for f in dataclasses.fields(sandbox.settings)}
    if sandbox.settings.backend == "sqlite":
        fields["db"] = sandbox.backend.path
    os.environ[SETTINGS_ENV] = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in fields.items()})
    Granian("sandbox.serving.launch:granian_app", factory=True, address=args.host, port=args.port, interface=Interfaces.WSGI,
            workers=args.workers, blocking_threads=args.threads, log_level=LogLevels.warning).serve()


def granian_app():
    """The app of one granian worker process (see serve_granian)."""
    fields = json.loads(os.environ[SETTINGS_ENV])
    logs.configure(from_env("SANDBOX_LOG_LEVEL"), from_env("SANDBOX_LOG_FORMAT"))
    from sandbox import create_app

    app = create_app(Settings(**{k: Path(v) if k.endswith("_dir") else v for k, v in fields.items()}))
    app.extensions["sandbox"].sender.ensure_running()
    return app
