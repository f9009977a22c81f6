"""Start the sandbox in-process for your own tests, on a free loopback port.

    from sandbox.testing import start_sandbox

    with start_sandbox() as sandbox:
        requests.patch(f"{sandbox.base_url}/returning-ai/v1/purchase-histories/ORD202641612055614747",
                       headers=sandbox.headers("returning-ai"), json={...})

pytest users get the same as the `redemption_sandbox` fixture (sandbox.pytest_plugin, registered on install).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass

from werkzeug.serving import make_server

from . import Settings, create_app


@dataclass
class RunningSandbox:
    base_url: str  # e.g. http://127.0.0.1:53127; vendors are under /returning-ai/v1, /fabric/v3, /capillary
    credentials: list[dict]  # as GET /_sandbox/credentials lists them
    app: object  # the Flask app, for direct access to the sandbox (app.extensions["sandbox"])

    def headers(self, vendor: str, name: str | None = None) -> dict:
        """The headers to send with one of the vendor's demo credentials, chosen by its stable name (as
        GET /_sandbox/credentials lists it: "XXXXXX", "rai_test_no_read", "fabric-second-tenant-token",
        "till.second", ...); without a name, the vendor's first, the one its documents' examples use."""
        mine = [c for c in self.credentials if c["vendor"] == vendor]
        for credential in mine:
            if name is None or credential["name"] == name:
                return dict(credential["headers"])
        if not mine:
            raise LookupError(f"no vendor {vendor!r}; vendors: {', '.join(sorted({c['vendor'] for c in self.credentials}))}")
        raise LookupError(f"no {vendor} credential named {name!r}; its names: {', '.join(c['name'] for c in mine)}")

    def reset(self) -> None:
        self.app.extensions["sandbox"].reset()


@contextmanager
def start_sandbox(settings: Settings | None = None):
    app = create_app(settings or Settings())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningSandbox(f"http://127.0.0.1:{server.server_port}",
                             app.extensions["sandbox"].default.credentials(), app)
    finally:
        server.shutdown()
        thread.join(timeout=5)
