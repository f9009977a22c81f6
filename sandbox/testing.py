"""The sandbox in your own tests: started in-process on a loopback port, or one already running, reached by URL; a
workspace of it per test, and `verify` to assert what your code sent.

    from sandbox.testing import start_sandbox

    with start_sandbox() as sandbox, sandbox.workspace() as workspace:
        requests.patch(f"{workspace.base_url}/returning-ai/v1/purchase-histories/ORD202641612055614747",
                       headers=workspace.headers("returning-ai"), json={...})
        workspace.verify(operation="updatePurchaseHistory", status=200, count=1)

pytest users get the same as fixtures (sandbox/pytest_plugin.py, registered when the package is installed).
Everything here speaks HTTP to the control API (specs/sandbox.yaml) with the standard library: a sandbox started
here and one running elsewhere behave alike.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from werkzeug.serving import make_server

from . import Settings, create_app
from .kit.control_client import control_call


class NotVerified(AssertionError):
    """What your code sent did not match: the message lists the closest requests the sandbox saw, field by field
    (as `run.py verify` prints them). An AssertionError, so pytest shows it as a failed assertion."""


class ControlError(RuntimeError):
    """The control API refused a call (a wrong admin token, a bad pattern, no such workspace): its status and
    message."""


@dataclass
class _Control:
    """Calls to one world's control API (the default world, or a workspace when `workspace` is set)."""

    base_url: str  # e.g. http://127.0.0.1:53127; vendors are under /returning-ai/v1, /fabric/v3, /capillary
    admin_token: str | None = None
    workspace_id: str | None = None

    def call(self, method: str, path: str, body: dict | None = None, accept: tuple = (200,)) -> tuple[int, dict]:
        status, text = control_call(self.base_url, method, path, body, self.admin_token, self.workspace_id)
        if status < 400 or status in accept:
            return status, json.loads(text)
        try:
            message = json.loads(text)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = text[:500]
        raise ControlError(f"{method} {path} answered {status}: {message}")


@dataclass
class _World(_Control):
    credentials: list[dict] = field(default_factory=list)  # as GET /_sandbox/credentials lists them

    def headers(self, vendor: str, name: str | None = None) -> dict:
        """The headers to send with one of the vendor's demo credentials, chosen by its stable name (as
        GET /_sandbox/credentials lists it: "XXXXXX", "rai_test_no_read", "fabric-second-tenant-token",
        "till.second", ...); without a name, the vendor's first, the one its documents' examples use. In a
        workspace, they are the workspace's own."""
        mine = [c for c in self.credentials if c["vendor"] == vendor]
        for credential in mine:
            if name is None or credential["name"] == name:
                return dict(credential["headers"])
        if not mine:
            raise LookupError(f"no vendor {vendor!r}; vendors: {', '.join(sorted({c['vendor'] for c in self.credentials}))}")
        raise LookupError(f"no {vendor} credential named {name!r}; its names: {', '.join(c['name'] for c in mine)}")

    def reset(self) -> None:
        """Back to the world's seeded state (POST /_sandbox/reset, its start-up seed and size)."""
        self.call("POST", "/_sandbox/reset")

    def verify(self, **pattern) -> dict:
        """Assert what was sent to this world: a pattern as POST /_sandbox/requests/verify takes it (operation,
        status, body, bodyMatch, bodyPaths, count, atLeast, ...). Returns the sandbox's answer when it holds;
        raises NotVerified with the near misses when it does not."""
        from .kit.verify import report

        status, result = self.call("POST", "/_sandbox/requests/verify", pattern, accept=(200, 409))
        if not result.get("verified"):
            raise NotVerified(report(pattern, result))
        return result


@dataclass
class Workspace(_World):
    """A world of its own (POST /_sandbox/workspaces): its own data, credentials, journal and fault rules."""

    @property
    def id(self) -> str:
        return self.workspace_id

    def delete(self) -> None:
        self.call("DELETE", f"/_sandbox/workspaces/{self.id}", accept=(200, 404))


@dataclass
class RunningSandbox(_World):
    app: object = None  # the Flask app when started here (app.extensions["sandbox"]); None for one reached by URL

    @contextmanager
    def workspace(self, **options):
        """A new workspace (options as POST /_sandbox/workspaces takes them: seed, size, clock, rateLimits), deleted
        when the block ends."""
        _, created = self.call("POST", "/_sandbox/workspaces", options, accept=(201,))
        made = Workspace(self.base_url, self.admin_token, created["id"], created["credentials"])
        try:
            yield made
        finally:
            made.delete()


def connect(base_url: str, admin_token: str | None = None) -> RunningSandbox:
    """A sandbox already running at `base_url` (run.py, the container, a team's server)."""
    world = RunningSandbox(base_url.rstrip("/"), admin_token)
    world.credentials = world.call("GET", "/_sandbox/credentials")[1]["credentials"]
    return world


@contextmanager
def start_sandbox(settings: Settings | None = None, port: int = 0):
    """A sandbox served from this process on 127.0.0.1 (`port` 0: a free one) while the block runs."""
    settings = settings or Settings()
    app = create_app(settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RunningSandbox(f"http://127.0.0.1:{server.server_port}", settings.admin_token, None,
                             app.extensions["sandbox"].default.credentials(), app=app)
    finally:
        server.shutdown()
        thread.join(timeout=5)
