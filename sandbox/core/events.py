"""The events a vendor emits (pub/sub messages, socket events), recorded for `GET /_sandbox/events`."""
from __future__ import annotations

from .clock import now_iso

EVENT_LOG = "events"


def record_event(store, name: str, payload: dict) -> None:
    store.append_log(EVENT_LOG, {"name": name, "time": now_iso(), "payload": payload})


def read_events(store) -> list[dict]:
    return store.read_log(EVENT_LOG)
