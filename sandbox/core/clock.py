"""Timestamps in the form the vendors print them."""
from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def iso_millis(moment: datetime) -> str:
    """2026-12-31T00:00:00.000Z, as Returning.AI prints dates."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso_millis(utc_now())
