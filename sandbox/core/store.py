"""The one store interface every vendor uses, and its in-process memory backend.

Records are plain JSON-compatible dicts kept in named collections, keyed by id. Callers never touch the
backing dictionaries: they read copies, and they change state inside `transaction()`, which holds the
store's lock so that a check and the write that depends on it (a uniqueness check, a balance) cannot race.
Logs (events, history) are append-only lists in the same store, so a reset clears them too.
"""
from __future__ import annotations

import copy
import threading
from contextlib import contextmanager
from typing import Iterator


class MemoryStore:
    """Everything in one process, guarded by one re-entrant lock."""

    def __init__(self, indexes: dict[str, list[str]] | None = None):
        self._lock = threading.RLock()
        self._collections: dict[str, dict[str, dict]] = {}
        self._logs: dict[str, list[dict]] = {}
        # collection -> field -> value -> keys (a dict as an ordered set); declared for the lookups vendors make.
        self._indexes: dict[str, dict[str, dict[object, dict[str, None]]]] = {
            collection: {field: {} for field in fields} for collection, fields in (indexes or {}).items()
        }

    # -- reads (always copies) ----------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        with self._lock:
            record = self._collections.get(collection, {}).get(key)
            return copy.deepcopy(record) if record is not None else None

    def find(self, collection: str, **criteria) -> list[dict]:
        """Records whose fields equal every criterion, in insertion order."""
        with self._lock:
            records = self._collections.get(collection, {})
            keys = self._candidate_keys(collection, criteria)
            candidates = (records[k] for k in keys) if keys is not None else records.values()
            return [
                copy.deepcopy(r) for r in candidates if all(r.get(f) == v for f, v in criteria.items())
            ]

    def find_one(self, collection: str, **criteria) -> dict | None:
        found = self.find(collection, **criteria)
        return found[0] if found else None

    def all(self, collection: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(list(self._collections.get(collection, {}).values()))

    def collections(self) -> dict[str, int]:
        with self._lock:
            return {name: len(records) for name, records in self._collections.items()}

    def read_log(self, name: str) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self._logs.get(name, []))

    # -- writes ---------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["MemoryStore"]:
        """Hold the store for a read-check-write sequence; nested use is fine."""
        with self._lock:
            yield self

    def put(self, collection: str, key: str, record: dict) -> None:
        with self._lock:
            records = self._collections.setdefault(collection, {})
            old = records.get(key)
            if old is not None:
                self._unindex(collection, key, old)
            records[key] = copy.deepcopy(record)
            self._index(collection, key, record)

    def put_all(self, collection: str, key_field: str, records) -> None:
        """Store each record under its own `key_field` (as text), as seeding does."""
        with self._lock:
            for record in records:
                self.put(collection, str(record[key_field]), record)

    def delete(self, collection: str, key: str) -> bool:
        with self._lock:
            old = self._collections.get(collection, {}).pop(key, None)
            if old is not None:
                self._unindex(collection, key, old)
            return old is not None

    def append_log(self, name: str, entry: dict) -> None:
        with self._lock:
            self._logs.setdefault(name, []).append(copy.deepcopy(entry))

    def clear(self) -> None:
        with self._lock:
            self._collections.clear()
            self._logs.clear()
            for fields in self._indexes.values():
                for field in fields:
                    fields[field] = {}

    # -- snapshots -------------------------------------------------------------------------------------------
    def dump(self) -> dict:
        """Everything, as JSON-compatible data: {"collections": {name: {key: record}}, "logs": {name: [...]}}."""
        with self._lock:
            return copy.deepcopy({"collections": self._collections, "logs": self._logs})

    def load(self, snapshot: dict) -> None:
        """Replace everything with a dump(), indexes rebuilt."""
        with self._lock:
            self.clear()
            for name, records in snapshot["collections"].items():
                for key, record in records.items():
                    self.put(name, key, record)
            self._logs = copy.deepcopy(snapshot["logs"])

    # -- secondary indexes ---------------------------------------------------------------------------------
    def _candidate_keys(self, collection: str, criteria: dict) -> list[str] | None:
        indexed = self._indexes.get(collection, {})
        for field, value in criteria.items():
            if field in indexed:
                return list(indexed[field].get(_hashable(value), ()))
        return None

    def _index(self, collection: str, key: str, record: dict) -> None:
        for field, values in self._indexes.get(collection, {}).items():
            values.setdefault(_hashable(record.get(field)), {})[key] = None

    def _unindex(self, collection: str, key: str, record: dict) -> None:
        for field, values in self._indexes.get(collection, {}).items():
            values.get(_hashable(record.get(field)), {}).pop(key, None)


def _hashable(value):
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
