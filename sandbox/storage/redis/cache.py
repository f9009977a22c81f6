"""What this process read from Redis lately, kept current by the backend's change feed, so that most reads of a
request cost no round trip.

Every commit (scripts.COMMIT) announces the records it changed on one feed for the whole backend. A process
catches up with the feed, receiving the changed records as they are now, at two moments: when a request's lookups
begin (one round trip for which world, whose credentials and the fault rules: SYNC), and when it takes a world's
lock (in the same round trip as the lock, or handed to it with the lock: redis_lock). From a catch-up to the end of that snapshot or transaction, reads
are served from here; everywhere else they go to Redis. So nothing is served that was changed before the catch-up:
a credential revoked, a rule deleted or a world dropped before a request's lookups began is seen by them, as a
SQLite read transaction sees every commit made before it began. A wiped or replaced server (a new epoch) or a
reader too far behind the feed forgets everything.
"""
from __future__ import annotations

import bisect
import secrets
import threading

from ..codec import decode, encode
from .client import RedisLink
from .scripts import SYNC

MOST_RECORDS = 50_000  # per world: past this, a world's cache is dropped and starts again
MOST_QUERIES = 5_000  # cached find() answers a world keeps before it starts afresh


class ReadCache:
    def __init__(self, link: RedisLink, feed_prefix: str):
        self.feed = feed_prefix
        self._link = link
        self._sync = link.client.register_script(SYNC)
        self._guard = threading.Lock()
        self._worlds: dict[str, _WorldCache] = {}  # world prefix -> what is cached of it
        self._epoch = ""
        self._seen = 0  # feed entries caught up with
        # World prefix -> "on" (a reset or an import is replacing it) or "cut" (one stopped part-way), as of the
        # last catch-up (scripts.SYNC)
        self.replacing: dict[str, str] = {}
        self._local = threading.local()  # per thread: snapshots and transactions open that read from here

    # -- catching up ---------------------------------------------------------------------------------------
    def catch_up(self) -> None:
        self.apply(self._link.run(self._sync, [], self.where()))

    def where(self) -> list:
        """What a catch-up asks (scripts.SYNC): the feed, the entries seen, the epoch known, a new epoch."""
        return [self.feed, self._seen, self._epoch, secrets.token_hex(8)]

    def apply(self, reply: list) -> None:
        """A catch-up's answer: from SYNC or ACQUIRE (bytes, None), or handed over with the lock (JSON: str, False)."""
        reply = [item.decode() if isinstance(item, bytes) else None if item is False else item for item in reply]
        epoch, count = reply[0], int(reply[1])
        with self._guard:
            self.replacing = dict(line.split("\t") for line in reply[2].split("\n") if line)
            if len(reply) == 4:  # 'reset': another server, or too far behind
                self._worlds.clear()
            elif epoch != self._epoch or count < self._seen:
                return  # another thread caught up further meanwhile: its copies are newer than these
            for i in range(3, len(reply) - 2, 3):
                world, collection, key = reply[i].split("\n", 2)
                if collection == "*":
                    self._worlds.pop(world, None)
                elif world in self._worlds:
                    self._worlds[world].change(collection, key, reply[i + 1], reply[i + 2])
            self._epoch, self._seen = epoch, count

    # -- where it is used ----------------------------------------------------------------------------------
    def active(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    def enter(self) -> None:
        self._local.depth = getattr(self._local, "depth", 0) + 1

    def leave(self) -> None:
        self._local.depth -= 1

    def version(self) -> tuple[str, int]:
        """Take it before reading Redis on a miss, and hand it to fill_*: a copy read while another thread caught up
        further might be older than what that thread applied, and is not kept."""
        return self._epoch, self._seen

    # -- reads -----------------------------------------------------------------------------------------------
    def record(self, world: str, collection: str, key: str) -> tuple[bool, bytes | None]:
        """(cached, its text or None when known to be absent)."""
        cached = self._worlds.get(world)
        if cached is None or (collection, key) not in cached.records:
            return False, None
        return True, cached.records[(collection, key)]

    def fill_record(self, world: str, collection: str, key: str, text, version) -> None:
        with self._guard:
            if version == self.version():
                self._world(world).records[(collection, key)] = text

    def query(self, world: str, collection: str, field: str | None, value: str | None) -> list | None:
        """The texts a find() by one indexed field (or by none: `field` None) gave, in order, or None. Read under the
        guard: another thread's catch-up changes the rows and records in place (a deleted record's text is None
        until its key leaves the rows)."""
        with self._guard:
            cached = self._worlds.get(world)
            rows = cached.queries.get(collection, {}).get((field, value)) if cached is not None else None
            if rows is None:
                return None
            return [cached.records[(collection, key)] for _, key in rows]

    def fill_query(self, world: str, collection: str, field: str | None, value: str | None, rows, version) -> None:
        """`rows`: (key, order score, text) of every record the query matches."""
        with self._guard:
            if version != self.version():
                return
            cached = self._world(world)
            cached.remember(collection, (field, value), sorted((score, key) for key, score, _ in rows))
            for key, _, text in rows:
                cached.records[(collection, key)] = text

    def _world(self, world: str) -> "_WorldCache":
        cached = self._worlds.get(world)
        # Bounded by what it holds: records, and queries (a lookup of a value nothing has still remembers its answer,
        # and every change is checked against every query).
        if cached is None or len(cached.records) > MOST_RECORDS or cached.query_count > MOST_QUERIES:
            cached = self._worlds[world] = _WorldCache()
        return cached


class _WorldCache:
    """A change costs the queries it touches, not every query cached: a client looking up thousands of values
    nothing has (each remembered, up to MOST_QUERIES) must not make every later write slower."""

    def __init__(self):
        self.records: dict[tuple[str, str], bytes | None] = {}
        # collection -> (indexed field or None for all, encoded value) -> sorted [(order score, key)]
        self.queries: dict[str, dict[tuple, list]] = {}
        self.fields: dict[str, set] = {}  # collection -> the fields its cached queries are by (None: all records)
        self.holding: dict[tuple[str, str], set[tuple]] = {}  # (collection, key) -> the queries whose rows hold it
        self.query_count = 0

    def remember(self, collection: str, query: tuple, rows: list) -> None:
        queries = self.queries.setdefault(collection, {})
        for _, key in queries.get(query, ()):
            self.holding.get((collection, key), set()).discard(query)
        if query not in queries:
            self.query_count += 1
        queries[query] = rows
        self.fields.setdefault(collection, set()).add(query[0])
        for _, key in rows:
            self.holding.setdefault((collection, key), set()).add(query)

    def change(self, collection: str, key: str, text: bytes | None, score: bytes | None) -> None:
        """A record changed elsewhere: its copy here, if one is kept, and the cached queries it leaves or joins. A
        record not kept here is kept only if a cached query now holds it, so the changes of others do not grow the
        cache (it grows by this process's reads, which _world() bounds)."""
        if (collection, key) in self.records:
            self.records[(collection, key)] = text
        queries = self.queries.get(collection)
        if not queries:
            return
        for query in self.holding.pop((collection, key), ()):
            rows = queries[query]
            rows[:] = [row for row in rows if row[1] != key]
        if text is None:
            return
        record = decode(text)
        held = set()
        for field in self.fields[collection]:
            # The index's own test: the field's value, encoded, equals the one asked for (RedisStore._index_key).
            query = (field, None if field is None else encode(record.get(field)))
            rows = queries.get(query)
            if rows is not None:
                bisect.insort(rows, (float(score), key))
                held.add(query)
        if held:
            self.holding[(collection, key)] = held
            self.records[(collection, key)] = text
