"""The memory backend: one process's worlds in dicts, for tests, in-process apps and `--dev`. What it guarantees is
store.StoreContract's (where it differs from the others, the contract says so)."""
from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import Iterator

from .codec import decode, encode
from .store import Store, internal


class _Saved:
    """What a memory transaction changed, as it was before: per collection and log, its contents (None: it did
    not exist), and the counters. Taken at the first write to each inside the transaction."""

    def __init__(self):
        self.collections: dict[str, dict | None] = {}
        self.logs: dict[str, deque | None] = {}
        self.counters: dict[str, int] | None = None


class MemoryStore(Store):
    """Everything in one process, guarded by one re-entrant lock. Records are kept as JSON text, which makes
    every read a fresh copy at a fraction of `copy.deepcopy`'s cost."""

    def __init__(self, indexes: dict[str, list[str]] | None = None):
        self._lock = threading.RLock()
        self._depth = 0  # transactions open, nested ones included; only the lock's holder changes it
        self._saved: _Saved | None = None  # while a transaction is open: what to put back if it fails
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
        """`number` is ignored: append_log wrote it into the entry."""
        with self._lock:
            texts = list(self._logs.get(name, ()))
        return [decode(t) for t in (texts[-last:] if last else texts)]

    # -- writes ---------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["MemoryStore"]:
        """The store's re-entrant lock; an exception leaving the outermost block puts back what was saved."""
        with self._lock:
            outermost = self._depth == 0
            if outermost:
                self._saved = _Saved()
            self._depth += 1
            try:
                yield self
            except BaseException:
                if outermost:
                    self._roll_back(self._saved)
                raise
            finally:
                self._depth -= 1
                if outermost:
                    self._saved = None

    def put(self, collection: str, key: str, record: dict) -> None:
        text = encode(record)
        with self._lock:
            self._save_collection(collection)
            records = self._collections.setdefault(collection, {})
            old = records.get(key)
            if old is not None:
                self._unindex(collection, key, decode(old))
            records[key] = text
            self._index(collection, key, record)

    def put_all(self, collection: str, key_field: str, records) -> None:
        with self.transaction():
            for record in records:
                self.put(collection, str(record[key_field]), record)

    def delete(self, collection: str, key: str) -> bool:
        with self._lock:
            self._save_collection(collection)
            old = self._collections.get(collection, {}).pop(key, None)
            if old is not None:
                self._unindex(collection, key, decode(old))
            return old is not None

    def append_log(self, name: str, entry: dict, keep: int | None = None, number: str | None = None) -> None:
        """A bounded log is a deque of `keep` entries; a number is the counter `_log:<name>`'s next value."""
        with self._lock:
            text = encode({**entry, number: self.next_value(f"_log:{name}")} if number else entry)
            self._save_log(name)
            log = self._logs.get(name)
            if log is None or log.maxlen != keep:
                log = self._logs[name] = deque(log or (), maxlen=keep)
            log.append(text)

    def clear_log(self, name: str) -> None:
        with self._lock:
            self._save_log(name)
            self._logs.pop(name, None)

    def next_value(self, name: str) -> int:
        with self._lock:
            self._save_counters()
            value = self._counters[name] = self._counters.get(name, 0) + 1
            return value

    def forget_value(self, name: str) -> None:
        with self._lock:
            self._save_counters()
            self._counters.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            for name in list(self._collections):
                self._save_collection(name)
            for name in list(self._logs):
                self._save_log(name)
            self._save_counters()
            self._collections.clear()
            self._logs.clear()
            self._counters.clear()
            self._reset_indexes()

    # -- export and import -----------------------------------------------------------------------------------------
    def dump_groups(self):
        with self._lock:  # references to the stored texts, taken at one moment
            collections = [(name, list(records.items())) for name, records in self._collections.items()
                           if not internal(name)]
            logs = [(name, list(log)) for name, log in self._logs.items() if not internal(name)]
        for name, rows in collections:
            yield "records", name, rows
        for name, log in logs:
            yield "logs", name, [(None, text) for text in log]

    def load(self, state: dict) -> None:
        """Store.load, keeping a collection the state gives as {} where it stands, as a collection whose records
        were all deleted is kept (dump gives it as {}): the world loaded exports as the state is."""
        with self.transaction():
            self._clear_vendor_data()
            for name, records in state["collections"].items():
                self._save_collection(name)
                self._collections.setdefault(name, {})
                for key, record in records.items():
                    self.put(name, key, record)
            for name, entries in state["logs"].items():
                for entry in entries:
                    self.append_log(name, entry)

    def _clear_vendor_data(self) -> None:
        for name in [n for n in self._collections if not internal(n)]:
            for key in list(self._collections[name]):
                self.delete(name, key)
            del self._collections[name]
        for name in [n for n in self._logs if not internal(n)]:
            self._save_log(name)
            del self._logs[name]

    # -- rollback --------------------------------------------------------------------------------------------
    def _save_collection(self, name: str) -> None:
        if self._saved is not None and name not in self._saved.collections:
            records = self._collections.get(name)
            self._saved.collections[name] = dict(records) if records is not None else None

    def _save_log(self, name: str) -> None:
        if self._saved is not None and name not in self._saved.logs:
            log = self._logs.get(name)
            self._saved.logs[name] = deque(log, maxlen=log.maxlen) if log is not None else None

    def _save_counters(self) -> None:
        if self._saved is not None and self._saved.counters is None:
            self._saved.counters = dict(self._counters)

    def _roll_back(self, saved: _Saved) -> None:
        for name, records in saved.collections.items():
            if records is None:
                self._collections.pop(name, None)
            else:
                self._collections[name] = records
            self._reindex(name)
        for name, log in saved.logs.items():
            if log is None:
                self._logs.pop(name, None)
            else:
                self._logs[name] = log
        if saved.counters is not None:
            self._counters = saved.counters

    # -- secondary indexes ---------------------------------------------------------------------------------
    def _reset_indexes(self) -> None:
        self._indexes = {collection: {field: {} for field in fields}
                         for collection, fields in self._indexed_fields.items()}

    def _reindex(self, collection: str) -> None:
        if collection in self._indexed_fields:
            self._indexes[collection] = {field: {} for field in self._indexed_fields[collection]}
            for key, text in self._collections.get(collection, {}).items():
                self._index(collection, key, decode(text))

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
