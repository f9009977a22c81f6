"""The store interface on Redis: shared by every sandbox instance, on any host, that uses the same server and
key prefix. What it guarantees is `store.StoreContract`'s.

Layout under the world's prefix:
    rec:<collection>                hash   key -> record (JSON)
    ord:<collection>                zset   key, scored by first write (insertion order)
    idx:<collection>:<field>:<v>    set    keys whose record has that field value (declared indexes only)
    colls / logs                    zset   collection and log names, in order of first use
    log:<name>                      list   entries (JSON)
    cnt                             hash   counters
`transaction()` holds a Redis lock (SET NX with expiry, released only by its owner), re-entrant per thread, so a
read-check-write cannot interleave with another instance's. Like the memory store it does not roll back: every
caller checks first and writes last.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from .codec import decode, encode
from .store import Store, internal

# A crashed holder's lock expires after this many seconds; a publisher-timeout fault never runs under the lock.
LOCK_SECONDS = 30

_PUT = """
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 'NX', seq, ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', seq, ARGV[3])
"""


class RedisStore(Store):
    def __init__(self, client, prefix: str, indexes: dict[str, list[str]] | None = None):
        self._redis = client
        self._p = prefix + ":"
        self._indexes = indexes or {}
        # Outside the prefix, so that clear() (which runs under the lock) never deletes it.
        self._lock = client.lock(f"{prefix}#lock", timeout=LOCK_SECONDS, sleep=0.001, blocking_timeout=LOCK_SECONDS,
                                 thread_local=True)
        self._depth = threading.local()
        self._put_script = client.register_script(_PUT)

    # -- reads -------------------------------------------------------------------------------------------------
    def get(self, collection: str, key: str) -> dict | None:
        text = self._redis.hget(self._p + "rec:" + collection, key)
        return decode(text) if text is not None else None

    def find(self, collection: str, **criteria) -> list[dict]:
        indexed = [f for f in criteria if f in self._indexes.get(collection, ())]
        if indexed:
            keys = list(self._redis.smembers(self._index_key(collection, indexed[0], criteria[indexed[0]])))
            if not keys:
                return []
            pipe = self._redis.pipeline(transaction=False)
            pipe.hmget(self._p + "rec:" + collection, keys)
            pipe.zmscore(self._p + "ord:" + collection, keys)
            texts, scores = pipe.execute()
            ordered = sorted((s if s is not None else float("inf"), t) for t, s in zip(texts, scores) if t is not None)
            records = (decode(t) for _, t in ordered)
        else:
            records = (decode(t) for _, t in self._ordered(collection))
        return [r for r in records if all(r.get(f) == v for f, v in criteria.items())]

    def _ordered(self, collection: str) -> list[tuple[bytes, bytes]]:
        """(key, record text) of every record, in insertion order."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._p + "rec:" + collection)
        pipe.zrange(self._p + "ord:" + collection, 0, -1)
        texts, order = pipe.execute()
        return [(k, texts[k]) for k in order if k in texts]

    def collections(self) -> dict[str, int]:
        names = [n.decode() for n in self._redis.zrange(self._p + "colls", 0, -1)]
        names = [n for n in names if not internal(n)]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hlen(self._p + "rec:" + name)
        return {name: count for name, count in zip(names, pipe.execute()) if count}

    def read_log(self, name: str, last: int | None = None, number: str | None = None) -> list[dict]:
        """`number` is ignored: append_log wrote it into the entry."""
        return [decode(t) for t in self._redis.lrange(self._p + "log:" + name, -last if last else 0, -1)]

    # -- writes ------------------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator["RedisStore"]:
        depth = getattr(self._depth, "value", 0)
        if depth == 0:
            self._lock.acquire()
        self._depth.value = depth + 1
        try:
            yield self
        finally:
            self._depth.value = depth
            if depth == 0:
                self._lock.release()

    def put(self, collection: str, key: str, record: dict) -> None:
        self._put_many(collection, [(key, record)])

    def put_all(self, collection: str, key_field: str, records) -> None:
        with self.transaction():
            self._put_many(collection, [(str(r[key_field]), r) for r in records])

    def _put_many(self, collection: str, items: list[tuple[str, dict]]) -> None:
        """Write several records in one round trip (seeding writes thousands)."""
        if not items:
            return
        fields = self._indexes.get(collection, ())
        olds = self._redis.hmget(self._p + "rec:" + collection, [k for k, _ in items]) if fields else [None] * len(items)
        pipe = self._redis.pipeline(transaction=True)
        keys = [self._p + "rec:" + collection, self._p + "ord:" + collection, self._p + "colls", self._p + "seq"]
        for (key, record), old in zip(items, olds):
            self._put_script(keys=keys, args=[key, encode(record), collection], client=pipe)
            old = decode(old) if old is not None else None
            for field in fields:
                if old is not None:
                    pipe.srem(self._index_key(collection, field, old.get(field)), key)
                pipe.sadd(self._index_key(collection, field, record.get(field)), key)
        pipe.execute()

    def delete(self, collection: str, key: str) -> bool:
        fields = self._indexes.get(collection, ())
        old = self.get(collection, key) if fields else None
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._p + "rec:" + collection, key)
        pipe.zrem(self._p + "ord:" + collection, key)
        for field in fields:
            if old is not None:
                pipe.srem(self._index_key(collection, field, old.get(field)), key)
        return pipe.execute()[0] > 0

    def append_log(self, name: str, entry: dict, keep: int | None = None, number: str | None = None) -> None:
        if number:
            entry = {**entry, number: self.next_value(f"_log:{name}")}
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(self._p + "log:" + name, encode(entry))
        pipe.zadd(self._p + "logs", {name: 0}, nx=True)
        if keep is not None:
            pipe.ltrim(self._p + "log:" + name, -keep, -1)
        pipe.execute()

    def clear_log(self, name: str) -> None:
        self._redis.delete(self._p + "log:" + name)

    def next_value(self, name: str) -> int:
        return self._redis.hincrby(self._p + "cnt", name, 1)

    def clear(self) -> None:
        with self.transaction():
            self._unlink(self._redis.scan_iter(match=self._p + "*", count=1000))

    def _unlink(self, keys) -> None:
        batch = []
        for key in keys:
            batch.append(key)
            if len(batch) == 500:
                self._redis.unlink(*batch)
                batch = []
        if batch:
            self._redis.unlink(*batch)

    # -- snapshots ---------------------------------------------------------------------------------------------
    def dump(self) -> dict:
        collections = {name: {k.decode(): decode(t) for k, t in self._ordered(name)} for name in self.collections()}
        logs = {}
        for name in (n.decode() for n in self._redis.zrange(self._p + "logs", 0, -1)):
            entries = self.read_log(name)
            if not internal(name) and entries:
                logs[name] = entries
        return {"collections": collections, "logs": logs}

    def _clear_vendor_data(self) -> None:
        for name in (n.decode() for n in self._redis.zrange(self._p + "colls", 0, -1)):
            if not internal(name):
                self._unlink([self._p + "rec:" + name, self._p + "ord:" + name,
                              *self._redis.scan_iter(match=f"{self._p}idx:{name}:*", count=1000)])
        for name in (n.decode() for n in self._redis.zrange(self._p + "logs", 0, -1)):
            if not internal(name):
                self._redis.delete(self._p + "log:" + name)

    def _index_key(self, collection: str, field: str, value) -> str:
        return f"{self._p}idx:{collection}:{field}:{encode(value)}"
