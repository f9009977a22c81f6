"""Where worlds keep their state: one backend per sandbox, one store (namespace) per world.

    memory  one process; the fastest, for tests and `--dev`
    sqlite  every worker process of one machine (the default of `run.py`); survives a restart given `--db`
    redis   every sandbox instance on every host that points at the same Redis (`--redis-url`)
"""
from __future__ import annotations

import sqlite3
from contextlib import closing

import redis

from .redis_client import Reachability, connect, shown
from .redis_store import RedisStore
from .sqlite_store import SQLiteStore, temporary_database
from .store import MemoryStore

BACKENDS = ("memory", "sqlite", "redis")


class BackendUnavailable(RuntimeError):
    """The backend asked for cannot be reached; the message says what to fix."""


class MemoryBackend:
    def __init__(self, settings):
        self._stores: dict[str, MemoryStore] = {}

    def store(self, namespace: str, indexes: dict) -> MemoryStore:
        if namespace not in self._stores:
            self._stores[namespace] = MemoryStore(indexes)
        return self._stores[namespace]

    def drop(self, namespace: str) -> None:
        store = self._stores.pop(namespace, None)
        if store is not None:
            store.clear()

    def describe(self) -> str:
        return "memory (this process only)"


class SQLiteBackend:
    def __init__(self, settings):
        # Made before the server forks its workers, so that they all open the same file.
        self.path = settings.db or temporary_database(self)
        self._kept = settings.db is not None
        try:
            with closing(sqlite3.connect(self.path)) as check:
                columns = [row[1] for row in check.execute("PRAGMA table_info(records)")]
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"Cannot open the database {self.path} ({exc}); pass a writable --db FILE") from exc
        if columns and "world" not in columns:
            raise BackendUnavailable(f"{self.path} was written by an earlier version of the sandbox; delete it or "
                                     "pass another --db FILE")

    def store(self, namespace: str, indexes: dict) -> SQLiteStore:
        return SQLiteStore(self.path, indexes, world=namespace)

    def drop(self, namespace: str) -> None:
        SQLiteStore(self.path, world=namespace).clear()

    def describe(self) -> str:
        return f"sqlite {self.path}" + ("" if self._kept else " (temporary)")


class RedisBackend:
    def __init__(self, settings):
        self.url = shown(settings.redis_url)
        self.prefix = settings.redis_prefix
        self.client = connect(settings.redis_url)
        # Shared by every store of this sandbox: one line in the log when Redis goes away, one when it is back.
        self.reachability = Reachability(settings.redis_url)
        try:
            self.client.ping()  # fail at start-up, saying what to fix, rather than on the first request
        except redis.RedisError as exc:
            raise BackendUnavailable(f"Cannot use Redis at {self.url} ({exc}); start redis-server there "
                                     "or pass another --redis-url") from exc

    def store(self, namespace: str, indexes: dict) -> RedisStore:
        return RedisStore(self.client, f"{self.prefix}:{namespace}", indexes, self.reachability)

    def drop(self, namespace: str) -> None:
        self.store(namespace, {}).clear()

    def describe(self) -> str:
        return f"redis {self.url} (keys {self.prefix}:*)"


def open_backend(settings):
    return {"memory": MemoryBackend, "sqlite": SQLiteBackend, "redis": RedisBackend}[settings.backend](settings)
