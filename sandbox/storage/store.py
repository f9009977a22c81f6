"""The one store interface every vendor uses (`StoreContract`), and what every backend shares (`Store`).

Records are plain JSON-compatible dicts kept in named collections, keyed by id. Callers never touch the
backing data: they read fresh copies, and they change state inside `transaction()`, which makes a check and the
write that depends on it (a uniqueness check, a balance) one step that no other writer can come between, and
which leaves nothing written when it fails.
Logs (events, the journal) are append-only lists in the same store, optionally bounded; counters hand out
increasing numbers (run-time IDs, fault-rule ids). A reset (`clear`) empties all of it.

Names starting with `_` are the sandbox's own bookkeeping (journal, fault rules, counters, world settings):
`collections()`, `dump()` and `load()` leave them out, so exported states hold vendor data only.

`StoreContract` below says what every backend guarantees, and where they differ. The backends are
`memory.MemoryStore`, `sqlite.SQLiteStore` and `redis.store.RedisStore`; tests/test_store.py checks each of them
against it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import ContextManager, Iterable, Iterator, Protocol, runtime_checkable

from .codec import decode, wire


class StoreUnavailable(Exception):
    """The store cannot serve this call now: its server is unreachable, or the world's write lock stayed busy or
    was lost. Nothing the failed call or transaction wrote is kept; the same request may succeed after
    `retry_after` seconds. `reachable`: whether the store still takes writes (a lock problem), so that the answer
    can be journaled; False when the server itself is unreachable."""

    retry_after = 1

    def __init__(self, message: str, reachable: bool):
        super().__init__(message)
        self.reachable = reachable


class WorldGone(StoreUnavailable):
    """The workspace a request acts on was deleted while the request was under way (by another thread or worker):
    its store is gone and is not made anew. Nothing was written, nor journaled (its journal went with it)."""

    def __init__(self, world: str):
        super().__init__(f"Workspace {world} was deleted while this request was under way; nothing was written. "
                         "Sent again, the request is answered as for a workspace that does not exist.", reachable=False)


class WorldBeingReplaced(StoreUnavailable):
    """A reset or an import is writing the world in steps (Redis), or one stopped part-way and left it incomplete."""

    def __init__(self, cut: bool):
        super().__init__("A reset or an import of this world stopped part-way (Redis went away, or its writer "
                         "stopped) and left it incomplete; nothing was written. POST /_sandbox/reset, or import "
                         "again, to replace it." if cut else
                         "This world is being replaced by a reset or an import under way; nothing was written. Retry "
                         "in a second.", reachable=True)


class WouldWait(BaseException):
    """A world's write lock is held for long (a whole-world operation: `holding_long`) and the calling thread said it
    must not wait (`not_waiting`): the server's event loop, which makes the request again in a thread
    (sandbox/serving/bridge.py). Raised before anything is written; a BaseException, so that no handler on the way
    answers it as an error. SQLite's writers' lock raises it; memory's and Redis's locks wait as ever."""


_WAITING = threading.local()


@contextmanager
def _flagged(name: str):
    """Within: this thread's flag `name` is set (one of those below)."""
    setattr(_WAITING, name, True)
    try:
        yield
    finally:
        setattr(_WAITING, name, False)


def not_waiting():
    """Within: a backend raises WouldWait where it would wait long for a write lock."""
    return _flagged("refused")


def waiting_refused() -> bool:
    return getattr(_WAITING, "refused", False)


def holding_long():
    """Within: this thread's writes may hold their world's write lock for long (a whole-world operation: a reset, an
    import), and say so, so that a writer that must not wait (`not_waiting`) gives up at once (WouldWait) instead of
    waiting behind them; behind any other writer it waits, as that one's commit is a matter of microseconds."""
    return _flagged("long")


def holds_long() -> bool:
    return getattr(_WAITING, "long", False)


def must_finish() -> None:
    """The request has written what must not be written twice (a fault rule spent: its count and dice), so it
    cannot be made again: from here on, its locks are waited for, even under not_waiting. (Every other write before
    the request's own transaction, a workspace's last use, may be repeated.)"""
    _WAITING.refused = False


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

    Atomicity: on every backend a transaction() is all or nothing (see there: an exception leaving it undoes
    every write made inside it, counters included), and no other transaction of the store comes between its
    reads and its writes. A single write (put, delete, append_log ...) outside a transaction is atomic by itself.

    Availability: Redis raises StoreUnavailable (this module) from any method when the server cannot be reached,
    and from transaction() when the world's lock stays busy or is lost; nothing the failed call or transaction
    wrote is kept, so the caller answers "retry later" (the pipeline: a 503 with Retry-After). Memory and SQLite
    never raise it.
    """

    # Whether lock_ahead() does anything: true where taking the transaction's lock brings the reads up to date in
    # the same round trip (Redis), so a write's lookups need no catch-up of their own; false where taking it early
    # would only hold the write lock through authentication.
    locks_before_lookups: bool = False

    def lock_ahead(self) -> ContextManager["StoreContract"]:
        """For a caller about to write: takes the world's write lock now, for the next transaction() this thread
        opens inside the block, and serves the reads before it as that transaction's would (Redis: from the read
        cache the lock's round trip caught up). The lock is given back when that transaction ends, or when the
        block exits if none was opened. Where `locks_before_lookups` is false: nothing."""
        ...

    def being_replaced(self) -> None:
        """Raises WorldBeingReplaced while another request's reset or import is writing the world in steps (Redis:
        RedisStore._apply_in_steps), or after one stopped part-way; the pipeline asks before a request's lookups.
        Memory and SQLite replace a world in one transaction that readers never see half-done: never."""
        ...

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
        """A read-check-write sequence as one step: while one caller is inside, no other thread, process or
        instance sharing the store is inside a transaction of it, so a check and the write that depends on it
        cannot interleave with another's. Reads inside see the transaction's own writes. An exception leaving the
        outermost block undoes everything written inside it (records, log entries, counters), nested blocks
        included; one caught inside the block undoes nothing. Nested use (same thread) joins the outer
        transaction: it commits nothing of its own.

        Per backend:
            memory  A re-entrant lock; writes take effect at once, and the first write to each collection, log or
                    counter inside keeps a copy of it to put back on an exception. Single writes from other
                    threads wait for the lock.
            sqlite  BEGIN IMMEDIATE, once per thread and file (so it covers every world of the file the thread
                    writes to meanwhile). Others see the writes when the outermost block commits. Single writes
                    from others wait for it. Refused inside snapshot() (RuntimeError).
            redis   A lock key per world (`redis_lock`), re-entrant per thread, kept alive while its holder runs and
                    expiring `LOCK_SECONDS` after a holder stops (crashed, paused, cut off). Writes are held in the
                    process and applied when the outermost block exits, all in one server-side script that first
                    checks the lock is still this holder's: when it is not, nothing is applied and StoreUnavailable
                    is raised, so a holder that outlived its lock can never write over another's check. Waiting
                    longer than `LOCK_WAIT_SECONDS` for the lock raises StoreUnavailable too. Taking the lock brings
                    the process's read cache up to date in the same round trip (see snapshot()). Others see the
                    writes once they are applied; single writes from others do not wait for the lock. Two
                    differences inside a transaction: an entry appended with number= gets its number when the
                    writes are applied (read inside, it has none yet), and a next_value() of the same counter
                    outside any transaction meanwhile makes the transaction fail (StoreUnavailable) rather than
                    hand out a number twice."""
        ...

    def snapshot(self) -> ContextManager["StoreContract"]:
        """For reads only: the reads inside may share one view of the data, where a backend makes that cheaper
        than a view per read. SQLite: one read transaction on the thread's connection, for every world of the file
        (commits made meanwhile by others are not seen inside). Redis: one round trip as it begins brings this
        process's read cache up to date (redis_cache); records read inside (get, find, all) come from that cache
        where it holds them, else from the server: never older than the snapshot's start, and what was cached is
        not refreshed until the next snapshot or transaction; logs and counters are read from the server. Memory:
        no grouping; each read sees the latest state. Nests; inside a transaction() it adds nothing, and the reads
        see the transaction's own writes. Writing inside is a programming error: SQLite raises RuntimeError for a write or a transaction()
        inside; memory and Redis do not check."""
        ...

    def put(self, collection: str, key: str, record: dict) -> None:
        """Store `record` under `key`, replacing the record there (which keeps its place in insertion order)."""
        ...

    def put_all(self, collection: str, key_field: str, records: Iterable[dict]) -> None:
        """put() each record, in order, under its own `key_field` as text (str(record[key_field])), in one
        transaction: all or nothing."""
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
        after clear(), while SQLite (either way) may give numbers the removed entries had. Log order is number
        order."""
        ...

    def clear_log(self, name: str) -> None:
        """Remove every entry of the log (its counter for append_log(number=) stays: see there)."""
        ...

    def next_value(self, name: str) -> int:
        """1, 2, 3 ... per name, atomically across every process and instance sharing the store, until the next
        clear(). Counters are bookkeeping: dump() and load() leave them out."""
        ...

    def forget_value(self, name: str) -> None:
        """The counter gone, as if never counted (its next_value() is 1 again); nothing when there is none. Outside
        any transaction only (Redis refuses it inside one: RuntimeError), like the counting it tidies up after."""
        ...

    def clear(self) -> None:
        """Empty the store: every collection, log and counter, the sandbox's bookkeeping included."""
        ...

    # -- export and import -----------------------------------------------------------------------------------------
    def dump(self) -> dict:
        """The vendor data (internal `_` names left out) as JSON-compatible data:
        {"collections": {name: {key: record}}, "logs": {name: [entry, ...]}}, records in insertion order and
        entries oldest first, a bounded log's newest `keep` (as read_log(last=keep): on SQLite too, before its
        batched trim). Logs without entries are left out; so are collections without records, except on memory,
        which gives a collection whose records were all deleted as {} (and load() keeps one given as {})."""
        ...

    def dump_groups(self) -> Iterator[tuple[str, str, Iterable[tuple[str | None, str | bytes]]]]:
        """What dump() holds, as stored and read as it is walked: ("records", collection, (key, record text) in
        insertion order) for each collection, then ("logs", name, (None, entry text) oldest first) for each log, each
        group's rows read before the next group is asked for. A text is JSON (perhaps after a leading space). dump()
        and the streamed export (dump_json) are both made from it."""
        ...

    def dump_json(self, head: dict, piece: int = 256 * 1024) -> Iterator[bytes]:
        """`{**head, **dump()}` as JSON bytes, in pieces of about `piece` bytes, read from the store as they are
        written: a whole-world export is never held whole."""
        ...

    def load(self, state: dict) -> None:
        """Replace the vendor data with a dump(): every vendor collection and log is emptied, then the state's
        records are put and its log entries appended, in the state's order (entries as they are: not numbered,
        not bounded). The sandbox's bookkeeping (internal `_` collections and logs, counters) stays as it was.
        In one transaction: all or nothing."""
        ...


class Store:
    """What every backend shares: the conveniences built on its find(), put() and transaction(). What each method
    guarantees is declared once, in StoreContract."""

    def dump(self) -> dict:
        collections, logs = {}, {}
        for kind, name, rows in self.dump_groups():
            if kind == "records":
                collections[name] = {key: decode(text) for key, text in rows}
            else:
                logs[name] = [decode(text) for _, text in rows]
        return {"collections": collections, "logs": logs}

    def dump_json(self, head: dict, piece: int = 256 * 1024) -> Iterator[bytes]:
        """The stored texts go out as dump_groups reads them: an export costs a piece of its bytes at a time, not the
        world as Python objects."""
        out = bytearray(wire(head)[:-1] + b"," if head else b"{")
        out += b'"collections":{'
        section, separator = "records", b""
        for kind, name, rows in self.dump_groups():
            if kind != section:
                out += b'},"logs":{'
                section, separator = kind, b""
            out += separator + wire(name) + (b":{" if kind == "records" else b":[")
            separator, comma = b",", b""
            for key, text in rows:
                out += comma
                comma = b","
                if key is not None:
                    out += wire(key) + b":"
                out += text.encode() if isinstance(text, str) else text
                if len(out) >= piece:
                    yield bytes(out)
                    out.clear()
            out += b"}" if kind == "records" else b"]"
        out += b"}}" if section == "logs" else b'},"logs":{}}'
        yield bytes(out)

    locks_before_lookups = False  # StoreContract says what it means; Redis's is true

    @contextmanager
    def lock_ahead(self) -> Iterator["Store"]:
        """Nothing to save but on Redis (StoreContract)."""
        yield self

    def being_replaced(self) -> None:
        """Never, but on Redis (StoreContract)."""

    def find_one(self, collection: str, **criteria) -> dict | None:
        found = self.find(collection, **criteria)
        return found[0] if found else None

    def all(self, collection: str) -> list[dict]:
        return self.find(collection)

    @contextmanager
    def snapshot(self) -> Iterator["Store"]:
        """Memory: no grouping to do (see StoreContract.snapshot)."""
        yield self

    def load(self, state: dict) -> None:
        with self.transaction():
            self._clear_vendor_data()
            for name, records in state["collections"].items():
                for key, record in records.items():
                    self.put(name, key, record)
            for name, entries in state["logs"].items():
                for entry in entries:
                    self.append_log(name, entry)
