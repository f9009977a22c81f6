"""The built-in receiver: POST /_sandbox/inbox/{name} records what it receives, so a subscription to the sandbox's
own address needs no server of the user's. Per world (the one X-Sandbox-Workspace names; the default world for the
sandbox's own deliveries, which send no such header), at most MAX_NAMES names, each a bounded log: the newest KEPT
deliveries, each body cut at BODY_LIMIT characters and its headers at HEADER_COUNT (the request's own limits bound
each header): at most 20 x 50 x 16 KB of bodies per world, whoever posts. A reset empties it, like the journal."""
from __future__ import annotations

from datetime import datetime

from ..core.clock import iso_millis

KEPT = 50
BODY_LIMIT = 16 * 1024
HEADER_COUNT = 32
MAX_NAMES = 20
NAMES = ("_inbox", "names")  # the names in use, in the order they were first used


class InboxFull(Exception):
    """A new name past MAX_NAMES: nothing recorded."""


def receive(store, name: str, request, now: datetime) -> None:
    """Records the delivery; InboxFull when `name` would be one name too many (anyone may post here: the inbox
    needs no admin token, so its size must not depend on who posts)."""
    body = request.get_data(as_text=True)
    with store.transaction():
        names = (store.get(*NAMES) or {}).get("names", [])
        if name not in names:
            if len(names) >= MAX_NAMES:
                raise InboxFull(f"This world's inbox already has {MAX_NAMES} names, the most it keeps: post to one "
                                f"of them ({', '.join(names)}), or POST /_sandbox/reset to empty it")
            store.put(*NAMES, {"names": names + [name]})
        store.append_log(f"_inbox:{name}", {
            "receivedAt": iso_millis(now), "headers": dict(list(request.headers.items())[:HEADER_COUNT]),
            "body": body[:BODY_LIMIT], **({"truncated": True} if len(body) > BODY_LIMIT else {})}, keep=KEPT)


def read(store, name: str) -> list[dict]:
    return store.read_log(f"_inbox:{name}", last=KEPT)
