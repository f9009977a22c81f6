"""A world's webhook subscriptions (POST /_sandbox/webhooks), kept in its store (`_webhooks`).

Targets are loopback by default: a web page, or a careless config, must not turn the sandbox into a request forger
against the network (SSRF). Any other host only when run.py was given it with --webhook-host."""
from __future__ import annotations

import base64
import ipaddress
import secrets
from urllib.parse import urlsplit

from ..core.clock import WorldClock

COLLECTION = "_webhooks"
LIMIT = 20  # subscriptions per world: each event is matched against them all


class BadSubscription(ValueError):
    """A subscription the sandbox will not make: says what to send."""


def target_problem(url: str, allowed_hosts: list[str]) -> str | None:
    """Why the sandbox will not POST to `url`, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"url must be an http:// or https:// URL with a host; {url!r} is not"
    host = parts.hostname
    if host == "localhost" or host in allowed_hosts:
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"The sandbox delivers only to loopback addresses (127.0.0.1, ::1, localhost) unless run.py is started "
            f"with --webhook-host {host}: a web page must not make it send requests into your network")


class Subscriptions:
    def __init__(self, store):
        self._store = store

    def add(self, url: str, events: list[str], secret: str | None, allowed_hosts) -> dict:
        """`events`: names as specs/sandbox.yaml lists them, or "*"; `secret`: whsec_ and base64 (both checked
        there)."""
        problem = target_problem(url, allowed_hosts)
        if problem:
            raise BadSubscription(problem)
        with self._store.transaction():
            if len(self._store.all(COLLECTION)) >= LIMIT:
                raise BadSubscription(f"This world already has {LIMIT} subscriptions, the most it keeps: delete one")
            number = self._store.next_value(COLLECTION)
            subscription = {"id": f"wh_{number}", "url": url, "events": sorted(set(events)),
                            "secret": secret or "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()}
            self._store.put(COLLECTION, subscription["id"], subscription)
            WorldClock(self._store).count_webhooks(len(self._store.all(COLLECTION)))
        return subscription

    def all(self) -> list[dict]:
        return self._store.all(COLLECTION)

    def get(self, subscription_id: str) -> dict | None:
        return self._store.get(COLLECTION, subscription_id)

    def remove(self, subscription_id: str) -> bool:
        with self._store.transaction():
            removed = self._store.delete(COLLECTION, subscription_id)
            WorldClock(self._store).count_webhooks(len(self._store.all(COLLECTION)))
        return removed

    def matching(self, event: str) -> list[dict]:
        return [s for s in self.all() if "*" in s["events"] or event in s["events"]]
