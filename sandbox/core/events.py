"""The events a vendor emits (pub/sub messages, socket events), recorded for `GET /_sandbox/events`."""
from __future__ import annotations

from datetime import datetime

from .clock import iso_millis
from ..webhooks import outbox

EVENT_LOG = "events"
# Events kept per world, the newest; each is a few hundred bytes (its fields are bounded by the specs' schemas), so
# a world's events stay under a few MB. The state import accepts as many (specs/sandbox.yaml, WorldLogs).
EVENTS_KEPT = 10_000


def record_event(store, name: str, payload: dict, now: datetime) -> None:
    """`now`: the world's time of the request that emits it (core/clock.py). Its webhook deliveries are written with
    it, in the caller's transaction (webhooks/outbox.py)."""
    event = {"name": name, "time": iso_millis(now), "payload": payload}
    store.append_log(EVENT_LOG, event, keep=EVENTS_KEPT)
    outbox.enqueue(store, event, now)


def read_events(store) -> list[dict]:
    return store.read_log(EVENT_LOG, last=EVENTS_KEPT)
