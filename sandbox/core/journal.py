"""The request journal: what each vendor request sent and got, bounded in memory, secrets masked."""
from __future__ import annotations

import itertools
import threading
from collections import deque

# Headers that carry secrets; the journal keeps their first characters only.
SECRET_HEADERS = {"authorization", "x-cap-api-oauth-token", "cookie", "x-sandbox-admin-token"}
BODY_LIMIT = 10_000  # characters kept of each request and response body


def mask(value: str) -> str:
    return value[:10] + "…" if len(value) > 10 else "…"


class Journal:
    def __init__(self, size: int):
        self._entries: deque[dict] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def record(self, entry: dict) -> None:
        with self._lock:
            self._entries.append({"id": next(self._ids), **entry})

    def entries(self, vendor=None, operation=None, status=None, since=None) -> list[dict]:
        with self._lock:
            found = list(self._entries)
        return [
            e for e in found
            if (vendor is None or e["vendor"] == vendor) and (operation is None or e["operation"] == operation)
            and (status is None or e["status"] == status) and (since is None or e["time"] >= since)
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def journal_entry(request, response, vendor: str, operation: str | None, rule: str, duration_ms: float, time: str):
    headers = {k: (mask(v) if k.lower() in SECRET_HEADERS else v) for k, v in request.headers.items()}
    return {
        "time": time, "vendor": vendor, "operation": operation or "", "method": request.method,
        "path": request.full_path.rstrip("?"), "headers": headers,
        "body": request.get_data(as_text=True)[:BODY_LIMIT], "status": response.status_code,
        "response": response.get_data(as_text=True)[:BODY_LIMIT] if not response.is_streamed else "",
        "rule": rule, "durationMs": round(duration_ms, 3),
    }
