"""The gunicorn worker run.py serves with: uvicorn's worker (the maintained `uvicorn-worker` package), its HTTP/1.1
parsed by httptools and its waiting done by uvloop, with the sandbox's protocol (protocol.py), its connections shared
out evenly among the workers (balance.py), and the Flask app behind the bridge (bridge.py). gunicorn's arbiter forks
the workers from the app it preloaded, and replaces one that dies, logging why."""
from __future__ import annotations

import asyncio
import signal
import sys

from gunicorn.arbiter import Arbiter
from uvicorn_worker import UvicornWorker

from .balance import LEDGER, BalancedServer
from .protocol import SandboxProtocol


SWITCH_INTERVAL = 0.0001  # seconds
GRACE = 5  # seconds a stopping worker gives the answers under way (a held one may be due later: it is cut)


class SandboxWorker(UvicornWorker):
    # proxy_headers off: uvicorn would believe X-Forwarded-* from any loopback client (a served spec's `servers`
    # said https for anyone who asked); run.py --trust-proxy reads them in the app (werkzeug's ProxyFix).
    CONFIG_KWARGS = {"loop": "auto", "http": SandboxProtocol, "lifespan": "off", "access_log": False,
                     "server_header": False, "timeout_graceful_shutdown": GRACE, "proxy_headers": False}

    async def _serve(self) -> None:
        SandboxProtocol.request_timeout = self.wsgi.timeout  # the bridge's, from the app's settings
        # While a whole-world operation runs in a thread (bridge.py), the loop waits for the interpreter at most
        # this long per turn, not Python's 5 ms: 24 reseeding clients put the default world's PATCH p99 at 31 ms
        # with 5 ms, 6.2 ms with 0.5 ms, 3.8 ms with 0.1 ms (bench/isolation.py --resetters 24; idle 1.1-1.5 ms).
        # With no such thread running, the interval costs nothing: nobody asks for the interpreter.
        sys.setswitchinterval(SWITCH_INTERVAL)
        LEDGER.join()
        # As UvicornWorker._serve, but with the balancing server, and for SIGQUIT: gunicorn's quick shutdown (SIGINT
        # or SIGQUIT to the arbiter, as a Ctrl-C in `docker run` without -t sends) sends it to every worker, and
        # uvicorn-worker's handler only marked the gunicorn worker as stopping, which uvicorn's server never reads:
        # each worker waited out the arbiter's 30 s and was killed. Here it stops the server at once.
        self.config.app = self.wsgi
        server = BalancedServer(config=self.config)
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, _stop_now, server)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


def _stop_now(server: BalancedServer) -> None:
    server.should_exit = server.force_exit = True
