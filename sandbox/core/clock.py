"""A world's time, and timestamps in the form the vendors print them.

Each world has its own clock, kept in its store (`_world/clock`) so that every worker process and every instance
sharing the backend reads the same time. It runs on the wall clock, moved by an offset, or stands frozen at a
moment; it only ever moves forward (records would otherwise end up updated before they were created), except
when the world is reset, which puts it back where the world started. A request reads its world's time once, in
its lookups (pipeline.look_up, `Exchange.now`), and everything it stamps carries that moment.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable
from datetime import datetime, timedelta, timezone

# Collection and key of the world's time: its clock, the rate limits whose windows run on it (core/rate_limits.py),
# and how many webhook subscriptions it has, in one record, so a request's lookups read them all at once.
RECORD = ("_world", "time")
# The moments a clock may be set to: ISO-8601 years 1970 to 9999 (before 1970 epoch milliseconds are negative; after
# 9999 no ISO-8601 date can print them). An advance is at most 100 years at once.
EARLIEST_MS = 0
LATEST_MS = 253402300799999  # 9999-12-31T23:59:59.999Z
MAX_ADVANCE_SECONDS = 100 * 365.25 * 86400


def iso_millis(moment: datetime) -> str:
    """2026-12-31T00:00:00.000Z, as Returning.AI prints dates."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wall_now_iso() -> str:
    """The machine's time: for what a person debugging needs (the journal's `time`), never for a vendor's stamp."""
    return iso_millis(datetime.now(timezone.utc))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)


def from_millis(ms: int) -> datetime:
    """Exact (a float of seconds would round the last millisecond of a date far off)."""
    return _EPOCH + ms * _MILLISECOND


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since 1970, exactly, as Capillary prints its times."""
    return (moment - _EPOCH) // _MILLISECOND


# As specs/sandbox.yaml's Moment: an ISO-8601 extended date-time with a time zone (fromisoformat alone would also
# take basic and week forms that the API refuses).
_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|z|[+-][0-9]{2}:[0-9]{2})")


def _parsed(text: str) -> int | None:
    """An ISO-8601 date-time with a time zone as epoch milliseconds; None when it is not one."""
    if not isinstance(text, str) or not _MOMENT.fullmatch(text):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return epoch_ms(moment)


class ClockRefused(ValueError):
    """A clock change that would move it backwards or to a moment no timestamp can print: nothing changes (the
    control API answers it as a 400)."""


@dataclass(frozen=True)
class ClockState:
    """As stored. Frozen: `frozen_at` (epoch ms). Running: the wall clock plus `offset_ms`. `start`: where a reset
    puts it (epoch ms, frozen there), None for the wall clock."""

    frozen_at: int | None = None
    offset_ms: int = 0
    start: int | None = None

    @classmethod
    def starting_at(cls, start: int | None) -> "ClockState":
        return cls(frozen_at=start, start=start)

    def now_ms(self, wall_ms: int | None = None) -> int:
        if self.frozen_at is not None:
            return self.frozen_at
        # A clock set running close to the end of 9999 stops there: no timestamp can print the year after. (And one
        # stored behind 1970, by a damaged store, reads 1970: reading a clock never fails.)
        return max(EARLIEST_MS, min((_wall_ms() if wall_ms is None else wall_ms) + self.offset_ms, LATEST_MS))

    def view(self) -> dict:
        """As GET /_sandbox/clock shows it."""
        wall = _wall_ms()
        now = self.now_ms(wall)
        return {"now": iso_millis(from_millis(now)), "frozen": self.frozen_at is not None,
                "offsetSeconds": (now - wall) / 1000, "start": None if self.start is None else iso_millis(
                    from_millis(self.start))}

    # -- the changes POST /_sandbox/clock makes (specs/sandbox.yaml, ClockChange) ---------------------------------
    def changed(self, change: dict) -> "ClockState":
        """The clock after `change` (exactly one of freezeAt, freeze, advanceSeconds, resume, real; the spec
        checked that), or ClockRefused saying why not."""
        wall = _wall_ms()
        now = self.now_ms(wall)
        if "freezeAt" in change:
            moment = moment_ms(change["freezeAt"], "freezeAt")
            _not_backwards(now, moment, f"freezeAt {change['freezeAt']}")
            return ClockState(frozen_at=moment, start=self.start)
        if "advanceSeconds" in change:
            seconds = change["advanceSeconds"]
            step = round(seconds * 1000)  # the clock counts milliseconds
            if not (1 <= step and seconds <= MAX_ADVANCE_SECONDS):
                raise ClockRefused(f"advanceSeconds must be a number of seconds from 0.001 to {MAX_ADVANCE_SECONDS:.0f} "
                                   f"(100 years); it was {seconds}")
            _within_range(now + step, f"advancing by {seconds} s")
            if self.frozen_at is not None:
                return ClockState(frozen_at=self.frozen_at + step, start=self.start)
            return ClockState(offset_ms=self.offset_ms + step, start=self.start)
        if "freeze" in change:  # where it stands: no moment to send, so none can be behind it by the time it lands
            return ClockState(frozen_at=now, start=self.start)
        if "resume" in change:
            return ClockState(offset_ms=now - wall, start=self.start)  # runs on from where it stands
        _not_backwards(now, wall, "going back to the wall clock")
        return ClockState(start=self.start)

    # -- as stored and as exported ------------------------------------------------------------------------------
    def to_record(self) -> dict:
        return {"frozenAt": self.frozen_at, "offsetMs": self.offset_ms, "start": self.start}

    @classmethod
    def from_record(cls, record: dict | None) -> "ClockState":
        if not record:
            return cls()
        return cls(frozen_at=record.get("frozenAt"), offset_ms=record.get("offsetMs", 0), start=record.get("start"))

    def exported(self) -> dict:
        """In a state export: the stored state itself, so an import puts the clock exactly where it was."""
        return {"frozenAt": _iso_or_none(self.frozen_at), "offsetMs": self.offset_ms, "start": _iso_or_none(self.start)}

    @classmethod
    def imported(cls, exported: dict) -> "ClockState":
        """The clock of a state export (specs/sandbox.yaml, ExportedClock), or ClockRefused."""
        frozen, start = exported.get("frozenAt"), exported.get("start")
        state = cls(frozen_at=None if frozen is None else moment_ms(frozen, "clock.frozenAt"),
                    offset_ms=exported.get("offsetMs", 0),
                    start=None if start is None else moment_ms(start, "clock.start"))
        if state.frozen_at is None:  # running: where its offset puts it now must be a moment too
            _within_range(_wall_ms() + state.offset_ms, f"clock.offsetMs {state.offset_ms}")
        return state


class WorldClock:
    """A world's clock, and the rate limits counted on it, read and changed through its store. Both have a start
    (what the world was made with) that a reset puts back; a scenario may change the limits until then."""

    def __init__(self, store):
        self._store = store

    def _record(self) -> dict:
        return self._store.get(*RECORD) or {}

    def lookup(self) -> tuple[ClockState, dict, bool]:
        """What every request reads of the world's own settings, in one read: the clock, the rate limits
        ({vendor: {requests, windowSeconds}}; {}: none), and whether it has webhook subscriptions (so a world
        without any records its events at no extra cost: webhooks/outbox.py)."""
        record = self._record()
        return ClockState.from_record(record), record.get("limits") or {}, bool(record.get("webhooks"))

    def read(self) -> tuple[ClockState, dict]:
        """The clock, and the rate limits."""
        state, limits, _ = self.lookup()
        return state, limits

    def count_webhooks(self, count: int) -> None:
        """How many webhook subscriptions the world has now (webhooks/subscriptions.py keeps it in step)."""
        self._store.put(*RECORD, {**self._record(), "webhooks": count})

    def state(self) -> ClockState:
        return self.read()[0]

    def now(self) -> datetime:
        return from_millis(self.state().now_ms())

    def set(self, state: ClockState) -> None:
        self._store.put(*RECORD, {**self._record(), **state.to_record()})

    def start(self, state: ClockState, limits: dict) -> None:
        """A new world's: where its clock starts, and its limits, both put back by every reset (`restart`)."""
        self._store.put(*RECORD, {**state.to_record(), "limits": limits, "startLimits": limits})

    def start_limits(self) -> dict:
        """The limits the world was made with (a reset puts them back)."""
        return self._record().get("startLimits") or {}

    def set_limits(self, limits: dict) -> None:
        """Until the next reset (a scenario's)."""
        self._store.put(*RECORD, {**self._record(), "limits": limits})

    def restart(self) -> Callable[[], None]:
        """Read before a reset clears the store; call what it returns after: the clock back at its start, the limits
        back to the world's own."""
        record = self._record()
        state, limits = ClockState.from_record(record), record.get("startLimits") or {}
        return lambda: self.start(ClockState.starting_at(state.start), limits)

    def change(self, change: dict) -> ClockState:
        """POST /_sandbox/clock: read, checked and written in one transaction (two callers never both move it)."""
        with self._store.transaction():
            state = self.state().changed(change)
            self.set(state)
        return state


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso_or_none(ms: int | None) -> str | None:
    return None if ms is None else iso_millis(from_millis(ms))


def moment_ms(text: str, name: str) -> int:
    """`text` (an ISO-8601 date-time with a time zone, 1970 to 9999) as epoch milliseconds, or ClockRefused saying
    what `name` must be."""
    moment = _parsed(text)
    if moment is None:
        raise ClockRefused(f"{name} must be an ISO-8601 date-time with a time zone, such as 2027-01-01T00:00:00Z; "
                           f"it was {text!r}")
    _within_range(moment, f"{name} {text}")
    return moment


def _within_range(moment: int, what: str) -> None:
    if not EARLIEST_MS <= moment <= LATEST_MS:
        raise ClockRefused(f"{what} is outside the years 1970 to 9999, which the vendors' timestamps can print; "
                           "send a moment within them")


def _not_backwards(now: int, moment: int, what: str) -> None:
    if moment < now:
        raise ClockRefused(f"{what} would move this world's clock back from {iso_millis(from_millis(now))}: records "
                           "would end up updated before they were created. A clock only moves forward; "
                           "POST /_sandbox/reset puts it back where the world started.")

