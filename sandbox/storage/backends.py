"""Where worlds keep their state: one backend per sandbox, one store (namespace) per world.

    memory  one process; the fastest, for tests and `--dev`
    sqlite  every worker process of one machine (the default of `run.py`); survives a restart given `--db`
    redis   every sandbox instance on every host that points at the same Redis (`--redis-url`)
"""
from __future__ import annotations

import glob
import os
import re
import sqlite3
import weakref
from contextlib import closing

import redis

from .redis.cache import ReadCache
from .redis.client import RedisLink, connect, shown
from .redis.store import RedisStore
from .sqlite import SQLiteStore, forget_database, temporary_database
from .memory import MemoryStore
from .store import WorldGone

BACKENDS = ("memory", "sqlite", "redis")


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot be reached; the message says what to fix."""


class MemoryBackend:
    def __init__(self, settings):
        self._stores: dict[str, MemoryStore] = {}

    def store(self, namespace: str, indexes: dict, create: bool) -> MemoryStore:
        if namespace not in self._stores:
            if not create:
                raise WorldGone(namespace)
            self._stores[namespace] = MemoryStore(indexes)
        return self._stores[namespace]

    def drop(self, namespace: str) -> None:
        store = self._stores.pop(namespace, None)
        if store is not None:
            store.clear()

    def forget(self, namespace: str) -> None:
        """Nothing to let go of: a memory backend is one process's."""

    def describe(self) -> str:
        return "memory (this process only)"


class SQLiteBackend:
    """The registry and the default world share the main file (`--db FILE`, or a temporary one); each workspace has
    a file of its own beside it (`FILE-<workspace id>`), with its own writer lock, so that a workspace's writes (a
    reseed) never hold up the default world's or another workspace's: SQLite has one writer per file."""

    SHARED = ("_sandbox", "default")  # the namespaces kept in the main file

    def __init__(self, settings):
        # Made before the server forks its workers, so that they all open the same file.
        self.path = settings.db or temporary_database(self)
        self._kept = settings.db is not None
        if not self._kept:  # the workspaces' files go with the temporary main file
            weakref.finalize(self, _remove_world_files, self.path, os.getpid())
        try:
            with closing(sqlite3.connect(self.path)) as check:
                columns = [row[1] for row in check.execute("PRAGMA table_info(records)")]
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"Cannot open the database {self.path} ({exc}); pass a writable --db FILE") from exc
        if columns and "world" not in columns:
            raise BackendUnavailable(f"{self.path} was written by an earlier version of the sandbox; delete it or "
                                     "pass another --db FILE")

    def path_for(self, namespace: str) -> str:
        if namespace in self.SHARED:
            return self.path
        if not re.fullmatch(r"\w+", namespace):  # workspace IDs come from the code, never from a request
            raise ValueError(f"no database file for the namespace {namespace!r}")
        return f"{self.path}-{namespace}"

    def store(self, namespace: str, indexes: dict, create: bool) -> SQLiteStore:
        path = self.path_for(namespace)
        return SQLiteStore(path, indexes, world=namespace, create=create, workspace=path != self.path)

    def drop(self, namespace: str) -> None:
        path = self.path_for(namespace)
        if path == self.path:
            SQLiteStore(self.path, world=namespace).clear()
        else:
            forget_database(path, remove=True)

    def forget(self, namespace: str) -> None:
        """A workspace another process dropped: let go of this process's connections to its file."""
        if self.path_for(namespace) != self.path:
            forget_database(self.path_for(namespace))

    def describe(self) -> str:
        return f"sqlite {self.path}" + ("" if self._kept else " (temporary)")


class RedisBackend:
    def __init__(self, settings):
        self.url = shown(settings.redis_url)
        self.prefix = settings.redis_prefix
        self.client = connect(settings.redis_url)
        # Shared by every store of this sandbox: one line in the log when Redis goes away, one when it is back;
        # one read cache, caught up once per request's lookups and once per transaction.
        self.link = RedisLink(self.client, settings.redis_url)
        self.cache = ReadCache(self.link, self.prefix)
        try:
            self.client.ping()  # fail at start-up, saying what to fix, rather than on the first request
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Cannot use Redis at {self.url} ({exc}); start redis-server there "
                                     "or pass another --redis-url") from exc

    def store(self, namespace: str, indexes: dict, create: bool) -> RedisStore:
        """`create` does not apply: a world's keys are made by its writes (a write after its world was dropped
        leaves keys under the dropped prefix, which nothing reads)."""
        return RedisStore(self.client, f"{self.prefix}:{namespace}", indexes, self.link, self.cache)

    def drop(self, namespace: str) -> None:
        self.store(namespace, {}, create=True).clear()

    def forget(self, namespace: str) -> None:
        """Nothing to let go of: every world shares the client."""

    def describe(self) -> str:
        return f"redis {self.url} (keys {self.prefix}:*)"


def _remove_world_files(path: str, owner_pid: int) -> None:
    """The workspaces' files of a temporary main file, when the process that made it lets go of it."""
    if os.getpid() == owner_pid:
        for world_file in glob.glob(glob.escape(path) + "-*"):
            if not world_file.endswith(("-wal", "-shm", "-lock", "-long")):
                forget_database(world_file, remove=True)


def open_backend(settings):
    return {"memory": MemoryBackend, "sqlite": SQLiteBackend, "redis": RedisBackend}[settings.backend](settings)
