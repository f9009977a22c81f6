"""The request journal: what each vendor request sent and got, bounded by count and by bytes, secrets masked.

Kept in the world's store (log `_journal`), so every worker process of a sandbox writes to and reads the same one.
An entry holds at most: the path and query up to PATH_LIMIT characters, HEADER_COUNT request headers and as many
response headers of up to HEADER_LIMIT characters each, the request and response bodies up to BODY_LIMIT characters
each; what was cut is said by
`truncated: true`; and the records a write changed, before and after, up to core/changes.py's CHANGES_LIMIT characters
in all. So an entry is under 48 KB, and a journal of the default 1,000 entries under 48 MB a world.
"""
from __future__ import annotations

from .masking import Secrets

import secrets

BODY_LIMIT = 16_384  # characters kept of each request and response body
PATH_LIMIT = 2_048
HEADER_COUNT = 64
HEADER_LIMIT = 1_024
LOG = "_journal"
# The entries whose answer never reached the client (the client had closed its connection when the answer was sent:
# a client timeout during a held answer), by the reference each entry carries (`_ref`, not shown); as bounded as the
# journal, whose entries they mark.
UNDELIVERED = "_undelivered"


class Journal:
    def __init__(self, store, size: int):
        self._store = store
        self._size = size

    def record(self, entry: dict) -> str:
        """The entry's reference, for `undelivered`."""
        reference = secrets.token_hex(8)
        self._store.append_log(LOG, {**entry, "_ref": reference}, keep=self._size, number="id")
        return reference

    def undelivered(self, reference: str) -> None:
        """The answer of the entry `record` returned this reference for never reached its client: the entry says
        `delivered: false`, its status the one the client would have received."""
        self._store.append_log(UNDELIVERED, {"ref": reference}, keep=self._size)

    def entries(self, vendor=None, operation=None, status=None, since=None) -> list[dict]:
        undelivered = {e["ref"] for e in self._store.read_log(UNDELIVERED, last=self._size)}
        found = []
        for e in self._store.read_log(LOG, last=self._size, number="id"):
            if (vendor is None or e["vendor"] == vendor) and (operation is None or e["operation"] == operation) \
                    and (status is None or e["status"] == status) and (since is None or e["time"] >= since):
                if e.pop("_ref", None) in undelivered:
                    e["delivered"] = False
                found.append(e)
        return found

    def clear(self) -> None:
        self._store.clear_log(LOG)
        self._store.clear_log(UNDELIVERED)


def sent_part(request, body: bytes, secrets: Secrets) -> dict:
    """What the client sent, as an entry keeps it: method, path and query, headers, body, masked and bounded, and
    whether any of it was cut. `body` is what was read of the request's body (the journal never reads a body
    itself: one refused for its size stays unread). Made apart from the entry so that a write can make it before
    taking its world's lock."""
    cut = []
    path = _kept(secrets.query_of(request.full_path.rstrip("?")), PATH_LIMIT, cut)
    sent_headers = list(request.headers.items())  # read once: werkzeug walks the whole environ each time
    headers = secrets.headers_of((k, _kept(v, HEADER_LIMIT, cut)) for k, v in sent_headers[:HEADER_COUNT])
    if len(sent_headers) > HEADER_COUNT:
        cut.append(True)
    sent = _kept(secrets.body_of(_text(body)), BODY_LIMIT, cut)
    return {"method": request.method, "path": path, "headers": headers, "body": sent, "cut": bool(cut)}


def journal_entry(sent: dict, response, vendor: str, operation: str | None, rule: str, duration_ms: float,
                  time: str, world_time: str, secrets: Secrets, dropped: bool = False, delay_ms: int = 0,
                  applied: bool = False, reason: str | None = None, changes: list | None = None) -> dict:
    """An entry of what the client sent (`sent_part`) and received. `time`: the wall clock, as a person debugging
    reads it; `worldTime`: the world's clock (core/clock.py), as the request's stamps read it. `status` null when
    the client received no answer at all (`dropped`: a transport fault closed the connection); `delayMs`, how long
    the answer was held on purpose; `reason`, what decided it in words (pipeline.reason_of); `changes`, the
    records a write changed, before and after (core/changes.py, already masked and bounded)."""
    cut = [True] if sent["cut"] else []
    answer = "" if dropped or response.is_streamed else _kept(secrets.body_of(_text(response.get_data())), BODY_LIMIT, cut)
    answered = {} if dropped else secrets.headers_of((k, _kept(v, HEADER_LIMIT, cut))
                                                     for k, v in list(response.headers.items())[:HEADER_COUNT])
    entry = {
        "time": time, "worldTime": world_time, "vendor": vendor, "operation": operation or "", "method": sent["method"], "path": sent["path"],
        "headers": sent["headers"], "body": sent["body"], "status": None if dropped else response.status_code,
        "response": answer, "responseHeaders": answered, "rule": rule, "durationMs": round(duration_ms, 3),
        "delayMs": delay_ms,
    }
    if cut:
        entry["truncated"] = True
    if applied:
        entry["applied"] = True
    if reason is not None:
        entry["reason"] = secrets.body_of(reason)
    if changes:
        entry["changes"] = changes
    return entry


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _kept(text: str, limit: int, cut: list) -> str:
    if len(text) <= limit:
        return text
    cut.append(True)
    return text[:limit]
