"""A world: one isolated copy of every vendor's data, with its own IDs, events, journal and faults.

The default world is the seeded one; each workspace is another world, seeded the same way but with credentials
of its own, so the credentials a request carries say which world it acts on. All of a world's state, its seed
and size included, lives in its store, so every worker process (and, on Redis, every host) sees the same world.

Whose a credential is, is written in it: a workspace's credentials end with the workspace's secret suffix (a dot
and 32 hex digits, 128 bits from `secrets`, unrelated to its ID), the default world's never end like that. A
request is served by the world its credential names and no other, and no world may hold another's credential.
"""
from __future__ import annotations

import copy
import logging
import re
import secrets
import zlib
from functools import cache, lru_cache
from pathlib import Path

import yaml
from faker import Faker

from .clock import ClockState, WorldClock
from .faults import FaultRules
from .ids import IdGenerator
from .journal import Journal
from ..storage.store import StoreUnavailable

DEFAULT = "default"


class DataGone(StoreUnavailable):
    """A world whose data left the backend (World.vanished): health and every vendor call say so, alike; a vendor
    call would otherwise meet a 401, its credential gone with the rest."""

    def __init__(self, world_id: str, backend: str):
        which, remedy = (("the default world", "POST /_sandbox/reset to seed it again") if world_id == DEFAULT else
                         (f"workspace {world_id}", "Delete this workspace and create a new one"))
        super().__init__(f"The data of {which} is gone from the {backend} backend (restarted without persistence, "
                         f"flushed, or keys evicted): vendor calls fail until it is seeded again. {remedy}.",
                         reachable=True)
log = logging.getLogger("sandbox")
# Collection and key of the world's seed, size and credential suffix, and the seed and size it started with.
_SETTINGS = ("_world", "settings")
_WORKSPACE_SUFFIX = re.compile(r"\.[0-9a-f]{32}\Z")


def new_suffix() -> str:
    """A workspace's credential suffix: a dot and 128 bits from the operating system, in hex."""
    return "." + secrets.token_hex(16)


def suffix_of(credential: str) -> str:
    """The workspace suffix a credential ends with; "" for a credential of the default world."""
    found = _WORKSPACE_SUFFIX.search(credential)
    return found.group(0) if found else ""


class World:
    def __init__(self, world_id: str, settings, vendors, store):
        self.id = world_id
        self.settings = settings
        self.vendors = vendors
        self.store = store
        self.ids = IdGenerator(store, lambda: self.seed)
        self.faults = FaultRules(store)
        self.journal = Journal(store, settings.journal_size)
        self.clock = WorldClock(store)

    @classmethod
    def attach(cls, world_id: str, settings, vendors, backend, create: bool = False) -> "World":
        """The world as the backend holds it (made by this process or another), without seeding it. Its store is
        made only when `create`d: a workspace deleted meanwhile is not brought back empty (store.WorldGone)."""
        return cls(world_id, settings, vendors, backend.store(world_id, indexes_of(vendors), create))

    @classmethod
    def open(cls, world_id: str, settings, vendors, backend, seed: int, size: int, suffix: str = "",
             clock_start: int | None = None, rate_limits: dict | None = None) -> "World":
        """The world in the backend, seeded first if it is not there yet (a new database, a new workspace), its
        clock frozen at `clock_start` (epoch ms; None: the wall clock), its requests limited by `rate_limits`
        (core/rate_limits.py); one that is there (a database file from an earlier run, another worker's) is used as
        it is, its clock and limits included."""
        world = cls.attach(world_id, settings, vendors, backend, create=True)
        with world.store.transaction():
            if world.store.get(*_SETTINGS) is None:
                world._write_settings(seed, size, suffix, {"seed": seed, "size": size})
                world.clock.start(ClockState.starting_at(clock_start), rate_limits or {})
                world.reset()
        return world

    # -- seed, size and credential suffix, as stored -------------------------------------------------------
    def _settings(self) -> dict:
        """As stored; the configured seed and size where a stored field is missing or not what it must be (a store
        damaged by hand or by an older version), said once in the log, so the world still serves and a reset
        (which writes them anew) repairs it. A world stored before it kept its start started where it is."""
        stored = self.store.get(*_SETTINGS)
        fallback = {"seed": self.settings.seed, "size": self.settings.size, "suffix": ""}
        if stored is None:
            return {**fallback, "start": {"seed": fallback["seed"], "size": fallback["size"]}}
        kinds = {"seed": int, "size": int, "suffix": str}
        damaged = sorted(k for k, kind in kinds.items() if type(stored.get(k)) is not kind)
        if damaged:
            _damaged(self.id, ", ".join(damaged))
        settings = {k: stored[k] if k not in damaged else fallback[k] for k in kinds}
        start = stored.get("start")
        if not (isinstance(start, dict) and type(start.get("seed")) is int and type(start.get("size")) is int):
            start = {"seed": settings["seed"], "size": settings["size"]}
        return {**settings, "start": start}

    def _write_settings(self, seed: int, size: int, suffix: str, start: dict) -> None:
        self.store.put(*_SETTINGS, {"seed": seed, "size": size, "suffix": suffix, "start": start})

    @property
    def seed(self) -> int:
        return self._settings()["seed"]

    @property
    def size(self) -> int:
        return self._settings()["size"]

    @property
    def suffix(self) -> str:
        """Appended to every credential of a workspace (new_suffix); "" for the default world."""
        return self._settings()["suffix"]

    def foreign_credential(self, collection: str, key: str, record: dict) -> str | None:
        """Why a record about to be written here (imported, or changed by a scenario) would claim a credential that
        is not this world's, naming it; None when it claims none. A vendor's `credential_fields` name the
        collections whose keys are credentials, and the fields that hold one."""
        fields = next((v.credential_fields[collection] for v in self.vendors if collection in v.credential_fields),
                      None)
        if fields is None:
            return None
        suffix = self.suffix
        for value in [key] + [record.get(f) for f in fields]:
            if not isinstance(value, str) or suffix_of(value) == suffix:
                continue
            if not suffix:
                return (f"{collection} {_shown(value)} ends like a workspace's credential (a dot and 32 hex "
                        "digits): the default world may not hold it")
            whose = "another workspace's" if suffix_of(value) else "the default world's"
            return (f"{collection} {_shown(value)} is {whose} credential: this workspace may hold only credentials "
                    "ending with its own suffix, as GET /_sandbox/credentials lists them")
        return None

    def vanished(self) -> bool:
        """Whether its data is gone from the backend (Redis restarted without persistence, flushed, or evicting
        keys): a seeded world always holds its settings."""
        return self.store.get(*_SETTINGS) is None

    def adopt(self, seed: int, size: int, clock: ClockState) -> None:
        """Imported state: say which seed and size it came from, and put its clock where it was (a reset still goes
        back to where this world started)."""
        self._write_settings(seed, size, self.suffix, self._settings()["start"])
        self.clock.set(clock)

    def reset(self, seed: int | None = None, size: int | None = None, restart: bool = False) -> None:
        """Back to the seeded state: data, events, journal, fault rules, run-time IDs (rate-limit counts among them),
        the clock where the world started, and the world's own rate limits. A seed or size left out is the one the
        world started with (run.py's --seed and --size, a workspace's own), not the last one asked for; `restart`:
        the world starts anew from these (run.py --reseed), and later resets come back to them."""
        with self.store.transaction():
            current = self._settings()
            restart_clock = self.clock.restart()
            seed = current["start"]["seed"] if seed is None else seed
            size = current["start"]["size"] if size is None else size
            start = {"seed": seed, "size": size} if restart else current["start"]
            self.store.clear()
            self._write_settings(seed, size, current["suffix"], start)
            restart_clock()
            for vendor in self.vendors:
                # Each vendor draws from its own generator, so adding a vendor never changes another's data.
                fake = Faker()
                fake.seed_instance(seed ^ zlib.crc32(vendor.name.encode()))
                fixtures = copy.deepcopy(_fixtures(self.settings.fixtures_dir / f"{vendor.name}.yaml"))
                vendor.seed(self.store, fake, size, fixtures, current["suffix"])

    def credentials(self) -> list[dict]:
        """Every demo credential, named by its key, token, till or client without the workspace's suffix: the
        same name in every world (sandbox.testing's headers(vendor, name) selects by it)."""
        suffix = self.suffix
        return [{**c, "name": c["name"].removesuffix(suffix)} if suffix else c
                for vendor in self.vendors for c in vendor.credentials(self.store)]


def _shown(value: str) -> str:
    return value if len(value) <= 100 else value[:100] + "…"


@lru_cache(maxsize=64)  # once per world and fields, for the worlds seen lately: workspaces come and go
def _damaged(world_id: str, fields: str) -> None:
    log.warning("world %s: its stored settings lack a valid %s; serving with the configured values until "
                "POST /_sandbox/reset writes them anew", world_id, fields)


def indexes_of(vendors) -> dict[str, list[str]]:
    """The secondary indexes every vendor's lookups need: collection -> fields."""
    return {collection: fields for vendor in vendors for collection, fields in vendor.indexes.items()}


@cache
def _fixtures(path: Path) -> dict:
    if not path.exists():
        return {}
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
