"""The one store interface every vendor uses (`StoreContract`), and its in-process memory backend.

Records are plain JSON-compatible dicts kept in named collections, keyed by id. Callers never touch the
backing data: they read fresh copies, and they change state inside `transaction()`, which holds the store's
lock so that a check and the write that depends on it (a uniqueness check, a balance) cannot race.
Logs (events, the journal) are append-only lists in the same store, optionally bounded; counters hand out
increasing numbers (run-time IDs, fault-rule ids). A reset (`clear`) empties all of it.

Names starting with `_` are the sandbox's own bookkeeping (journal, fault rules, counters, world settings):
`collections()`, `dump()` and `load()` leave them out, so state snapshots hold vendor data only.

`StoreContract` below says what every backend guarantees, and where they differ today. The backends are this
module's `MemoryStore`, `sqlite_store.SQLiteStore` and `redis_store.RedisStore`; tests/test_store.py checks each
of them against it.
"""
from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager
from typing import ContextManager, Iterable, Iterator, Protocol, runtime_checkable

from .codec import decode, encode


def internal(name: str) -> bool:
    """A collection or log of the sandbox's own bookkeeping, left out of collections(), dump() and load()."""
    return name.startswith("_")


@runtime_checkable
class StoreContract(Protocol):
    """What a store is: one world's state on one backend. Every backend offers exactly these methods.

    Copies: records and log entries are stored as JSON text. Every read (get, find, find_one, all, read_log, dump)
    returns fresh copies, and every write keeps a copy of what it was given: changing either side later changes
    nothing stored. Values must be JSON-compatible; integers beyond 64 bits survive.

    Order: find() and all() give records in insertion order, that is in the order their keys were first written:
    an update keeps a record's place; a delete, then a put, moves it last. One exception today: on memory, find()
    by an indexed field gives them in the order they were last written (an update moves a record last).
    read_log() gives entries oldest first.

    Atomicity, per backend as it is today (callers must not rely on more; they check first and write last, so a
    refusal raised before the first write leaves nothing behind on every backend):
        memory  one re-entrant lock per store, in one process. No rollback.
        sqlite  a write transaction shared by every process on the file; rolls back on an exception.
        redis   a lock key shared by every instance on the server and prefix. No rollback.
    A single write (put, delete, append_log ...) outside a transaction is atomic by itself on every backend.
    """

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        """The record stored under `key` in `collection`, or None."""
        ...

    def find(self, collection: str, **criteria) -> list[dict]:
        """The records whose fields equal every criterion (a field the record lacks counts as None), in insertion
        order (on memory, by an indexed field: in order of last write). Declared indexes (the `indexes` a backend
        is made with) make a lookup by an indexed field fast; the result is the same without them, except that on
        an indexed field a criterion may match only values of its own JSON type (on Redis, 1 does not find 1.0):
        compare like with like."""
        ...

    def find_one(self, collection: str, **criteria) -> dict | None:
        """The first record find() gives, or None."""
        ...

    def all(self, collection: str) -> list[dict]:
        """Every record of the collection, in insertion order."""
        ...

    def collections(self) -> dict[str, int]:
        """{name: number of records} for every vendor collection (internal `_` names left out), in the order
        collections were first written (SQLite: in the order of their oldest record still stored). A collection
        whose records were all deleted is listed with 0 on memory and left out on SQLite and Redis."""
        ...

    def read_log(self, name: str, last: int | None = None, number: str | None = None) -> list[dict]:
        """The log's entries, oldest first; [] for a log never appended to.

        `last`: only the newest `last` entries (still oldest first), or fewer if the log holds fewer; None gives
        every entry kept. Pass a positive number: last=0 gives [] on SQLite but the whole log on memory and Redis.

        `number`: for a log appended with append_log(number=F), pass the same F to get every entry with its number
        in field F. SQLite keeps an entry's number as its row's and sets F only when asked (read without `number`,
        its entries lack F); memory and Redis wrote F into the entry when it was appended, so they have it either
        way and ignore this argument. On a log appended without `number`, what F holds is unspecified."""
        ...

    # -- writes ------------------------------------------------------------------------------------------------
    def transaction(self) -> ContextManager["StoreContract"]:
        """Hold the store's write lock for a read-check-write sequence: while one caller is inside, no other
        thread, process or instance sharing the store is inside a transaction of it, so a check and the write
        that depends on it cannot interleave with another's. Nested use (same thread) joins the outer transaction:
        it takes no lock and commits nothing of its own.

        Per backend, today:
            memory  A re-entrant lock. Writes take effect at once and stay when an exception leaves the block:
                    no rollback. Single writes from other threads wait for the lock.
            sqlite  BEGIN IMMEDIATE, once per thread and file (so it covers every world of the file the thread
                    writes to meanwhile). Others see the writes when the outermost block commits; an exception
                    leaving the outermost block rolls back everything written inside it, nested blocks included
                    (one caught inside the block undoes nothing). Single writes from others wait for it.
                    Refused inside snapshot() (RuntimeError).
            redis   A lock key (SET NX, released only by its holder, expiring after `redis_store.LOCK_SECONDS`),
                    re-entrant per thread. Writes take effect at once and stay when an exception leaves the block:
                    no rollback. Only other transactions wait for it: a single write outside one does not."""
        ...

    def snapshot(self) -> ContextManager["StoreContract"]:
        """For reads only: the reads inside may share one view of the data, where a backend makes that cheaper
        than a view per read. SQLite: one read transaction on the thread's connection, for every world of the file
        (commits made meanwhile by others are not seen inside). Memory and Redis: no grouping; each read sees the
        latest state. Nests; inside a transaction() it adds nothing, and the reads see the transaction's own
        writes. Writing inside is a programming error: SQLite raises RuntimeError for a write or a transaction()
        inside; memory and Redis do not check."""
        ...

    def put(self, collection: str, key: str, record: dict) -> None:
        """Store `record` under `key`, replacing the record there (which keeps its place in insertion order)."""
        ...

    def put_all(self, collection: str, key_field: str, records: Iterable[dict]) -> None:
        """put() each record, in order, under its own `key_field` as text (str(record[key_field])), in one
        transaction: all or nothing on SQLite; on memory an error keeps the records put before it."""
        ...

    def delete(self, collection: str, key: str) -> bool:
        """Remove the record under `key`; True if there was one."""
        ...

    def append_log(self, name: str, entry: dict, keep: int | None = None, number: str | None = None) -> None:
        """Append `entry` at the newest end of the log `name`.

        `keep`: the log is bounded, and read_log(name, last=keep) gives exactly its newest `keep` entries. Older
        ones are dropped at once on memory and Redis (the log never holds more than `keep`), in batches on SQLite
        (after every 64 appends by one store object: until then read_log() without `last` may give up to 63
        more per store that appends). Pass the same `keep` on every append to a log.

        `number`: the entry is numbered, in field `number` (read it back with read_log(number=): see there). A
        number is unique in the log and greater than every number given before in it, trimmed entries included,
        until the log is cleared: then memory and Redis go on counting after clear_log() and count from 1 again
        after clear(), while SQLite (either way) may give numbers the removed entries had. On Redis the
        number is drawn before the entry is appended, so two appends racing outside a transaction may stand in
        the log in the other order of their numbers; on memory and SQLite log order is number order."""
        ...

    def clear_log(self, name: str) -> None:
        """Remove every entry of the log (its counter for append_log(number=) stays: see there)."""
        ...

    def next_value(self, name: str) -> int:
        """1, 2, 3 ... per name, atomically across every process and instance sharing the store, until the next
        clear(). Counters are bookkeeping: dump() and load() leave them out."""
        ...

    def clear(self) -> None:
        """Empty the store: every collection, log and counter, the sandbox's bookkeeping included."""
        ...

    # -- state snapshots -------------------------------------------------------------------------------------
    def dump(self) -> dict:
        """The vendor data (internal `_` names left out) as JSON-compatible data:
        {"collections": {name: {key: record}}, "logs": {name: [entry, ...]}}, records in insertion order and
        entries oldest first. Logs without entries are left out; so are collections without records, except on
        memory, which gives a collection whose records were all deleted as {}."""
        ...

    def load(self, snapshot: dict) -> None:
        """Replace the vendor data with a dump(): every vendor collection and log is emptied, then the snapshot's
        records are put and its log entries appended, in the snapshot's order (entries as they are: not numbered,
        not bounded). The sandbox's bookkeeping (internal `_` collections and logs, counters) stays as it was.
        In one transaction, so all or nothing on SQLite only."""
        ...


class Store:
    """What every backend shares: the conveniences built on its find(), put() and transaction(). What each method
    guarantees is declared once, in StoreContract."""

    def find_one(self, collection: str, **criteria) -> dict | None:
        found = self.find(collection, **criteria)
        return found[0] if found else None

    def all(self, collection: str) -> list[dict]:
        return self.find(collection)

    @contextmanager
    def snapshot(self) -> Iterator["Store"]:
        """Memory and Redis: no grouping to do (see StoreContract.snapshot)."""
        yield self

    def load(self, snapshot: dict) -> None:
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
        """The store's re-entrant lock; no rollback."""
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
        """A bounded log is a deque of `keep` entries; a number is the counter `_log:<name>`'s next value."""
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
