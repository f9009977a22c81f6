"""A world: one isolated copy of every vendor's data, with its own IDs, events, journal and faults.

The default world is the seeded one; each workspace is another world, seeded the same way but with credentials
of its own, so the credentials a request carries say which world it acts on.
"""
from __future__ import annotations

import copy
import time
import zlib
from functools import cache
from pathlib import Path

import yaml
from faker import Faker

from .faults import FaultRules
from .ids import IdGenerator
from .journal import Journal
from .sqlite_store import SQLiteStore
from .store import MemoryStore

DEFAULT = "default"


class World:
    def __init__(self, world_id: str, settings, vendors, seed: int, size: int, suffix: str = ""):
        self.id = world_id
        self.settings = settings
        self.vendors = vendors
        self.suffix = suffix  # appended to every credential of a workspace, so they differ from the default's
        self.seed = seed
        self.size = size
        indexes = {}
        for vendor in vendors:
            indexes.update(vendor.indexes)
        if settings.backend == "sqlite":
            # Only the default world keeps a file; workspaces are throwaway.
            self.store = SQLiteStore(settings.db if world_id == DEFAULT else None, indexes)
        else:
            self.store = MemoryStore(indexes)
        self.ids = IdGenerator(seed)
        self.faults = FaultRules()
        self.journal = Journal(settings.journal_size)
        self.last_used = time.monotonic()
        existing = self.store.collections()
        if existing:
            # A database file from an earlier run: keep its state; new IDs must not repeat the ones it holds.
            self.ids.reseed(f"{seed}:resumed:{sum(existing.values())}")
        else:
            self.reset()

    def reset(self, seed: int | None = None, size: int | None = None) -> None:
        """Back to the seeded state: data, events, journal and fault rules."""
        self.seed = self.seed if seed is None else seed
        self.size = self.size if size is None else size
        with self.store.transaction():
            self.ids.reseed(self.seed)
            self.store.clear()
            self.faults.clear()
            self.journal.clear()
            for vendor in self.vendors:
                # Each vendor draws from its own generator, so adding a vendor never changes another's data.
                fake = Faker()
                fake.seed_instance(self.seed ^ zlib.crc32(vendor.name.encode()))
                fixtures = copy.deepcopy(_fixtures(self.settings.fixtures_dir / f"{vendor.name}.yaml"))
                vendor.seed(self.store, fake, self.size, fixtures, self.suffix)

    def credentials(self) -> list[dict]:
        return [c for vendor in self.vendors for c in vendor.credentials(self.store)]

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def idle_seconds(self) -> float:
        return time.monotonic() - self.last_used


@cache
def _fixtures(path: Path) -> dict:
    if not path.exists():
        return {}
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
