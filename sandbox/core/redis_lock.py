"""A world's write lock on Redis: one key per world, owned by a unique token, kept alive while its holder runs.

The lock only keeps honest writers from wasting work on a check another is about to invalidate; correctness does
not rest on it. What a transaction writes is applied by one server-side script that first checks the lock still
holds the transaction's token (redis_scripts.COMMIT), so a holder that outlived its lock (paused, cut off, slow)
writes nothing. Hence the lock can be short-lived: `LOCK_SECONDS` after its holder stops renewing it (a crash, a
SIGSTOP, a lost connection), another instance takes it.

Waiting is not polling: a holder's commit pushes onto the world's wake list, and a waiter blocks on that list
(BLPOP), in short spells, because a lock that expires instead of being released wakes nobody.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time

from .store import StoreUnavailable

# How long a lock outlives the last renewal of its holder; its holder renews it every quarter of that.
LOCK_SECONDS = 2.0
# How long a transaction waits for the lock before the request is answered "retry later" (503). Longer than
# LOCK_SECONDS, so that a lock left by a crashed or paused holder delays others but never refuses them.
LOCK_WAIT_SECONDS = 3.0
WAKE_SECONDS = 0.05  # the longest spell a waiter blocks before trying again
_HOST = socket.gethostname()

# Extends the lock if (and only if) it still holds the caller's token.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class WorldLock:
    """The lock of one world (`<prefix>#lock`), with its wake list (`<prefix>#wake`)."""

    def __init__(self, link, prefix: str):
        self.key = prefix + "#lock"
        self.wake_key = prefix + "#wake"
        self._client = link.client
        self._link = link
        self._renew = link.client.register_script(RENEW)

    def acquire(self, attempt) -> str:
        """The lock, held under a new token (host:pid:random, so an operator can tell who holds it). `attempt(key,
        token, milliseconds)` tries once (SET NX PX, and whatever else should happen in the same round trip) and
        says whether it got the lock."""
        token = f"{_HOST}:{os.getpid()}:{secrets.token_hex(6)}"
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        with self._link.reaching():
            while not attempt(self.key, token, int(LOCK_SECONDS * 1000)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(f"Another request held this world's write lock for over {LOCK_WAIT_SECONDS:g} s; "
                                           "nothing was written. Retry shortly.", reachable=True)
                self._client.blpop([self.wake_key], timeout=min(left, WAKE_SECONDS))
        _keeper.hold(self, token)
        return token

    def forget(self, token: str) -> None:
        """The holder's commit (or rollback) released the lock, or tried to: stop renewing it."""
        _keeper.drop(token)

    def renew(self, token: str) -> None:
        self._renew(keys=[self.key], args=[token, int(LOCK_SECONDS * 1000)])


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
