"""The store interface on Redis: shared by every sandbox instance, on any host, that uses the same server and
key prefix. What it guarantees is `store.StoreContract`'s.

Layout under the world's prefix:
    rec:<collection>                hash   key -> record (JSON)
    ord:<collection>                zset   key, scored by first write (insertion order)
    idx:<collection>:<field>:<v>    set    keys whose record has that field value (declared indexes only)
    ixk:<collection>                hash   key -> the index sets the record is in, to leave them when it changes
    colls / logs                    zset   collection and log names, in order of first use
    log:<name>                      list   entries (JSON)
    cnt                             hash   counters
    seq                             string the insertion-order counter
and beside it (outside the prefix, so that clear() leaves them): `#lock`, `#queue`, `#waiting`, `#wake:<token>`
(redis_lock), `#done:<id>` (commits recently applied, scripts.COMMIT); under the backend's own prefix, the
change feed `#feed`, `#feedn`, `#epoch` (redis_cache).

Why transactions are built this way (the alternatives were a lock alone, which trusts the lock's lifetime, and
WATCH/MULTI/EXEC with the operation retried, which would mean rerunning every vendor's domain code from the
pipeline): `transaction()` takes the world's lock (redis_lock) so that honest writers queue instead of wasting
work, holds every write in the process (redis_pending), and at the end sends them in one script that applies them
only if the lock still holds this transaction's token. A holder that lost its lock (paused, cut off) writes
nothing and says so (StoreUnavailable), an exception drops the held writes (rollback), and the writes of a
transaction are never seen half-applied. Reads inside see the transaction's own writes.

Round trips, the cost that matters here (each is a wait on the network plus redis-py's own overhead): reads inside a
transaction or a snapshot are served by the process's read cache (redis_cache), brought up to date in the round
trip that takes the lock or opens the snapshot. A PATCH costs two: the lock with its catch-up (taken ahead of the
request's lookups, which read the cache it brought up to date: `lock_ahead`), and the commit.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ..codec import decode, encode
from .cache import ReadCache
from .client import RedisLink
from .lock import LOCK_SECONDS, MILLISECONDS, WorldLock
from .pending import PendingWrites
from .scripts import CLEAR_STEP, COMMIT, FIND_INDEXED, MARK_REPLACING, STEP_ARGUMENTS
from ..store import Store, StoreUnavailable, WorldBeingReplaced, internal

_SETTLE_PAUSE_SECONDS = 0.05
_FIELD_NAME = re.compile(r"\w+")  # a numbered log's field is spliced into JSON text by the commit script


class RedisStore(Store):
    locks_before_lookups = True  # the lock's round trip catches the cache up: the lookups need none of their own

    def __init__(self, client, prefix: str, indexes: dict[str, list[str]] | None = None,
                 link: RedisLink | None = None, cache: ReadCache | None = None):
        """`link` and `cache` are shared by the stores of one backend; a store made alone has its own, its change
        feed under its own prefix."""
        self._redis = client
        self._base = prefix
        self._p = prefix + ":"
        self._pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._p)  # the prefix as a SCAN MATCH pattern
        self._indexes = indexes or {}
        self._link = link or RedisLink(client, repr(client))
        self._cache = cache or ReadCache(self._link, prefix)
        self._lock = WorldLock(self._link, prefix, self._cache)
        self._local = threading.local()  # per thread: the open transaction's PendingWrites
        self._commit = client.register_script(COMMIT)
        self._find_indexed = client.register_script(FIND_INDEXED)
        self._mark_replacing = client.register_script(MARK_REPLACING)
        self._clear_step = client.register_script(CLEAR_STEP)

    def _pending(self) -> PendingWrites | None:
        return getattr(self._local, "pending", None)

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        pending = self._pending()
        if pending is not None:
            known, text = pending.record(collection, key)
            if known:
                return decode(text) if text is not None else None
        cached = self._cache.active()
        if cached:
            known, text = self._cache.record(self._base, collection, key)
            if known:
                return decode(text) if text is not None else None
            version = self._cache.version()
        with self._link.reaching():
            text = self._redis.hget(self._p + "rec:" + collection, key)
        if cached:
            self._cache.fill_record(self._base, collection, key, text, version)
        return decode(text) if text is not None else None

    def find(self, collection: str, **criteria) -> list[dict]:
        pending = self._pending()
        indexed = [f for f in criteria if f in self._indexes.get(collection, ())]
        if pending is not None and pending.touches(collection):
            texts = [text for _, text in self._pairs(collection)]
        else:
            texts = self._query(collection, indexed[0] if indexed else None, criteria)
        records = (decode(t) for t in texts)
        return [r for r in records if all(r.get(f) == v for f, v in criteria.items())]

    def _query(self, collection: str, field: str | None, criteria: dict) -> list[bytes]:
        """The texts of the records whose `field` (indexed) has the value asked for, or of all records (`field`
        None), in insertion order: from the cache when it holds the answer."""
        value = encode(criteria[field]) if field else None
        cached = self._cache.active()
        if cached:
            texts = self._cache.query(self._base, collection, field, value)
            if texts is not None:
                return texts
            version = self._cache.version()
        rows = self._stored_rows(collection, field, value)
        if cached:
            self._cache.fill_query(self._base, collection, field, value, rows, version)
        return [text for _, _, text in rows]

    def _stored_rows(self, collection: str, field: str | None, value: str | None) -> list[tuple[str, float, bytes]]:
        """(key, order score, text) of the matching records as Redis holds them, in insertion order."""
        with self._link.reaching():
            if field is not None:
                flat = self._link.run(self._find_indexed, [f"{self._p}idx:{collection}:{field}:{value}",
                                                             self._p + "rec:" + collection, self._p + "ord:" + collection], [])
                return [(flat[i].decode(), float(flat[i + 1]), flat[i + 2]) for i in range(0, len(flat), 3)]
            pipe = self._redis.pipeline(transaction=False)
            pipe.hgetall(self._p + "rec:" + collection)
            pipe.zrange(self._p + "ord:" + collection, 0, -1, withscores=True)
            texts, order = pipe.execute()
        return [(k.decode(), score, texts[k]) for k, score in order if k in texts]

    def _pairs(self, collection: str) -> list[tuple[str, str]]:
        """(key, record text) of every record, in insertion order, as this thread's transaction sees them."""
        pending = self._pending()
        if pending is None:
            return self._stored_pairs(collection)
        return pending.overlay(collection, [] if pending.hides(collection) else self._stored_pairs(collection))

    def _stored_pairs(self, collection: str) -> list[tuple[str, bytes]]:
        return [(key, text) for key, _, text in self._stored_rows(collection, None, None)]

    def collections(self) -> dict[str, int]:
        pending = self._pending()
        with self._link.reaching():
            names = [n.decode() for n in self._redis.zrange(self._p + "colls", 0, -1)]
            if pending is None or not pending.changes_collections():
                pipe = self._redis.pipeline(transaction=False)
                for name in names:
                    pipe.hlen(self._p + "rec:" + name)
                counts = zip(names, pipe.execute())
            else:
                names = [n for n in names if not pending.hides(n)] + [n for n in pending.records if n not in names]
                counts = ((name, len(self._pairs(name))) for name in names)
        return {name: count for name, count in counts if count and not internal(name)}

    def read_log(self, name: str, last: int | None = None, number: str | None = None) -> list[dict]:
        """`number` is ignored: the commit wrote it into the entry."""
        return [decode(t) for t in self._log_texts(name, last)]

    def _log_texts(self, name: str, last: int | None = None) -> list:
        """The log's entry texts (the newest `last`), as this thread's transaction sees them."""
        pending = self._pending()
        if pending is not None and pending.touches_log(name):
            stored = [] if pending.hides_log(name) else self._stored_log(name, None)
            texts = pending.log_overlay(name, stored)
            return texts[-last:] if last else texts
        return self._stored_log(name, last)

    def _stored_log(self, name: str, last: int | None) -> list[bytes]:
        with self._link.reaching():
            return self._redis.lrange(self._p + "log:" + name, -last if last else 0, -1)

    # -- writes ------------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["RedisStore"]:
        if self._pending() is not None:  # nested: part of the outer one
            yield self
            return
        token = self._taken_ahead() or self._lock.acquire()  # and the cache catches up, in the same round trip
        self._local.pending, self._local.token = PendingWrites(), token
        self._cache.enter()
        try:
            yield self
        except BaseException:
            self._local.pending = None
            self._release(token)
            raise
        else:
            pending, self._local.pending = self._local.pending, None
            if pending.replaces:  # a reset or an import: as large as a world
                self._apply_in_steps(pending, token)
            else:
                self._apply(pending.instructions(), token)
        finally:
            self._cache.leave()
            self._local.pending = None
            self._lock.forget(token)

    @contextmanager
    def lock_ahead(self) -> Iterator["RedisStore"]:
        """The lock for the next transaction, taken now: its round trip catches the read cache up, so the reads
        before that transaction (a request's lookups) need no round trip of their own (StoreContract)."""
        if self._pending() is not None or getattr(self._local, "ahead", None) is not None:
            yield self
            return
        self._local.ahead = self._lock.acquire()
        self._cache.enter()
        try:
            yield self
        finally:
            self._cache.leave()
            unused = self._taken_ahead()
            if unused is not None:  # no transaction came: give the lock back
                try:
                    self._release(unused)
                finally:
                    self._lock.forget(unused)

    def _taken_ahead(self) -> str | None:
        token, self._local.ahead = getattr(self._local, "ahead", None), None
        return token

    def being_replaced(self) -> None:
        """As of this thread's last catch-up; a transaction of this thread that is replacing the world itself reads
        on."""
        state = self._cache.replacing.get(self._base)
        pending = self._pending()
        if state is not None and not (pending is not None and pending.replaces):
            raise WorldBeingReplaced(cut=state == "cut")

    @contextmanager
    def snapshot(self) -> Iterator["RedisStore"]:
        """Reads inside are served from the read cache, caught up with the change feed once, as it begins (a
        snapshot or transaction already open on this thread has done that)."""
        if not self._cache.active():
            with self._link.reaching():
                self._cache.catch_up()
        self._cache.enter()
        try:
            yield self
        finally:
            self._cache.leave()

    def put(self, collection: str, key: str, record: dict) -> None:
        self._write(lambda pending: self._put(pending, collection, key, record))

    def put_all(self, collection: str, key_field: str, records) -> None:
        def put_each(pending: PendingWrites) -> None:
            for record in records:
                self._put(pending, collection, str(record[key_field]), record)

        self._write(put_each)

    def _put(self, pending: PendingWrites, collection: str, key: str, record: dict) -> None:
        index_keys = [self._index_key(collection, field, record.get(field)) for field in self._indexes.get(collection, ())]
        pending.put(collection, key, encode(record), index_keys)

    def delete(self, collection: str, key: str) -> bool:
        pending = self._pending()
        if pending is None:
            return self._write(lambda single: single.delete(collection, key)) > 0
        existed = self.get(collection, key) is not None
        pending.delete(collection, key)
        return existed

    def append_log(self, name: str, entry: dict, keep: int | None = None, number: str | None = None) -> None:
        if number is not None and not _FIELD_NAME.fullmatch(number):
            raise ValueError(f"a log's number field must be a plain name, not {number!r}")
        self._write(lambda pending: pending.append(name, encode(entry), keep, number))

    def clear_log(self, name: str) -> None:
        self._write(lambda pending: pending.clear_log(name))

    def next_value(self, name: str) -> int:
        pending = self._pending()
        if pending is None:
            with self._link.reaching():
                return self._redis.hincrby(self._p + "cnt", name, 1)
        stored = None
        if not pending.counting(name) and not pending.cleared:
            with self._link.reaching():
                stored = int(self._redis.hget(self._p + "cnt", name) or 0)
        return pending.next_value(name, stored)

    def forget_value(self, name: str) -> None:
        if self._pending() is not None:
            raise RuntimeError("forget_value inside a transaction (StoreContract)")
        with self._link.reaching():
            self._redis.hdel(self._p + "cnt", name)

    def clear(self) -> None:
        with self.transaction():
            self._pending().clear(self._pattern)
            self._mark()

    def _clear_vendor_data(self) -> None:
        self._pending().clear_vendor_data(self._pattern)  # load() calls it inside its transaction
        self._mark()

    def _mark(self) -> None:
        """The world is to be replaced: from now on, until this transaction's commit ends or it rolls back, others
        are told so (being_replaced, a 503) instead of waiting for the lock or reading a world half-written."""
        with self._link.reaching():
            self._link.run(self._mark_replacing, [], [self._base, self._local.token, self._cache.feed])
    def _write(self, add) -> int:
        """Inside a transaction, hold the write; outside, apply it at once, alone. The records deleted (outside)."""
        pending = self._pending()
        if pending is not None:
            add(pending)
            return 0
        single = PendingWrites()
        add(single)
        return self._apply(single.instructions(), "")

    def _apply(self, instructions: list, token: str, mode: str = "all", commit_id: str | None = None) -> int:
        """Send the commit script; the number of records it deleted. When the connection breaks during the call, the
        outcome is unknown: the script is sent again (it knows a commit it already applied) until Redis answers,
        for as long as the lock would live; after that, the answer says the write may have been applied."""
        args = [self._base, token, commit_id or token or secrets.token_hex(8), *self._lock.handover_args(), mode,
                *instructions]
        status, deleted = self._again_while_unknown(self._commit, args, writes=bool(instructions))
        if status == b"lost":
            raise StoreUnavailable(f"This request lost the world's write lock before it could commit (it was held up "
                                   f"for over {LOCK_SECONDS:g} s); nothing was written. Retry.", reachable=True)
        if status == b"conflict":
            raise StoreUnavailable("A counter this request used was advanced outside any transaction meanwhile; "
                                   "nothing was written. Retry.", reachable=True)
        return int(deleted)

    def _again_while_unknown(self, script, args: list, writes: bool):
        """Run a script; sent again while its connection breaks, for as long as the lock lives (each script knows a
        call it already applied). `writes`: whether it may change the world (then a lost answer may hide a write)."""
        deadline = time.monotonic() + LOCK_SECONDS
        while True:
            try:
                with self._link.reaching():
                    return self._link.run(script, [], args)
            except StoreUnavailable as away:
                if time.monotonic() > deadline:
                    if writes:  # sent, perhaps applied, its answer lost: "nothing was written" may be untrue
                        raise StoreUnavailable("The sandbox's Redis store stopped answering while this request's "
                                               "write was being committed: it may have been applied. Read the state "
                                               "before retrying.", reachable=False) from None
                    raise away
                time.sleep(_SETTLE_PAUSE_SECONDS)

    def _apply_in_steps(self, pending: PendingWrites, token: str) -> None:
        """A commit that replaces the world, in steps each short enough not to hold up Redis's other clients
        (scripts.STEP_ARGUMENTS; any other transaction writes a few records, in one script): the world, marked as
        being replaced since its clear (_mark), is answered "being replaced" to everyone else until the last step,
        which unmarks it, announces it whole and gives the lock back. A step refused or cut off after an earlier one was applied leaves the world
        incomplete, and marked so (a 503 saying to reset it) until a reset or an import replaces it."""
        applied = False
        try:
            for number, (kind, arguments) in enumerate(pending.steps(STEP_ARGUMENTS)):
                if kind in ("clear", "clearvendor"):
                    cursor = "start"
                    while cursor != "0":
                        cursor = self._again_while_unknown(self._clear_step, [
                            self._base, token, MILLISECONDS, kind, arguments, cursor], writes=True)
                        if cursor == b"lost":
                            raise StoreUnavailable(f"This request lost the world's write lock while it replaced the "
                                                   f"world (held up for over {LOCK_SECONDS:g} s).", reachable=True)
                        cursor = cursor.decode()
                        applied = True
                else:
                    self._apply(arguments, token, kind, token if kind == "last" else f"{token}:{number}")
                    applied = True
        except StoreUnavailable as stopped:
            if not applied:  # the world is as it was: unmarked, and the lock given back
                self._release(token)
                raise
            raise StoreUnavailable("Redis stopped answering, or this request lost the world's write lock, part-way "
                                   "through replacing the world: it is incomplete. POST /_sandbox/reset, or import "
                                   "again, to replace it.", stopped.reachable) from None

    def _release(self, token: str) -> None:
        """After an exception inside: commit nothing, which releases the lock. If Redis stays away, the lock is
        freed by this process's next try to take it (WorldLock.abandon), or expires by itself."""
        try:
            self._apply([], token)
        except StoreUnavailable:
            self._lock.abandon(token)

    # -- export and import -----------------------------------------------------------------------------------------
    def dump_groups(self):
        for name in self.collections():  # a collection at a time: the world is never held whole
            yield "records", name, self._pairs(name)
        pending = self._pending()
        with self._link.reaching():
            names = [n.decode() for n in self._redis.zrange(self._p + "logs", 0, -1)]
        names += [n for n in (pending.log_names() if pending is not None else []) if n not in names]
        for name in names:
            entries = self._log_texts(name) if not internal(name) else []
            if entries:
                yield "logs", name, [(None, text) for text in entries]

    def _index_key(self, collection: str, field: str, value) -> str:
        return f"{self._p}idx:{collection}:{field}:{encode(value)}"
