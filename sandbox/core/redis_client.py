"""The Redis connection every store of a sandbox shares, and what an outage looks like from here.

redis-py's defaults suit a long-running job, not a request that should answer at once: ten retries with
exponential backoff held each request for seconds while Redis was down. Here a command is retried once, at once
(which reconnects a pooled connection that a restarted server closed), and otherwise fails fast; `Reachability`
turns the failure into `StoreUnavailable` (a 503 for the client), and logs one line when Redis goes away and
one when it is back, instead of a traceback per request.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .store import StoreUnavailable

log = logging.getLogger("sandbox")

CONNECT_TIMEOUT_SECONDS = 1
# Longer than any blocking wait for a world's lock (redis_lock.WAKE_SECONDS), so that wait never times out here.
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


class Reachability:
    """Whether this process last found Redis up; calls go through `reaching()`."""

    def __init__(self, url: str):
        self.url = shown(url)
        self.up = True

    @contextmanager
    def reaching(self):
        try:
            yield
        except UNREACHABLE as exc:
            if self.up:
                self.up = False
                log.warning("Redis at %s is unreachable (%s); answering 503 meanwhile", self.url, exc)
            raise StoreUnavailable("The sandbox's Redis store is unreachable; nothing was written. Retry shortly.",
                                   reachable=False) from None
        if not self.up:
            self.up = True
            log.warning("Redis at %s is back", self.url)
