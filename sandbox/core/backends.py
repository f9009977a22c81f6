"""Where worlds keep their state: one backend per sandbox, one store (namespace) per world.

    memory  one process; the fastest, for tests and `--dev`
    sqlite  every worker process of one machine (the default of `run.py`); survives a restart given `--db`
    redis   every sandbox instance on every host that points at the same Redis (`--redis-url`)
"""
from __future__ import annotations

from .sqlite_store import SQLiteStore, temporary_database
from .store import MemoryStore

BACKENDS = ("memory", "sqlite", "redis")


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

    def store(self, namespace: str, indexes: dict) -> SQLiteStore:
        return SQLiteStore(self.path, indexes, world=namespace)

    def drop(self, namespace: str) -> None:
        SQLiteStore(self.path, world=namespace).clear()

    def describe(self) -> str:
        return f"sqlite {self.path}" + ("" if self._kept else " (temporary)")


class RedisBackend:
    def __init__(self, settings):
        import redis

        from .redis_store import RedisStore

        self._store_class = RedisStore
        self.url = settings.redis_url
        self.prefix = settings.redis_prefix
        self.client = redis.Redis.from_url(settings.redis_url)
        self.client.ping()  # fail at start-up, with the URL in the message, rather than on the first request

    def store(self, namespace: str, indexes: dict):
        return self._store_class(self.client, f"{self.prefix}:{namespace}", indexes)

    def drop(self, namespace: str) -> None:
        self.store(namespace, {}).clear()

    def describe(self) -> str:
        return f"redis {self.url} (keys {self.prefix}:*)"


def open_backend(settings):
    return {"memory": MemoryBackend, "sqlite": SQLiteBackend, "redis": RedisBackend}[settings.backend](settings)
