"""Connections shared out evenly among the worker processes.

gunicorn's workers all listen on one socket, and a burst of new connections (a client's pool of keep-alive
connections opening, or wrk's 16) wakes every worker: the first awake accepts all that are queued. So a pool often
landed on one worker and was served by one core. Seen with 2 workers and wrk's 16 connections, in 5 starts: 16/0 once,
10/6 once, 8/8 three times; with libuv's one-accept-at-a-time switch (UV_TCP_SINGLE_ACCEPT), in 20: 15/1 and 14/2 once
each, 11/5 twice. A worker served by one core halves the throughput.

Here the event loop's own accept (libuv's, under uvloop, which takes every connection queued) is not used: the
listening sockets are watched by `BalancedServer`, which accepts one connection at a time, and only while no other
live worker holds fewer connections (`Ledger`, a count per worker in memory shared across gunicorn's fork); otherwise
it leaves the connection queued for them, and takes it anyway if nobody has within PATIENCE_SECONDS (another worker
stuck, or just replaced). Each connection accepted is handed to the loop as uvicorn's own accept would
(`connect_accepted_socket`), with uvicorn's protocol. (asyncio's own loop has a place to do this at its accept, but
it needs the interpreter far more than uvloop does: with 24 threads reseeding a workspace, the default world's PATCH
p99 measured 8.8 ms on asyncio's loop against 2.5 on uvloop, one run each of bench/isolation.py --resetters 24.)
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket

from uvicorn import Server

SLOTS = 128  # worker processes a ledger can count (run.py defaults to one per core, at most 8)
RETRY_SECONDS = 0.001  # how soon a worker that left a connection to another looks again
PATIENCE_SECONDS = 0.02  # how long it leaves one before taking it itself
ACCEPT_RETRY_SECONDS = 1.0  # after a failed accept (out of file descriptors), as asyncio waits
log = logging.getLogger("sandbox")


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
    except (ProcessLookupError, PermissionError):  # gone, or the number taken by another user's process
        return False
    return True


LEDGER = Ledger()


class BalancedServer(Server):
    """uvicorn's server, accepting as the ledger says (the module's docstring); the rest is uvicorn's."""

    _listening: list = []
    _left_since: float | None = None  # when this worker began leaving the queued connections to others

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=[])  # all of uvicorn's start but its listeners
        self._listening = list(sockets or [])
        for sock in self._listening:
            sock.setblocking(False)
            self._watch(sock)

    async def shutdown(self, sockets=None) -> None:
        loop = asyncio.get_running_loop()
        for sock in self._listening:
            loop.remove_reader(sock.fileno())
        self._listening = []
        await super().shutdown(sockets=sockets)

    def _watch(self, sock) -> None:
        if sock in self._listening and sock.fileno() != -1:
            asyncio.get_running_loop().add_reader(sock.fileno(), self._accept, sock)

    def _later(self, sock, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(sock.fileno())
        loop.call_later(seconds, self._watch, sock)

    def _accept(self, sock) -> None:
        loop = asyncio.get_running_loop()
        if LEDGER.another_holds_fewer():
            now = loop.time()
            self._left_since = self._left_since or now
            if now - self._left_since < PATIENCE_SECONDS:
                return self._later(sock, RETRY_SECONDS)
        self._left_since = None
        try:
            connection, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker took it
        except OSError as failed:  # out of file descriptors, say: the connection waits in the queue meanwhile
            log.warning("accepting a connection failed (%s); trying again in %g s", failed, ACCEPT_RETRY_SECONDS)
            return self._later(sock, ACCEPT_RETRY_SECONDS)
        connection.setblocking(False)
        if connection.family in (socket.AF_INET, socket.AF_INET6):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop.create_task(self._serve_connection(loop, connection))

    async def _serve_connection(self, loop, connection) -> None:
        try:
            await loop.connect_accepted_socket(lambda: self.config.http_protocol_class(
                config=self.config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop),
                connection)
        except OSError:  # the client left before the connection was set up
            connection.close()
