"""The one store interface every vendor uses, and its in-process memory backend.

Records are plain JSON-compatible dicts kept in named collections, keyed by id. Callers never touch the
backing data: they read fresh copies, and they change state inside `transaction()`, which holds the store's
lock so that a check and the write that depends on it (a uniqueness check, a balance) cannot race.
Logs (events, the journal) are append-only lists in the same store, optionally bounded; counters hand out
increasing numbers (run-time IDs, fault-rule ids). A reset (`clear`) empties all of it.

Names starting with `_` are the sandbox's own bookkeeping (journal, fault rules, counters, world settings):
`collections()`, `dump()` and `load()` leave them out, so state snapshots hold vendor data only.

Every backend (memory here, `sqlite_store.SQLiteStore`, `redis_store.RedisStore`) passes tests/test_store.py.
"""
from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator

from .codec import decode, encode


def internal(name: str) -> bool:
    return name.startswith("_")


class Store:
    """What every backend shares: the conveniences built on its find()."""

    def find(self, collection: str, **criteria) -> list[dict]:
        raise NotImplementedError

    def find_one(self, collection: str, **criteria) -> dict | None:
        found = self.find(collection, **criteria)
        return found[0] if found else None

    def all(self, collection: str) -> list[dict]:
        return self.find(collection)

    @contextmanager
    def snapshot(self) -> Iterator["Store"]:
        """Reads only: the reads inside may share one view of the data, where a backend can make that cheaper than
        a view per read (SQLite). Writing inside is a programming error."""
        yield self

    def load(self, snapshot: dict) -> None:
        """Replace the vendor data with a dump() (indexes rebuilt); the sandbox's bookkeeping stays."""
        with self.transaction():
            self._clear_vendor_data()
            for name, records in snapshot["collections"].items():
                for key, record in records.items():
                    self.put(name, key, record)
            for name, entries in snapshot["logs"].items():
                for entry in entries:
                    self.append_log(name, entry)


class MemoryStore(Store):
    """Everything in one process, guarded by one re-entrant lock. Records are kept as JSON text, which makes
    every read a fresh copy at a fraction of `copy.deepcopy`'s cost."""

    def __init__(self, indexes: dict[str, list[str]] | None = None):
        self._lock = threading.RLock()
        self._collections: dict[str, dict[str, str]] = {}
        self._logs: dict[str, deque[str]] = {}
        self._counters: dict[str, int] = {}
        # collection -> field -> value -> keys (a dict as an ordered set); declared for the lookups vendors make.
        self._indexed_fields = indexes or {}
        self._indexes: dict[str, dict[str, dict[object, dict[str, None]]]] = {}
        self._reset_indexes()

    # -- reads (always copies) ----------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        text = self._collections.get(collection, {}).get(key)
        return decode(text) if text is not None else None

    def find(self, collection: str, **criteria) -> list[dict]:
        """Records whose fields equal every criterion, in insertion order."""
        with self._lock:
            records = self._collections.get(collection, {})
            keys = self._candidate_keys(collection, criteria)
            texts = [records[k] for k in keys] if keys is not None else list(records.values())
        candidates = (decode(t) for t in texts)
        return [r for r in candidates if all(r.get(f) == v for f, v in criteria.items())]

    def collections(self) -> dict[str, int]:
        with self._lock:
            return {name: len(records) for name, records in self._collections.items() if not internal(name)}

    def read_log(self, name: str, last: int | None = None, number: str | None = None) -> list[dict]:
        """The log in order; with `last`, only its newest `last` entries (`number`: see SQLiteStore.read_log;
        here the number is kept in the entry itself)."""
        with self._lock:
            texts = list(self._logs.get(name, ()))
        return [decode(t) for t in (texts[-last:] if last else texts)]

    # -- writes ---------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["MemoryStore"]:
        """Hold the store for a read-check-write sequence; nested use is fine."""
        with self._lock:
            yield self

    def put(self, collection: str, key: str, record: dict) -> None:
        text = encode(record)
        with self._lock:
            records = self._collections.setdefault(collection, {})
            old = records.get(key)
            if old is not None:
                self._unindex(collection, key, decode(old))
            records[key] = text
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
                self._unindex(collection, key, decode(old))
            return old is not None

    def append_log(self, name: str, entry: dict, keep: int | None = None, number: str | None = None) -> None:
        """Append; with `keep`, only the newest `keep` entries stay; with `number`, the entry gets that field set to
        a number no earlier entry of the log had."""
        with self._lock:
            text = encode({**entry, number: self.next_value(f"_log:{name}")} if number else entry)
            log = self._logs.get(name)
            if log is None or log.maxlen != keep:
                log = self._logs[name] = deque(log or (), maxlen=keep)
            log.append(text)

    def clear_log(self, name: str) -> None:
        with self._lock:
            self._logs.pop(name, None)

    def next_value(self, name: str) -> int:
        """1, 2, 3 ... per name, until the next clear()."""
        with self._lock:
            value = self._counters[name] = self._counters.get(name, 0) + 1
            return value

    def clear(self) -> None:
        with self._lock:
            self._collections.clear()
            self._logs.clear()
            self._counters.clear()
            self._reset_indexes()

    # -- snapshots -------------------------------------------------------------------------------------------
    def dump(self) -> dict:
        """Vendor data as JSON-compatible data: {"collections": {name: {key: record}}, "logs": {name: [...]}}."""
        with self._lock:
            collections = {name: dict(records) for name, records in self._collections.items() if not internal(name)}
            logs = {name: list(log) for name, log in self._logs.items() if not internal(name)}
        return {"collections": {name: {k: decode(t) for k, t in records.items()} for name, records in collections.items()},
                "logs": {name: [decode(t) for t in log] for name, log in logs.items()}}

    def _clear_vendor_data(self) -> None:
        for name in [n for n in self._collections if not internal(n)]:
            for key in list(self._collections[name]):
                self.delete(name, key)
            del self._collections[name]
        for name in [n for n in self._logs if not internal(n)]:
            del self._logs[name]

    # -- secondary indexes ---------------------------------------------------------------------------------
    def _reset_indexes(self) -> None:
        self._indexes = {collection: {field: {} for field in fields}
                         for collection, fields in self._indexed_fields.items()}

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
