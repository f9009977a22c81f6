"""The application factory: one Sandbox (settings, specs, vendors, worlds) behind one Flask app."""
from __future__ import annotations

import secrets
import threading
import time

from flask import Flask, current_app, g, request

from .config import Settings
from .control import control
from .control.errors import NotFound as ControlNotFound
from .core.clock import now_iso
from .core.journal import journal_entry
from .core.routing import install_error_handlers, mount, mount_for_path
from .core.spec import load_spec
from .core.world import DEFAULT, World
from . import proxy, ui
from .vendors import VENDORS

WORKSPACE_HEADER = "X-Sandbox-Workspace"


class Sandbox:
    """Every world the sandbox serves: the seeded default one and any workspaces created since."""

    def __init__(self, settings: Settings, vendors=VENDORS):
        self.settings = settings
        self.vendors = list(vendors)
        self.specs = {
            spec.name: spec
            for spec in (load_spec(settings.specs_dir / m.spec_file) for m in [*self.vendors, control])
        }
        self.worlds: dict[str, World] = {DEFAULT: World(DEFAULT, settings, self.vendors, settings.seed, settings.size)}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    @property
    def default(self) -> World:
        return self.worlds[DEFAULT]

    # The default world's, for callers that know no workspaces (tests, run.py's banner).
    @property
    def store(self):
        return self.default.store

    @property
    def seed(self) -> int:
        return self.default.seed

    @property
    def size(self) -> int:
        return self.default.size

    def reset(self, seed: int | None = None, size: int | None = None) -> None:
        self.default.reset(seed, size)

    # -- workspaces ----------------------------------------------------------------------------------------
    def create_workspace(self, seed: int | None = None, size: int | None = None) -> World:
        workspace_id = "ws" + secrets.token_hex(4)
        world = World(workspace_id, self.settings, self.vendors,
                      self.settings.seed if seed is None else seed, self.settings.size if size is None else size,
                      suffix=f".{workspace_id}")
        with self._lock:
            self.worlds[workspace_id] = world
        return world

    def drop_workspace(self, workspace_id: str) -> bool:
        if workspace_id == DEFAULT:
            return False
        with self._lock:
            return self.worlds.pop(workspace_id, None) is not None

    def workspaces(self) -> list[World]:
        return [w for w in list(self.worlds.values()) if w.id != DEFAULT]

    def sweep(self) -> None:
        """Drop workspaces idle for longer than the configured expiry (checked at most once a second)."""
        now = time.monotonic()
        if now - self._last_sweep < 1 or len(self.worlds) == 1:
            return
        self._last_sweep = now
        for world in self.workspaces():
            if world.idle_seconds() > self.settings.workspace_ttl:
                self.drop_workspace(world.id)

    # -- which world a request acts on ---------------------------------------------------------------------
    def world_for(self, mount_, req) -> World:
        if mount_ is control:
            workspace_id = req.headers.get(WORKSPACE_HEADER)
            world = self.worlds.get(workspace_id or DEFAULT)
            if world is None:
                raise ControlNotFound(f"No workspace {workspace_id}: it was deleted or expired")
        else:
            # The credentials say which world: a workspace's are its own (they carry its suffix).
            world = next((w for w in self.workspaces() if mount_.knows and mount_.knows(w.store, req)), self.default)
        world.touch()
        return world


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask("sandbox")
    sandbox = Sandbox(settings)
    app.extensions["sandbox"] = sandbox
    app.extensions["sandbox_mounts"] = []
    app.extensions["sandbox_paths"] = []
    for m in [*sandbox.vendors, control]:
        mount(app, m, sandbox.specs[m.spec_file.removesuffix(".yaml")], prefix="/" + m.name)
    app.register_blueprint(ui.bp)
    app.register_blueprint(proxy.bp)
    install_error_handlers(app)
    app.before_request(_start_clock)
    app.after_request(_journal)
    return app


def _start_clock() -> None:
    g.started = time.perf_counter()
    _sandbox().sweep()


def _journal(response):
    """Record every vendor request in the journal of the world it acted on."""
    mount_ = mount_for_path(request.path)
    if mount_ is None or mount_ is control:
        return response
    world = g.get("world") or _sandbox().default
    duration = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    rule = g.get("rule") or ("ok" if response.status_code < 400 else "error")
    world.journal.record(journal_entry(request, response, mount_.name, g.get("operation"), rule, duration, now_iso()))
    return response


def _sandbox() -> Sandbox:
    return current_app.extensions["sandbox"]
