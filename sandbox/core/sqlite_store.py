"""The store interface on SQLite: shared by every worker process of one machine, and kept across restarts when
given a file. Same contract as MemoryStore (records are JSON documents in named collections; logs append-only;
`transaction()` makes a check and the write that depends on it atomic, across processes too).
"""
from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL,
    UNIQUE (collection, key));
CREATE TABLE IF NOT EXISTS logs (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, data TEXT NOT NULL);
"""


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass


class SQLiteStore:
    def __init__(self, path: str | None = None, indexes: dict[str, list[str]] | None = None):
        if path is None:
            # A throwaway file rather than SQLite's shared-cache memory, whose table locks do not wait for each other.
            handle, path = tempfile.mkstemp(prefix="sandbox-", suffix=".db")
            os.close(handle)
            weakref.finalize(self, _remove, path)
        self._uri = f"file:{path}"
        self._local = threading.local()
        self._keeper = self._connect()
        self._indexes = indexes or {}
        with self._keeper:
            self._keeper.executescript(_SCHEMA)
            for collection, fields in self._indexes.items():
                for field in fields:
                    name = f"ix_{collection}_{field}".replace("-", "_")
                    self._keeper.execute(f"CREATE INDEX IF NOT EXISTS {name} ON records(collection, "
                                         f"json_extract(data, '$.{field}'))")

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self._uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    @property
    def _db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
            self._local.depth = 0
        return connection

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        row = self._db.execute("SELECT data FROM records WHERE collection=? AND key=?", (collection, key)).fetchone()
        return json.loads(row[0]) if row else None

    def find(self, collection: str, **criteria) -> list[dict]:
        sql, args = "SELECT data FROM records WHERE collection=?", [collection]
        indexed = [f for f in criteria if f in self._indexes.get(collection, ()) and isinstance(
            criteria[f], (str, int, float)) and not isinstance(criteria[f], bool)]
        if indexed:
            sql += f" AND json_extract(data, '$.{indexed[0]}')=?"
            args.append(criteria[indexed[0]])
        records = (json.loads(row[0]) for row in self._db.execute(sql + " ORDER BY seq", args))
        return [r for r in records if all(r.get(f) == v for f, v in criteria.items())]

    def find_one(self, collection: str, **criteria) -> dict | None:
        found = self.find(collection, **criteria)
        return found[0] if found else None

    def all(self, collection: str) -> list[dict]:
        return self.find(collection)

    def collections(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT collection, COUNT(*) FROM records GROUP BY collection ORDER BY MIN(seq)"))

    def read_log(self, name: str) -> list[dict]:
        return [json.loads(r[0]) for r in self._db.execute("SELECT data FROM logs WHERE name=? ORDER BY seq", (name,))]

    # -- writes ------------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["SQLiteStore"]:
        """BEGIN IMMEDIATE takes the write lock at once, so no other thread or process writes in between."""
        db = self._db
        if self._local.depth:
            self._local.depth += 1
            try:
                yield self
            finally:
                self._local.depth -= 1
            return
        db.execute("BEGIN IMMEDIATE")
        self._local.depth = 1
        try:
            yield self
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")
        finally:
            self._local.depth = 0

    def put(self, collection: str, key: str, record: dict) -> None:
        self._db.execute("INSERT INTO records(collection, key, data) VALUES (?, ?, ?) "
                         "ON CONFLICT(collection, key) DO UPDATE SET data=excluded.data",
                         (collection, key, json.dumps(record)))

    def put_all(self, collection: str, key_field: str, records) -> None:
        with self.transaction():
            for record in records:
                self.put(collection, str(record[key_field]), record)

    def delete(self, collection: str, key: str) -> bool:
        return self._db.execute("DELETE FROM records WHERE collection=? AND key=?", (collection, key)).rowcount > 0

    def append_log(self, name: str, entry: dict) -> None:
        self._db.execute("INSERT INTO logs(name, data) VALUES (?, ?)", (name, json.dumps(entry)))

    def clear(self) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM records")
            self._db.execute("DELETE FROM logs")

    # -- snapshots ---------------------------------------------------------------------------------------------
    def dump(self) -> dict:
        collections: dict[str, dict] = {}
        for collection, key, data in self._db.execute("SELECT collection, key, data FROM records ORDER BY seq"):
            collections.setdefault(collection, {})[key] = json.loads(data)
        logs: dict[str, list] = {}
        for name, data in self._db.execute("SELECT name, data FROM logs ORDER BY seq"):
            logs.setdefault(name, []).append(json.loads(data))
        return {"collections": collections, "logs": logs}

    def load(self, snapshot: dict) -> None:
        with self.transaction():
            self.clear()
            for name, records in snapshot["collections"].items():
                for key, record in records.items():
                    self.put(name, key, record)
            for name, entries in snapshot["logs"].items():
                for entry in entries:
                    self.append_log(name, entry)
