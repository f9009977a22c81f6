"""The application factory: one Sandbox (settings, specs, vendors, worlds) behind one Flask app."""
from __future__ import annotations

import secrets
import threading
import time

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Settings
from .control import control, scenarios
from .control.errors import NotFound as ControlNotFound, TooManyWorkspaces
from .core import rate_limits
from .core.clock import moment_ms
from .core.masking import Secrets
from .core.routing import Dispatch, install_error_handlers, mount
from .core.spec import load_spec
from .storage.store import WorldGone
from .storage.backends import open_backend
from .core.guard import Guard
from .core.logs import RequestLog
from .core.world import DEFAULT, World, new_suffix, suffix_of
from . import ui
from .kit import proxy
from .webhooks.sender import Sender
from .vendors import VENDORS

WORKSPACE_HEADER = "X-Sandbox-Workspace"


RECENT_WRITERS = 1024  # credentials a process remembers as having written lately (Sandbox.note_writer)


class Sandbox:
    """Every world the sandbox serves: the seeded default one and any workspaces created since.

    Which workspaces exist, and when each was last used, is kept in the backend (namespace `_sandbox`), so a
    workspace created through one worker process is served by all of them; each process opens the worlds it
    needs and forgets those that were dropped. So is each workspace's credential suffix, which is how a request's
    credential names the world it acts on (core/world.py).
    """

    REGISTRY = "workspaces"
    SUFFIXES = "suffixes"  # a workspace's credential suffix -> {"suffix", "workspace": its ID}

    def __init__(self, settings: Settings, vendors=VENDORS):
        self.settings = settings
        self.vendors = list(vendors)
        self.specs = {
            spec.name: spec
            for spec in (load_spec(settings.specs_dir / m.spec_file) for m in [*self.vendors, control])
        }
        self.secrets = Secrets.of(spec.document for spec in self.specs.values())  # what the journal masks
        self.credential_collections = {name for vendor in self.vendors for name in vendor.credential_fields}
        scenarios.check(settings.scenarios_dir, self.specs)  # before anything is seeded: a broken one stops the start
        self.backend = open_backend(settings)
        self.registry = self.backend.store("_sandbox", {}, create=True)
        start_limits = rate_limits.parse_option(settings.rate_limits, self.vendor_names) if settings.rate_limits else {}
        self.worlds: dict[str, World] = {DEFAULT: self._open(DEFAULT, settings.seed, settings.size,
                                                             clock=settings.clock, limits=start_limits)}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()
        self._touched: dict[str, float] = {}  # workspace -> when this process last wrote its lastUsed
        # Hashes of the credentials that lately wrote to the default world here, newest last: only theirs take its
        # write lock before their lookups (pipeline.lock_ahead), so an unknown caller never waits on it.
        self._writers: dict[int, None] = {}
        self.sender = Sender(self)  # webhook deliveries (webhooks/sender.py), started when first needed

    def _open(self, world_id: str, seed: int, size: int, suffix: str = "", clock: str | None = None,
              limits: dict | None = None) -> World:
        start = None if clock is None else moment_ms(clock, "clock")
        return World.open(world_id, self.settings, self.vendors, self.backend, seed, size, suffix, start, limits)

    @property
    def vendor_names(self) -> list[str]:
        return [v.name for v in self.vendors]

    def live_worlds(self) -> list[World]:
        """The default world and every workspace alive, as the webhook sender visits them."""
        return [self.default, *self.workspaces()]

    def wrote_lately(self, credential: str) -> bool:
        return hash(credential) in self._writers

    def note_writer(self, credential: str) -> None:
        with self._lock:
            self._writers.pop(hash(credential), None)
            self._writers[hash(credential)] = None
            if len(self._writers) > RECENT_WRITERS:
                del self._writers[next(iter(self._writers))]

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
    def create_workspace(self, seed: int | None = None, size: int | None = None, clock: str | None = None,
                         rate_limits: dict | None = None) -> World:
        """A new world. Its ID and its credentials' suffix are 128 bits each from `secrets`, drawn separately: neither
        can be guessed, and a credential says nothing of the ID or of another workspace's credentials.

        At most `settings.max_workspaces` exist at once (TooManyWorkspaces). The count is checked before seeding,
        so a refusal costs nothing, and again as the workspace is registered, in one transaction of the registry,
        so workers creating at the same moment never pass it together; the one that would is undone whole."""
        self._check_room()
        workspace_id = "ws" + secrets.token_hex(16)
        world = self._open(workspace_id, self.settings.seed if seed is None else seed,
                           self.settings.size if size is None else size, suffix=new_suffix(), clock=clock,
                           limits=rate_limits)
        try:
            with self.registry.transaction():  # registered once seeded, so no worker serves it half-made
                self._check_room()
                self.registry.put(self.SUFFIXES, world.suffix, {"suffix": world.suffix, "workspace": workspace_id})
                self._note_use(workspace_id)
        except BaseException:
            self._touched.pop(workspace_id, None)
            self.backend.drop(workspace_id)
            raise
        with self._lock:
            self.worlds[workspace_id] = world
        return world

    def _check_room(self) -> None:
        if len(self.registry.all(self.REGISTRY)) >= self.settings.max_workspaces:
            raise TooManyWorkspaces(self.settings.max_workspaces)

    def drop_workspace(self, workspace_id: str) -> bool:
        if workspace_id == DEFAULT or not self.registry.delete(self.REGISTRY, workspace_id):
            return False
        with self._lock:
            self.worlds.pop(workspace_id, None)
        self._touched.pop(workspace_id, None)
        for suffix in self.registry.find(self.SUFFIXES, workspace=workspace_id):
            self.registry.delete(self.SUFFIXES, suffix["suffix"])
        self.backend.drop(workspace_id)
        return True

    def check_not_deleted(self, world: World) -> None:
        """A workspace deleted (by any worker) while a whole-world write on it ran, after the write had opened its
        store: the write went to a file already unlinked, or made anew the Redis keys the deletion had dropped. It
        answers as any request on a deleted workspace (store.WorldGone, a 503), and what it wrote goes too."""
        if world.id != DEFAULT and self.registry.get(self.REGISTRY, world.id) is None:
            self.backend.drop(world.id)
            raise WorldGone(world.id)

    def workspaces(self) -> list[World]:
        registered = {r["id"]: r for r in self.registry.all(self.REGISTRY)}
        with self._lock:
            gone = [w for w in self.worlds if w != DEFAULT and w not in registered]
            for workspace_id in gone:  # dropped by another worker
                del self.worlds[workspace_id]
            missing = [w for w in registered if w not in self.worlds]
        for workspace_id in gone:
            self.backend.forget(workspace_id)
        for workspace_id in missing:  # created by another worker
            try:
                world = World.attach(workspace_id, self.settings, self.vendors, self.backend)
            except WorldGone:  # and deleted by one since the registry was read: not this request's concern
                continue
            with self._lock:
                self.worlds.setdefault(workspace_id, world)
        return [self.worlds[w] for w in registered if w in self.worlds]

    def idle_seconds(self, workspace_id: str) -> float:
        record = self.registry.get(self.REGISTRY, workspace_id)
        return _idle(record) if record else 0.0

    def touch(self, world: World) -> None:
        """Note the use of a workspace, writing to the registry at most a few times per expiry period."""
        every = min(1.0, self.settings.workspace_ttl / 4)
        if world.id != DEFAULT and time.time() - self._touched.get(world.id, 0) >= every:
            self._note_use(world.id)

    def _note_use(self, workspace_id: str) -> None:
        self._touched[workspace_id] = now = time.time()
        self.registry.put(self.REGISTRY, workspace_id, {"id": workspace_id, "lastUsed": now})

    def sweep(self) -> None:
        """Drop workspaces idle for longer than the configured expiry (checked at most once a second)."""
        now = time.monotonic()
        if now - self._last_sweep < 1:
            return
        self._last_sweep = now
        for record in self.registry.all(self.REGISTRY):
            if _idle(record) > self.settings.workspace_ttl:
                self.drop_workspace(record["id"])

    # -- which world a request acts on ---------------------------------------------------------------------
    def lookups(self):
        """One read snapshot for the lookups every request makes before its handler (which world, whose
        credentials, whether a fault rule may fire). Every store of the backend shares it where they share a
        connection (SQLite)."""
        return self.registry.snapshot()

    def world_for(self, mount_, req) -> World:
        """The world a request acts on; the caller notes its use (touch) once out of the lookups' snapshot."""
        if mount_ is control:
            workspace_id = req.headers.get(WORKSPACE_HEADER) or DEFAULT
            world = self.default if workspace_id == DEFAULT else next(
                (w for w in self.workspaces() if w.id == workspace_id), None)
            if world is None:
                raise ControlNotFound(f"No workspace {workspace_id}: it was deleted or expired")
        else:
            # The credential says which world, by its suffix, and only that world may authenticate it.
            credential = mount_.credential(req) if mount_.credential else None
            suffix = suffix_of(credential) if credential else ""
            world = (self._workspace_with_suffix(suffix) if suffix else None) or self.default
        return world

    def _workspace_with_suffix(self, suffix: str) -> World | None:
        record = self.registry.get(self.SUFFIXES, suffix)
        if record is None:
            return None
        workspace_id = record["workspace"]
        world = self.worlds.get(workspace_id)
        if world is None and self.registry.get(self.REGISTRY, workspace_id) is not None:  # made by another worker
            world = World.attach(workspace_id, self.settings, self.vendors, self.backend)
            with self._lock:
                world = self.worlds.setdefault(workspace_id, world)
        return world


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask("sandbox")
    # A path is served as written: werkzeug would answer `//_sandbox//reset` or `/docs` (for `/docs/`) with a 308
    # and an HTML body, where every answer of the sandbox is JSON; unmatched, it is the JSON 404.
    app.url_map.merge_slashes = app.url_map.strict_slashes = False
    sandbox = Sandbox(settings)
    app.extensions["sandbox"] = sandbox
    for m in [*sandbox.vendors, control]:
        mount(app, m, sandbox.specs[m.spec_file.removesuffix(".yaml")])
    app.register_blueprint(ui.bp)
    app.register_blueprint(proxy.bp)
    install_error_handlers(app)
    # The first thing every request meets: the Host allow-list, then the control API's cross-site checks; around
    # them, the log line of a request the pipeline does not log (pages, the proxy, refusals). Then a documented
    # operation goes straight to the pipeline, anything else to Flask (core/routing.py).
    app.wsgi_app = RequestLog(Guard(Dispatch(app), settings, control_prefix="/" + control.name), sandbox.secrets)
    if settings.trust_proxy:  # the one place forwarded headers are read (the servers' own readers are off)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)
    return app


def _idle(record: dict) -> float:
    """Seconds since a workspace's registry record says it was last used (wall-clock: shared across hosts)."""
    return time.time() - record["lastUsed"]
