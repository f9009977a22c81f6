"""The application factory: one Sandbox (settings, store, vendors, specs) behind one Flask app."""
from __future__ import annotations

import copy
import zlib
from functools import cache
from pathlib import Path

import yaml
from faker import Faker
from flask import Flask

from .config import Settings
from .control import control
from .core.routing import install_error_handlers, mount
from .core.ids import IdGenerator
from .core.spec import load_spec
from .core.store import MemoryStore
from .vendors import VENDORS


class Sandbox:
    """The running world: what the control API resets and what every handler acts on."""

    def __init__(self, settings: Settings, vendors=VENDORS):
        self.settings = settings
        self.vendors = list(vendors)
        indexes = {}
        for vendor in self.vendors:
            indexes.update(vendor.indexes)
        self.store = MemoryStore(indexes)
        self.specs = {
            spec.name: spec
            for spec in (load_spec(settings.specs_dir / m.spec_file) for m in [*self.vendors, control])
        }
        self.seed = settings.seed
        self.size = settings.size
        self.ids = IdGenerator(self.seed)
        self.reset()

    def reset(self, seed: int | None = None, size: int | None = None) -> None:
        self.seed = self.seed if seed is None else seed
        self.size = self.size if size is None else size
        with self.store.transaction():
            self.ids.reseed(self.seed)
            self.store.clear()
            for vendor in self.vendors:
                # Each vendor draws from its own generator, so adding a vendor never changes another's data.
                fake = Faker()
                fake.seed_instance(self.seed ^ zlib.crc32(vendor.name.encode()))
                fixtures = copy.deepcopy(_fixtures(self.settings.fixtures_dir / f"{vendor.name}.yaml"))
                vendor.seed(self.store, fake, self.size, fixtures)

    def credentials(self) -> list[dict]:
        return [c for vendor in self.vendors for c in vendor.credentials(self.store)]


@cache
def _fixtures(path: Path) -> dict:
    if not path.exists():
        return {}
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings()
    app = Flask("sandbox")
    sandbox = Sandbox(settings)
    app.extensions["sandbox"] = sandbox
    app.extensions["sandbox_mounts"] = []
    app.extensions["sandbox_paths"] = []
    for m in [*sandbox.vendors, control]:
        mount(app, m, sandbox.specs[m.spec_file.removesuffix(".yaml")], prefix="/" + m.name)
    install_error_handlers(app)
    return app
