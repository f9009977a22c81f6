"""Connections shared out evenly among the worker processes.

gunicorn's workers all listen on one socket, and a burst of new connections (a client's pool of keep-alive
connections opening, or wrk's 16) wakes every worker: the first awake accepts all that are queued. So a pool often
landed on one worker and was served by one core. Seen with 2 workers and wrk's 16 connections, in 5 starts: 16/0 once,
10/6 once, 8/8 three times; with libuv's one-accept-at-a-time switch (UV_TCP_SINGLE_ACCEPT), in 20: 15/1 and 14/2 once
each, 11/5 twice. A worker served by one core halves the throughput.

Here each worker accepts one connection at a time, and only while no other live worker holds fewer connections
(`Ledger`, a count per worker in memory shared across gunicorn's fork); otherwise it leaves the connection queued for
them, and takes it anyway if nobody has within PATIENCE_SECONDS (another worker stuck, or just replaced).
`BalancedLoop` is asyncio's selector loop (uvicorn's "asyncio" loop: measured no slower than uvloop here) with that
one change, at the one place asyncio accepts.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os

SLOTS = 128  # worker processes a ledger can count (run.py defaults to one per core, at most 8)
RETRY_SECONDS = 0.001  # how soon a worker that left a connection to another looks again
PATIENCE_SECONDS = 0.02  # how long it leaves one before taking it itself


class Ledger:
    """How many connections each live worker holds. Made before the fork (the workers inherit the shared memory);
    each worker claims a slot as it starts (`join`), the slot of a worker that is gone if there is one, and writes
    only its own count. Reads of the others' counts are unlocked: a count a moment old is good enough to share out."""

    def __init__(self, slots: int = SLOTS):
        self._pids = multiprocessing.RawArray("i", slots)
        self._counts = multiprocessing.RawArray("i", slots)
        self._claiming = multiprocessing.Lock()
        self._slot: int | None = None

    def join(self) -> None:
        with self._claiming:
            free = next((i for i, pid in enumerate(self._pids) if pid == 0 or not _alive(pid)), None)
            if free is None:
                return  # more workers than slots: this one accepts as it comes, uncounted
            self._pids[free], self._counts[free], self._slot = os.getpid(), 0, free

    def opened(self) -> None:
        if self._slot is not None:
            self._counts[self._slot] += 1

    def closed(self) -> None:
        if self._slot is not None:
            self._counts[self._slot] -= 1

    def another_holds_fewer(self) -> bool:
        if self._slot is None:
            return False
        mine = self._counts[self._slot]
        return any(pid and i != self._slot and self._counts[i] < mine and _alive(pid)
                   for i, pid in enumerate(self._pids))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user took the number: not ours
        return False
    return True


LEDGER = Ledger()


class BalancedLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, accepting as the ledger says (the module's docstring)."""

    _left_since: float | None = None  # when this worker began leaving the queued connections to others

    def _accept_connection(self, protocol_factory, sock, sslcontext=None, server=None, backlog=100, *rest):
        if LEDGER.another_holds_fewer():
            now = self.time()
            self._left_since = self._left_since or now
            if now - self._left_since < PATIENCE_SECONDS:
                self._remove_reader(sock.fileno())
                self.call_later(RETRY_SECONDS, self._listen_again, protocol_factory, sock, sslcontext, server,
                                backlog, *rest)
                return
        self._left_since = None
        super()._accept_connection(protocol_factory, sock, sslcontext, server, 1, *rest)

    def _listen_again(self, protocol_factory, sock, sslcontext, server, backlog, *rest):
        if sock.fileno() == -1 or (server is not None and not server.is_serving()):
            return  # the server closed meanwhile (the worker is stopping)
        self._start_serving(protocol_factory, sock, sslcontext, server, backlog, *rest)
