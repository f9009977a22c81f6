"""Rate limits per credential, counted in the world's store on the world's clock: off unless asked for.

A limit is N requests per window of S seconds, per vendor, per credential (Capillary: per till, whether it sends its
Basic header or an OAuth client's token, as Capillary counts "per API key"), per world. Windows are fixed and
aligned on the world's clock (epoch milliseconds // window), so advancing the clock opens the next one. The count
is one store counter per credential and window, shared by every worker process and instance on the backend: one
atomic increment per request (Redis: one round trip; SQLite: one statement), plus, once a window, forgetting the
previous window's counter, so a world holds at most two counters per credential that called lately.

Where the numbers come from (specs' x-sandbox-rate-limit; README, Rate limits):
- Capillary: "Demo and Testing Clusters: 100 requests per minute per API key" (its rate-limits reference page; its
  v1.1 redeem page says 1000): 100 per 60 s, the stricter, as this sandbox stands in for a demo cluster.
- Returning.AI ("Standard API rate limits apply", seed 000, no number) and fabric (none published): the sandbox's
  choice, 600 per 60 s, high enough that no documented flow meets it, low enough that a runaway loop does.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from .clock import epoch_ms

DOCUMENTED = {
    "capillary": {"requests": 100, "windowSeconds": 60},
    "returning-ai": {"requests": 600, "windowSeconds": 60},
    "fabric": {"requests": 600, "windowSeconds": 60},
}
MAX_REQUESTS = 1_000_000
MAX_WINDOW_SECONDS = 86_400
_COUNTER = "_rate:{vendor}:{key}:{window}"


class BadLimits(ValueError):
    """Rate limits given in a form the sandbox cannot take: says what to send."""


def resolved(given, vendors) -> dict:
    """`given` as every form takes it ("documented", {vendor: {requests, windowSeconds}}, or None: none) as
    {vendor: {"requests": N, "windowSeconds": S}}, or BadLimits."""
    if given is None:
        return {}
    if given == "documented":
        return {v: dict(DOCUMENTED[v]) for v in vendors}
    if not isinstance(given, dict):
        raise BadLimits('rateLimits must be "documented" or {"<vendor>": {"requests": N, "windowSeconds": S}, ...}')
    limits = {}
    for vendor, limit in given.items():
        if vendor not in vendors:
            raise BadLimits(f"No vendor {vendor!r} to limit; the vendors: {', '.join(vendors)}")
        requests, window = (limit or {}).get("requests"), (limit or {}).get("windowSeconds")
        if not (_whole(requests) and 1 <= requests <= MAX_REQUESTS and _whole(window)
                and 1 <= window <= MAX_WINDOW_SECONDS):
            raise BadLimits(f"{vendor}'s limit must be requests 1 to {MAX_REQUESTS:,} per windowSeconds 1 to "
                            f"{MAX_WINDOW_SECONDS:,} (whole numbers), as {{\"requests\": 100, \"windowSeconds\": 60}}")
        limits[vendor] = {"requests": requests, "windowSeconds": window}
    return limits


def parse_option(text: str, vendors) -> dict:
    """run.py --rate-limits: "documented", or "capillary=100/60,fabric=10/1" (requests/seconds per vendor)."""
    if text == "documented":
        return resolved(text, vendors)
    given = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        vendor, _, rule = part.partition("=")
        requests, _, window = rule.partition("/")
        if not (requests.isdigit() and window.isdigit()):
            raise BadLimits(f"--rate-limits takes documented, or VENDOR=REQUESTS/SECONDS[,...] such as "
                            f"capillary=100/60; {part!r} is neither")
        given[vendor.strip()] = {"requests": int(requests), "windowSeconds": int(window)}
    return resolved(given, vendors)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends: when a refused request would pass

    def headers(self) -> dict:
        """The sandbox's own names (specs: RateLimited), after the common X-RateLimit-* convention."""
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                   "X-RateLimit-Reset": str(self.reset_seconds)}
        if not self.passed:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


def count(store, vendor: str, key: str, limit: dict, now: datetime) -> Verdict:
    """This request, counted against the credential's window on the world's clock."""
    window_ms = limit["windowSeconds"] * 1000
    at = epoch_ms(now)
    window = at // window_ms
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    seen = store.next_value(_COUNTER.format(vendor=vendor, key=digest, window=window))
    if seen == 1:  # the first of its window: the previous one's count is no longer needed
        store.forget_value(_COUNTER.format(vendor=vendor, key=digest, window=window - 1))
    reset = max(1, math.ceil(((window + 1) * window_ms - at) / 1000))
    allowed = limit["requests"]
    return Verdict(seen <= allowed, allowed, max(0, allowed - seen), reset)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
