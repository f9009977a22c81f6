"""The built-in receiver: POST /_sandbox/inbox/{name} records what it receives, so a subscription to the sandbox's
own address needs no server of the user's. Per world (the one X-Sandbox-Workspace names; the default world for the
sandbox's own deliveries, which send no such header), a bounded log per name: the newest KEPT deliveries, each body
cut at BODY_LIMIT characters and its headers at HEADER_COUNT. A reset empties it, like the journal."""
from __future__ import annotations

from datetime import datetime

from ..core.clock import iso_millis

KEPT = 100
BODY_LIMIT = 64 * 1024
HEADER_COUNT = 32


def receive(store, name: str, request, now: datetime) -> None:
    body = request.get_data(as_text=True)
    store.append_log(f"_inbox:{name}", {
        "receivedAt": iso_millis(now), "headers": dict(list(request.headers.items())[:HEADER_COUNT]),
        "body": body[:BODY_LIMIT], **({"truncated": True} if len(body) > BODY_LIMIT else {})}, keep=KEPT)


def read(store, name: str) -> list[dict]:
    return store.read_log(f"_inbox:{name}", last=KEPT)
