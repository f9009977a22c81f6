"""The Redis connection every store of a sandbox shares, and what an outage looks like from here.

redis-py's defaults suit a long-running job, not a request that should answer at once: ten retries with
exponential backoff held each request for seconds while Redis was down. Here a command is retried once, at once
(which reconnects a pooled connection that a restarted server closed), and otherwise fails fast; `RedisLink`
turns the failure into `StoreUnavailable` (a 503 for the client), and logs one line when Redis goes away and
one when it is back, instead of a traceback per request.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

import hiredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..store import StoreUnavailable

log = logging.getLogger("sandbox")

CONNECT_TIMEOUT_SECONDS = 1
# Longer than any blocking wait for a world's lock (lock.WAKE_SECONDS), so that wait never times out here.
READ_TIMEOUT_SECONDS = 2
# What counts as Redis being away: no connection, no answer in time, still loading its data after a restart
# (a ConnectionError), or a replica that no longer takes writes after a failover.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError)


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                socket_timeout=READ_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 1))


def shown(url: str) -> str:
    """The URL as logs and banners print it: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


class RedisLink:
    """How the stores of one backend talk to Redis: `reaching()` around every call, and `run()` for the store's
    scripts. Remembers whether Redis was last found up: by this process (`up`, read on every call), and by the
    instance (`_logged_up`, in memory shared with the worker processes forked after it is made), so that an outage is
    logged once by the instance, not once per worker."""

    def __init__(self, client: redis.Redis, url: str):
        self.client = client
        self.url = shown(url)
        self.up = True
        self._logged_up = multiprocessing.Value("b", 1)
        self._local = threading.local()  # per thread: (process id, its own connection for the scripts)

    @contextmanager
    def reaching(self):
        try:
            yield
        except UNREACHABLE as exc:
            if self.up:
                self.up = False
                self._log_change(False, "Redis at %s is unreachable (%s); answering 503 meanwhile", self.url, exc)
            raise StoreUnavailable("The sandbox's Redis store is unreachable; nothing was written. Retry shortly.",
                                   reachable=False) from None
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSY"):
                raise
            # Another client's script runs past lua-time-limit: Redis refuses every command until it ends.
            raise StoreUnavailable("The sandbox's Redis server is busy running another client's long script; "
                                   "nothing was written. Retry shortly.", reachable=True) from None
        if not self.up:
            self.up = True
            self._log_change(True, "Redis at %s is back", self.url)

    def _log_change(self, up: bool, *message) -> None:
        with self._logged_up.get_lock():
            if bool(self._logged_up.value) != up:
                self._logged_up.value = up
                log.warning(*message)

    def run(self, script, keys: list, args: list):
        """One of the store's scripts (redis_scripts), on this thread's own connection. redis-py's generic command
        path (a pool checkout with its health check, the retry wrapper, metrics) costs more CPU than the call itself,
        and a request makes three. The failure handling is `connect()`'s: once more at once on a broken connection
        (each script may be sent twice: see redis_scripts), and the script sent in full to a server that lost it."""
        return self._twice(self._script, script, keys, args)

    def call(self, *command):
        """A command on the same connection, the same way (the store sends BLPOP so, which is safe to send twice)."""
        return self._twice(self._command, command)

    def _twice(self, send, *what):
        connection = self._connection()
        try:
            return send(connection, *what)
        except (redis.ConnectionError, redis.TimeoutError):
            connection.disconnect()
            return send(connection, *what)

    def _connection(self):
        held = getattr(self._local, "held", None)
        if held is None or held[0] != os.getpid():  # a forked worker must not share its parent's socket
            pool = self.client.connection_pool
            held = self._local.held = (os.getpid(), pool.connection_class(**pool.connection_kwargs))
        return held[1]

    @classmethod
    def _script(cls, connection, script, keys: list, args: list):
        try:
            return cls._command(connection, ("EVALSHA", script.sha, len(keys), *keys, *args))
        except redis.exceptions.NoScriptError:
            return cls._command(connection, ("EVAL", script.script, len(keys), *keys, *args))

    @staticmethod
    def _command(connection, command: tuple):
        # hiredis packs a command at a third of the cost of redis-py's own packer, which converts every argument first
        connection.send_packed_command([hiredis.pack_command(command)], check_health=False)
        return connection.read_response()
