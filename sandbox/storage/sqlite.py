"""The store interface on SQLite: shared by every worker process of one machine, and kept across restarts when
given a file. What it guarantees is `store.StoreContract`'s; `transaction()` makes a check and the write that
depends on it atomic across threads and processes, and rolls back on an exception.

A file can hold many namespaces (the `world` column); the backend (backends.py) gives each workspace a file
of its own, so that one world's writes never queue behind another's: SQLite has one writer per file.
"""
from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator
from urllib.parse import quote

from filelock import FileLock

from .codec import decode, encode
from .store import Store, StoreUnavailable, WorldGone, WouldWait, holds_long, internal, waiting_refused

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, world TEXT NOT NULL, collection TEXT NOT NULL, key TEXT NOT NULL,
    data TEXT NOT NULL, UNIQUE (world, collection, key));
-- A log row's seq is its rowid, without AUTOINCREMENT: every append would also rewrite sqlite_sequence (one more page
-- per commit). Trimming removes the oldest rows only, so a seq is reused only after the newest row is cleared.
CREATE TABLE IF NOT EXISTS logs (seq INTEGER PRIMARY KEY, world TEXT NOT NULL, name TEXT NOT NULL,
    data TEXT NOT NULL);
-- Reads return records in insertion order; without this SQLite would walk the whole table in seq order.
CREATE INDEX IF NOT EXISTS records_in_order ON records(world, collection, seq);
CREATE INDEX IF NOT EXISTS logs_by_name ON logs(world, name, seq);
CREATE TABLE IF NOT EXISTS counters (world TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL,
    PRIMARY KEY (world, name));
"""
_UPSERT = ("INSERT INTO records(world, collection, key, data) VALUES (?, ?, ?, ?) "
           "ON CONFLICT(world, collection, key) DO UPDATE SET data=excluded.data")
# A bounded log is trimmed after every this many appends by one store, so it holds at most `keep` + this many
# rows per writing process.
_TRIM_EVERY = 64
_KEEP = "_keep:"  # + a bounded log's name: the counter holding its `keep`
_ROWS_PER_INSERT = 256  # log rows a write transaction holds before inserting them (3 x 256 of SQLite's 32,766 variables)
# What _prepare has created, per database file: None for the tables, (collection, field) for each index.
_PREPARED: dict[str, set] = {}


def temporary_database(owner) -> str:
    """A throwaway database file, removed with `owner` or when the process that made it exits (not when a forked
    worker does). A file rather than SQLite's shared-cache memory, whose table locks do not wait for each other."""
    handle, path = tempfile.mkstemp(prefix="sandbox-", suffix=".db")
    os.close(handle)
    weakref.finalize(owner, _remove, path, os.getpid())
    return path


def _remove(path: str, owner_pid: int) -> None:
    forget_database(path, remove=os.getpid() == owner_pid)


def forget_database(path: str, remove: bool = False) -> None:
    """This process's connections to a database file are dropped (each thread's closes when its state is collected);
    with `remove`, the file and its -wal, -shm, -lock and -long siblings are deleted too (another process still using
    the file keeps it, unlinked, until it lets go)."""
    _THREADS.pop(path, None)
    _PREPARED.pop(path, None)
    if not remove:
        return
    for suffix in ("", "-wal", "-shm", "-lock", "-long"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


# Per database file, per thread: one connection (with its transaction depth and lock-file handle), shared by the
# stores of every world in that file. One connection keeps its page cache across the worlds a request touches;
# a connection per store would find its cache stale after every write made through another.
_THREADS: dict[str, threading.local] = {}
_THREADS_LOCK = threading.Lock()
# Connections must not cross a fork: a forked worker opens its own. The parent's are kept (never closed in
# the child), because closing a descriptor would drop the parent's POSIX locks on the file.
_ORPHANS: list = []


def _thread_state(path: str) -> threading.local:
    state = _THREADS.get(path)
    if state is None:
        with _THREADS_LOCK:
            state = _THREADS.setdefault(path, threading.local())
    return state


def _after_fork() -> None:
    _ORPHANS.append(dict(_THREADS))
    _THREADS.clear()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_after_fork)

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
# Where the system has flock (Linux, macOS, the BSDs) a writer blocks in the kernel, which wakes the next one the
# moment the lock is free (measured: p99 32 ms where SQLite's sleeping busy handler gave 179 ms). Elsewhere
# (Windows) filelock's lock, which retries every millisecond. Tests switch this off to run the portable lock here.
FLOCK = fcntl is not None


class _LockFile:
    """One thread's handle on the writers' lock file, closed when the thread's connection goes.

    Beside it, the long-hold file: a whole-world operation (store.holding_long) holds it exclusively while it waits
    for and holds the writers' lock; a writer that must not wait (store.not_waiting: the server's event loop) holds it
    shared while it waits. So the loop waits in the kernel behind other writers' commits, and takes the lock the
    moment it is free, but never behind a reset or an import: it finds the long-hold file taken and gives up at once
    (WouldWait). Measured on the PATCH (2 workers, wrk 2x16, same run): 2,680-2,780 req/s polling the lock every
    100 us for at most 3 ms as before, 3,480-3,630 waiting in the kernel."""

    def __init__(self, path: str):
        self.fd = None
        self.long_held = False
        if FLOCK:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            self.long_fd = os.open(path.removesuffix("-lock") + "-long", os.O_RDWR | os.O_CREAT, 0o644)
        else:
            self.portable = FileLock(path, poll_interval=0.001, thread_local=False)

    def acquire(self) -> None:
        if self.fd is None:
            self.portable.acquire()
        elif holds_long():
            fcntl.flock(self.long_fd, fcntl.LOCK_EX)
            self.long_held = True
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        elif waiting_refused():
            self._acquire_unless_long()
        else:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def _acquire_unless_long(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        try:
            fcntl.flock(self.long_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WouldWait() from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self.long_fd, fcntl.LOCK_UN)

    def release(self) -> None:
        if self.fd is None:
            self.portable.release()
            return
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        if self.long_held:
            self.long_held = False
            fcntl.flock(self.long_fd, fcntl.LOCK_UN)

    def __del__(self):
        if self.fd is not None:
            os.close(self.fd)
            os.close(self.long_fd)


def _no_writes_in_snapshot(local) -> None:
    if local.depth < 0:
        raise RuntimeError("a write inside snapshot(): SQLite cannot turn a read transaction into a write "
                           "transaction once another process has written; write after the snapshot")


def _insert_appended(local) -> None:
    """Insert the log rows the open write transaction appended (at most _ROWS_PER_INSERT), in their order, before
    anything reads or changes the logs and before it commits (a rollback drops them). A statement per row costs
    about as much again as the insert itself."""
    rows, local.appended = local.appended, []
    if rows:
        local.connection.execute("INSERT INTO logs(world, name, data) VALUES " + ", ".join(["(?, ?, ?)"] * len(rows)),
                                 [value for row in rows for value in row])


def _index_name(collection: str, field: str) -> str:
    name = f"ix_{collection}_{field}"
    if not re.fullmatch(r"\w+", name):  # collection and field names come from the code, never from a request
        raise ValueError(f"cannot index {collection}.{field}")
    return name


class DatabaseGone(StoreUnavailable):
    """The sandbox's database file was deleted while it ran: nothing can be served from it until a restart."""

    def __init__(self, path: str):
        super().__init__(f"The sandbox's database file {path} was deleted while the sandbox ran; nothing was written. "
                         "Restart the sandbox (it seeds a new file) or put the file back.", reachable=False)


class SQLiteStore(Store):
    def __init__(self, path: str | None = None, indexes: dict[str, list[str]] | None = None, world: str = "default",
                 create: bool = True, workspace: bool = False):
        """`create`: make the file if it is missing. Every connection opened afterwards, by any thread of any
        process, needs the file to be there: a workspace's file (`workspace`) deleted with it is never brought back
        empty by a request that was under way (store.WorldGone); the sandbox's own file deleted under it is
        DatabaseGone."""
        self.path = path or temporary_database(self)
        self._world = world
        self._workspace = workspace
        if create and not os.path.exists(self.path):
            sqlite3.connect(self.path).close()  # an empty database: the tables come next (_prepare)
        # As bytes: a file name need not be UTF-8; absolute: a path starting // would read as a URI's authority.
        self._uri = "file://" + quote(os.fsencode(os.path.abspath(self.path))) + "?mode=rw"
        self._indexes = indexes or {}
        self._appends: dict[str, int] = {}  # per log, this store's appends since its last trim
        self._prepare()

    def _prepare(self) -> None:
        """Tables and indexes, once per file and set of indexes in this process. (executescript commits whatever
        the thread's shared connection has open, so it must not run while another store's transaction is.)"""
        wanted = {(collection, field) for collection, fields in self._indexes.items() for field in fields}
        done = _PREPARED.setdefault(self.path, set())
        if None in done and wanted <= done:
            return
        db = self._db
        if None not in done:
            db.executescript(_SCHEMA)
            done.add(None)
        for collection, field in sorted(wanted - done):
            # Partial: only the collection's own rows are indexed, so a write updates only its indexes.
            db.execute(f"CREATE INDEX IF NOT EXISTS {_index_name(collection, field)} ON records(world, "
                       f"json_extract(data, '$.{field}')) WHERE collection = '{collection}'")
            done.add((collection, field))

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(self._uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        except sqlite3.OperationalError:
            if os.path.exists(self.path):
                raise
            raise WorldGone(self._world) if self._workspace else DatabaseGone(self.path) from None
        connection.execute("PRAGMA journal_mode=WAL")
        # No fsync: a sandbox holds test data. The file survives the sandbox's own crash or restart (what --db is
        # for); only an operating-system crash could lose recent writes. Measured: a commit costs a third.
        connection.execute("PRAGMA synchronous=OFF")
        return connection

    @property
    def _local(self) -> threading.local:
        """This thread's connection, transaction depth and lock-file handle for the file, opened on first use."""
        state = _THREADS.get(self.path) or _thread_state(self.path)
        if not hasattr(state, "connection"):
            state.connection = self._connect()
            state.depth = 0
            state.appended = []  # log rows appended in the open write transaction, inserted together at its end
            # Writers queue on a lock file: the kernel wakes the next one the moment the lock is free, where
            # SQLite's own busy handler would sleep and retry (tens of ms under load between worker processes).
            state.lock_file = _LockFile(self.path + "-lock")
        return state

    @property
    def _db(self) -> sqlite3.Connection:
        return self._local.connection

    def _write(self, sql: str, args=()) -> sqlite3.Cursor:
        """One write statement; outside a transaction it commits by itself (SQLite makes a lone statement atomic)."""
        local = self._local
        if local.depth > 0:
            return local.connection.execute(sql, args)
        _no_writes_in_snapshot(local)
        with self._writer():
            return local.connection.execute(sql, args)

    @contextmanager
    def _writer(self):
        local = self._local
        local.lock_file.acquire()
        try:
            yield local.connection
        finally:
            local.lock_file.release()

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        row = self._db.execute("SELECT data FROM records WHERE world=? AND collection=? AND key=?",
                               (self._world, collection, key)).fetchone()
        return decode(row[0]) if row else None

    def find(self, collection: str, **criteria) -> list[dict]:
        # INDEXED BY: with the collection bound as a parameter, SQLite would otherwise re-plan the statement on
        # every run to see whether a partial index applies (five times slower for a small read).
        sql = "SELECT data FROM records INDEXED BY records_in_order WHERE world=? AND collection=?"
        args = [self._world, collection]
        indexed = [f for f in criteria if f in self._indexes.get(collection, ()) and isinstance(
            criteria[f], (str, int, float)) and not isinstance(criteria[f], bool)]
        if indexed:
            # The collection as a literal, so that SQLite can tell the partial index applies.
            sql = (f"SELECT data FROM records INDEXED BY {_index_name(collection, indexed[0])} WHERE world=? AND "
                   f"collection = '{collection}' AND json_extract(data, '$.{indexed[0]}')=?")
            args = [self._world, criteria[indexed[0]]]
        records = (decode(row[0]) for row in self._db.execute(sql + " ORDER BY seq", args))
        return [r for r in records if all(r.get(f) == v for f, v in criteria.items())]

    def collections(self) -> dict[str, int]:
        rows = self._db.execute("SELECT collection, COUNT(*) FROM records WHERE world=? AND collection NOT LIKE '\\_%' "
                                "ESCAPE '\\' GROUP BY collection ORDER BY MIN(seq)", (self._world,))
        return dict(rows)

    def read_log(self, name: str, last: int | None = None, number: str | None = None) -> list[dict]:
        """An entry's number is its row's seq, set in the `number` field only when asked."""
        _insert_appended(self._local)
        if last is None:
            rows = self._db.execute("SELECT seq, data FROM logs WHERE world=? AND name=? ORDER BY seq",
                                    (self._world, name)).fetchall()
        else:
            rows = self._db.execute("SELECT seq, data FROM logs WHERE world=? AND name=? ORDER BY seq DESC LIMIT ?",
                                    (self._world, name, last)).fetchall()[::-1]
        if number is None:
            return [decode(data) for _, data in rows]
        return [{number: seq, **decode(data)} for seq, data in rows]

    @contextmanager
    def snapshot(self) -> Iterator["SQLiteStore"]:
        """One read transaction for the reads inside, in every world of the file (they share the thread's
        connection). Each read outside a transaction is a transaction of its own, which must check the write-ahead
        log afresh and, if another process has written since (nearly always, under load), re-read the pages it
        needs and sometimes wait for a writer's commit to finish. Measured on the PATCH under load, with the
        lookups each request makes grouped: p99 22-25 ms -> 11 ms."""
        local = self._local
        if local.depth:
            yield self
            return
        local.connection.execute("BEGIN")
        local.depth = -1
        try:
            yield self
        finally:
            local.depth = 0
            local.connection.execute("COMMIT")

    # -- writes ------------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["SQLiteStore"]:
        """BEGIN IMMEDIATE takes the write lock at once, so no other thread or process writes in between."""
        local = self._local
        _no_writes_in_snapshot(local)
        if local.depth:
            local.depth += 1
            try:
                yield self
            finally:
                local.depth -= 1
            return
        with self._writer() as db:
            db.execute("BEGIN IMMEDIATE")
            local.depth = 1
            try:
                yield self
                _insert_appended(local)
            except BaseException:
                local.appended.clear()
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
            finally:
                local.depth = 0

    def put(self, collection: str, key: str, record: dict) -> None:
        self._write(_UPSERT, (self._world, collection, key, encode(record)))

    def put_all(self, collection: str, key_field: str, records) -> None:
        with self.transaction():
            self._db.executemany(_UPSERT, ((self._world, collection, str(r[key_field]), encode(r)) for r in records))

    def delete(self, collection: str, key: str) -> bool:
        return self._write("DELETE FROM records WHERE world=? AND collection=? AND key=?",
                           (self._world, collection, key)).rowcount > 0

    def append_log(self, name: str, entry: dict, keep: int | None = None, number: str | None = None) -> None:
        """A bounded log is trimmed every _TRIM_EVERY appends; its bound is kept with it (the counter
        `_keep:<name>`, written at a store's first append and at each trim), so that dump_groups, in any process,
        gives its newest `keep` entries and not the rows still waiting for a trim. An entry's number is its row's:
        unique and increasing, at no extra cost (read_log puts it back when asked), so `number` is not stored."""
        local = self._local
        if local.depth > 0:  # a write transaction: one INSERT for its appends (a PATCH makes three), 256 at most
            local.appended.append((self._world, name, encode(entry)))
            if len(local.appended) >= _ROWS_PER_INSERT:
                _insert_appended(local)
        else:
            self._write("INSERT INTO logs(world, name, data) VALUES (?, ?, ?)", (self._world, name, encode(entry)))
        first = name not in self._appends
        self._appends[name] = self._appends.get(name, 0) + 1
        if keep is not None and (first or self._appends[name] >= _TRIM_EVERY):
            self._write("INSERT INTO counters(world, name, value) VALUES (?, ?, ?) ON CONFLICT(world, name) "
                        "DO UPDATE SET value=excluded.value", (self._world, _KEEP + name, keep))
        if keep is not None and self._appends[name] >= _TRIM_EVERY:
            self._appends[name] = 0
            _insert_appended(local)
            self._write("DELETE FROM logs WHERE world=? AND name=? AND seq <= (SELECT seq FROM logs WHERE "
                        "world=? AND name=? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                        (self._world, name, self._world, name, keep))

    def clear_log(self, name: str) -> None:
        _insert_appended(self._local)
        self._write("DELETE FROM logs WHERE world=? AND name=?", (self._world, name))

    def next_value(self, name: str) -> int:
        return self._write("INSERT INTO counters(world, name, value) VALUES (?, ?, 1) ON CONFLICT(world, name) "
                           "DO UPDATE SET value=value+1 RETURNING value", (self._world, name)).fetchone()[0]

    def forget_value(self, name: str) -> None:
        self._write("DELETE FROM counters WHERE world=? AND name=?", (self._world, name))

    def clear(self) -> None:
        with self.transaction():
            _insert_appended(self._local)
            for table in ("records", "logs", "counters"):
                self._db.execute(f"DELETE FROM {table} WHERE world=?", (self._world,))

    # -- export and import -----------------------------------------------------------------------------------------
    def dump_groups(self):
        _insert_appended(self._local)
        with self.snapshot():  # every group read from the same moment
            db, world = self._db, self._world
            for table, column, index in (("records", "collection", "records_in_order"), ("logs", "name", "logs_by_name")):
                names = [name for (name,) in db.execute(
                    f"SELECT {column} FROM {table} WHERE world=? GROUP BY {column} ORDER BY MIN(seq)", (world,))
                    if not internal(name)]
                for name in names:
                    if table == "records":
                        rows = db.execute(f"SELECT key, data FROM records INDEXED BY {index} "
                                          "WHERE world=? AND collection=? ORDER BY seq", (world, name))
                    else:
                        rows = ((None, data) for (data,) in db.execute(
                            f"SELECT data FROM logs INDEXED BY {index} WHERE world=? AND name=? AND seq > ? "
                            "ORDER BY seq", (world, name, self._trimmed_up_to(name))))
                    yield table, name, rows

    def _trimmed_up_to(self, name: str) -> int:
        """The newest row of a bounded log beyond its `keep` newest (a trim would delete it and those before), or 0:
        a dump gives the log as read_log(last=keep) reads it, the same on every backend."""
        keep = self._db.execute("SELECT value FROM counters WHERE world=? AND name=?",
                                (self._world, _KEEP + name)).fetchone()
        if keep is None:
            return 0
        beyond = self._db.execute("SELECT seq FROM logs INDEXED BY logs_by_name WHERE world=? AND name=? "
                                  "ORDER BY seq DESC LIMIT 1 OFFSET ?", (self._world, name, keep[0])).fetchone()
        return beyond[0] if beyond else 0

    def _clear_vendor_data(self) -> None:
        _insert_appended(self._local)
        for table, column in (("records", "collection"), ("logs", "name")):
            self._db.execute(f"DELETE FROM {table} WHERE world=? AND {column} NOT LIKE '\\_%' ESCAPE '\\'",
                             (self._world,))
