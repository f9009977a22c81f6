"""The transactional outbox: a delivery is written in the same commit as the change whose event it carries
(events.record_event calls `enqueue` inside the operation's transaction), so a change is never made without its
deliveries, nor a delivery sent for a change rolled back; it survives any worker's, or the whole server's, kill -9
(--db, Redis). The sender (sender.py) claims due deliveries with a lease, sends them, and writes each attempt back.

A delivery (collection `_deliveries`, key its message id):
    {id, subscription, url, event, body (the JSON text sent), state: pending | delivered | failed,
     attempts: [{at (wall clock), worldAt, status or null, error or null, durationMs}], nextAttemptAt (world ms or
     null), lease: {owner, until (wall ms)} or null, createdAt (world)}

Retries, on the world's clock (advancing it makes due retries go now): 1 s, 5 s, 30 s, 2 min, 10 min after the
failed attempts, then the delivery is given up (failed). Bounds: at most MAX_KEPT deliveries per world (the oldest
finished ones go first; a world whose MAX_KEPT are all still pending drops the new one, logged), MAX_ATTEMPTS
attempts kept per delivery (redeliveries included), bodies bounded by the events' own size (a few KB)."""
from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import datetime

from ..core.clock import epoch_ms, from_millis, iso_millis
from .subscriptions import Subscriptions

COLLECTION = "_deliveries"
# The stores (by id) this process wrote a delivery to lately: the sender polls their worlds, and only theirs, until
# nothing is pending there (sender.py); the rest it finds in its slow sweep.
ACTIVE: set[int] = set()
# Whether the world of the request being served has webhook subscriptions, as its lookups read it (with its clock,
# core/clock.py): False spares each event the read of the subscriptions. None outside a request: read them.
SUBSCRIBED: ContextVar[bool | None] = ContextVar("webhook_subscriptions", default=None)
BACKOFF_SECONDS = (1, 5, 30, 120, 600)
MAX_KEPT = 1000
MAX_ATTEMPTS = 20
log = logging.getLogger("sandbox")


def enqueue(store, event: dict, now: datetime) -> None:
    """A delivery to every subscription of the world that wants `event`, due now; in the caller's transaction."""
    if SUBSCRIBED.get() is False:
        return
    subscriptions = Subscriptions(store).matching(event["name"])
    for subscription in subscriptions:
        number = store.next_value(COLLECTION)
        delivery_id = f"msg_{number:08d}"
        body = json.dumps({"type": event["name"], "id": delivery_id, "timestamp": event["time"],
                           "data": event["payload"]}, separators=(",", ":"), ensure_ascii=False)
        if not _room(store):
            log.warning("webhook delivery %s to %s dropped: %d deliveries of this world are all still pending",
                        delivery_id, subscription["url"], MAX_KEPT)
            continue
        store.put(COLLECTION, delivery_id, {
            "id": delivery_id, "subscription": subscription["id"], "url": subscription["url"],
            "event": event["name"], "body": body, "state": "pending", "attempts": [],
            "nextAttemptAt": epoch_ms(now), "lease": None, "createdAt": iso_millis(now)})
        ACTIVE.add(id(store))


def _room(store) -> bool:
    deliveries = store.all(COLLECTION)
    if len(deliveries) < MAX_KEPT:
        return True
    finished = [d for d in deliveries if d["state"] != "pending"]
    if not finished:
        return False
    store.delete(COLLECTION, finished[0]["id"])
    return True


def next_attempt(delivery: dict, now_ms: int) -> int | None:
    """When a delivery whose last attempt failed is tried again (world ms), or None: given up."""
    failures = sum(1 for a in delivery["attempts"] if a["status"] is None or not 200 <= a["status"] < 300)
    if failures > len(BACKOFF_SECONDS):
        return None
    return now_ms + 1000 * BACKOFF_SECONDS[failures - 1]


def view(delivery: dict) -> dict:
    """As GET /_sandbox/webhooks/deliveries shows it."""
    due = delivery["nextAttemptAt"]
    return {"id": delivery["id"], "subscription": delivery["subscription"], "url": delivery["url"],
            "event": delivery["event"], "state": delivery["state"], "attempts": delivery["attempts"],
            "nextAttemptAt": None if due is None or delivery["state"] != "pending" else iso_millis(from_millis(due)),
            "createdAt": delivery["createdAt"]}
