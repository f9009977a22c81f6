"""The request journal: what each vendor request sent and got, bounded, secrets masked.

Kept in the world's store (log `_journal`), so every worker process of a sandbox writes to and reads the same one.
"""
from __future__ import annotations

# Headers that carry secrets; the journal keeps their first characters only.
SECRET_HEADERS = {"authorization", "x-cap-api-oauth-token", "cookie", "x-sandbox-admin-token"}
BODY_LIMIT = 10_000  # characters kept of each request and response body
LOG = "_journal"


def mask(value: str) -> str:
    return value[:10] + "…" if len(value) > 10 else "…"


class Journal:
    def __init__(self, store, size: int):
        self._store = store
        self._size = size

    def record(self, entry: dict) -> None:
        self._store.append_log(LOG, entry, keep=self._size, number="id")

    def entries(self, vendor=None, operation=None, status=None, since=None) -> list[dict]:
        return [
            e for e in self._store.read_log(LOG, last=self._size, number="id")
            if (vendor is None or e["vendor"] == vendor) and (operation is None or e["operation"] == operation)
            and (status is None or e["status"] == status) and (since is None or e["time"] >= since)
        ]

    def clear(self) -> None:
        self._store.clear_log(LOG)


def journal_entry(request, response, vendor: str, operation: str | None, rule: str, duration_ms: float, time: str,
                  dropped: bool = False, delay_ms: int = 0) -> dict:
    """An entry of what the client received: `status` null when it received no answer at all (`dropped`: a transport
    fault closed the connection); `delayMs`, how long the answer was held on purpose."""
    headers = {k: (mask(v) if k.lower() in SECRET_HEADERS else v) for k, v in request.headers.items()}
    return {
        "time": time, "vendor": vendor, "operation": operation or "", "method": request.method,
        "path": request.full_path.rstrip("?"), "headers": headers,
        "body": request.get_data(as_text=True)[:BODY_LIMIT],
        "status": None if dropped else response.status_code,
        "response": "" if dropped or response.is_streamed else response.get_data(as_text=True)[:BODY_LIMIT],
        "rule": rule, "durationMs": round(duration_ms, 3), "delayMs": delay_ms,
    }
