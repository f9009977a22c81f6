"""A world's write lock on Redis: one key per world, owned by a unique token, kept alive while its holder runs.

The lock only keeps honest writers from wasting work on a check another is about to invalidate; correctness does
not rest on it. What a transaction writes is applied by one server-side script that first checks the lock still
holds the transaction's token (scripts.COMMIT), so a holder that outlived its lock (paused, cut off, slow)
writes nothing. Hence the lock can be short-lived: `LOCK_SECONDS` after its holder stops renewing it (a crash, a
SIGSTOP, a lost connection), another instance takes it.

Waiting is not polling: a waiter joins the world's queue and blocks on a wake list of its own (BLPOP); the holder's
commit hands the lock straight to the first waiter, with what it needs to catch up (scripts.COMMIT), so the
waiter's blocking call returns holding the lock. It blocks in short spells, trying again in between, because a lock
that expires instead of being released wakes nobody.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time

import orjson

from .scripts import ACQUIRE, GIVE_UP
from ..store import StoreUnavailable, WorldBeingReplaced

# How long a lock outlives the last renewal of its holder; its holder renews it every quarter of that.
LOCK_SECONDS = 2.0
# How long a transaction waits for the lock before the request is answered "retry later" (503). Longer than
# LOCK_SECONDS, so that a lock left by a crashed or paused holder delays others but never refuses them.
LOCK_WAIT_SECONDS = 3.0
WAKE_SECONDS = 0.05  # the longest spell a waiter blocks before trying again
# A waiter counts as waiting for this long after its last try; a holder hands the lock only to one that does. A
# waiter gone without leaving the queue (its process stopped, or Redis went away under it) is thus passed over,
# instead of being handed a lock that would lie idle until it expires.
WAITER_SECONDS = 4 * WAKE_SECONDS
MILLISECONDS = int(LOCK_SECONDS * 1000)
ABANDONED_KEPT = 16  # tokens of transactions that ended while Redis was away, freed at the next try (see abandon())
_HOST = socket.gethostname()

# Extends the lock if (and only if) it still holds the caller's token.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class WorldLock:
    """The lock of one world (`<prefix>#lock`), with its waiters (`#queue`, `#waiting`) and their wake lists
    (`#wake:<token>`)."""

    def __init__(self, link, prefix: str, cache):
        self.prefix = prefix
        self.key = prefix + "#lock"
        self._link = link
        self._cache = cache  # caught up as the lock is taken (redis_cache)
        self._acquire = link.client.register_script(ACQUIRE)
        self._give_up = link.client.register_script(GIVE_UP)
        self._renew = link.client.register_script(RENEW)
        self._abandoned: list[str] = []  # see abandon()
        self._guard = threading.Lock()

    def acquire(self) -> str:
        """The lock, held under a new token (host:pid:random, so an operator can tell who holds it), with the read
        cache caught up."""
        token = f"{_HOST}:{os.getpid()}:{secrets.token_hex(6)}"
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        try:
            with self._link.reaching():
                self._take(token, deadline)
        except StoreUnavailable as error:
            if not error.reachable:  # the lock may have been taken as Redis went away, the answer lost
                self.abandon(token)
            raise
        _keeper.hold(self, token)
        return token

    def abandon(self, token: str) -> None:
        """A transaction of this process that ended while Redis was away, perhaps holding the lock: the next try to
        take it frees it (scripts.ACQUIRE), instead of every writer waiting out the lock's life."""
        with self._guard:
            self._abandoned = [*self._abandoned[-(ABANDONED_KEPT - 1):], token]

    def _take(self, token: str, deadline: float) -> None:
        while True:
            left = deadline - time.monotonic()
            abandoned = self._abandoned
            taken = self._link.run(self._acquire, [self.prefix],
                                   [token, MILLISECONDS, *self._cache.where(),
                                    max(1, int(min(left, WAITER_SECONDS) * 1000)), *abandoned])
            if abandoned:  # answered: none of them holds the lock now, nor can again (tokens are never reused)
                with self._guard:
                    self._abandoned = [t for t in self._abandoned if t not in abandoned]
            if taken == b"replacing":  # held by a reset or an import: seconds, for a large world
                self._link.run(self._give_up, [self.prefix], [token, *self.handover_args()])  # if queued before
                raise WorldBeingReplaced(cut=False)
            if taken is not None:
                self._cache.apply(taken)
                return
            if left <= 0:
                self._link.run(self._give_up, [self.prefix], [token, *self.handover_args()])
                raise StoreUnavailable(f"Another request held this world's write lock for over {LOCK_WAIT_SECONDS:g} s; "
                                       "nothing was written. Retry shortly.", reachable=True)
            handed = self._link.call("BLPOP", f"{self.prefix}#wake:{token}", max(0.001, min(left, WAKE_SECONDS)))
            if handed is not None:
                self._cache.apply(orjson.loads(handed[1]))
                return

    def handover_args(self) -> list:
        """What a release needs to hand the lock over: the change feed, the lock's life, an epoch (redis_cache)."""
        return [self._cache.feed, MILLISECONDS, self._cache.where()[3]]

    def forget(self, token: str) -> None:
        """The holder's commit (or rollback) released the lock, or tried to: stop renewing it."""
        _keeper.drop(token)

    def renew(self, token: str) -> None:
        self._renew(keys=[self.key], args=[token, MILLISECONDS])


class _Keeper:
    """One thread per process that renews the locks the process holds, every LOCK_SECONDS / 4. A holder that
    runs long (seeding a large world, importing a big state) keeps its lock; one whose process stops loses it."""

    def __init__(self):
        self._held: dict[str, WorldLock] = {}
        self._guard = threading.Lock()
        self._pid = None  # the process whose thread this is: a forked worker starts its own

    def hold(self, lock: WorldLock, token: str) -> None:
        with self._guard:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._held.clear()
                threading.Thread(target=self._run, name="redis-lock-keeper", daemon=True).start()
            self._held[token] = lock

    def drop(self, token: str) -> None:
        with self._guard:
            self._held.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(LOCK_SECONDS / 4)
            with self._guard:
                held = list(self._held.items())
            for token, lock in held:
                try:
                    lock.renew(token)
                except Exception:  # noqa: BLE001 - Redis away: the holder's own calls fail and say so
                    pass


_keeper = _Keeper()
if hasattr(os, "register_at_fork"):  # a worker's copy (gunicorn forks workers from the preloaded app) must not inherit a guard held by its thread
    os.register_at_fork(after_in_child=lambda: setattr(_keeper, "_guard", threading.Lock()))
