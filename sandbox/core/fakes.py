"""Generated data in bulk: Faker for the words, its seeded random generator for everything else.

Faker's providers cost tens of microseconds a call (random_elements, regex-driven numerify/bothify), which made
100,000 records take minutes. Words (names, companies, sentences) come from small pools drawn from Faker once;
numbers, codes, dates and choices come straight from `fake.random`. Everything is still drawn from the one seeded
generator in a fixed order: the same seed gives the same world.

A pool is drawn from the generator's state at the moment it is first asked for, so the same state always draws the
same pool and leaves the same state behind: `_drawn` keeps the last POOLS_KEPT draws by state, and a world seeded
again (a reset, a workspace, a test's app) takes its pools from there and moves its generator on exactly as the
draw would have. Seeding 40 records per vendor cost 143 ms, most of it these draws.
"""
from __future__ import annotations

import string
from collections import OrderedDict
from datetime import datetime, timezone

from .ids import object_id

POOL = 256  # distinct words of each kind; records combine them, and IDs and codes make them unique
UPPER = string.ascii_uppercase
POOLS_KEPT = 128  # draws remembered per process, each a pool (POOL strings of under 100 characters) and a
# generator state (625 integers): under 30 KB each, under 4 MB in all
_drawn: OrderedDict = OrderedDict()  # (kind, args, state before) -> (pool, state after)


class Bulk:
    def __init__(self, fake):
        self.fake = fake
        self.random = fake.random
        self._pools: dict[str, list] = {}
        self._seen: dict[str, set] = {}

    def word(self, kind: str, *args, **kwargs):
        """A value of Faker's provider `kind` (first_name, company, sentence ...), from a pool drawn once."""
        pool = self._pools.get(kind)
        if pool is None:
            pool = self._pools[kind] = self._draw(kind, args, kwargs)
        return self.random.choice(pool)

    def _draw(self, kind: str, args: tuple, kwargs: dict) -> list:
        key = (kind, args, tuple(sorted(kwargs.items())), self.random.getstate())
        drawn = _drawn.get(key)
        if drawn is not None:
            _drawn.move_to_end(key)
            pool, after = drawn
            self.random.setstate(after)
            return pool
        provider = getattr(self.fake, kind)
        pool = [provider(*args, **kwargs) for _ in range(POOL)]
        _drawn[key] = (pool, self.random.getstate())
        if len(_drawn) > POOLS_KEPT:
            _drawn.popitem(last=False)
        return pool

    def pick(self, options):
        return self.random.choice(options)

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def digits(self, count: int) -> str:
        return f"{self.random.randrange(10 ** count):0{count}d}"

    def letters(self, count: int, alphabet: str = UPPER) -> str:
        return "".join(self.random.choices(alphabet, k=count))

    def unique(self, kind: str, make):
        """make() until it gives a value not given before for this kind."""
        seen = self._seen.setdefault(kind, set())
        value = make()
        while value in seen:
            value = make()
        seen.add(value)
        return value

    def object_id(self) -> str:
        return object_id(self.random)

    def moment(self, start: datetime, end: datetime) -> datetime:
        """A time between start and end, to the second, in UTC."""
        seconds = self.random.randint(int(start.timestamp()), int(end.timestamp()))
        return datetime.fromtimestamp(seconds, tz=timezone.utc)

    def email(self, first: str, last: str) -> str:
        local = ".".join("".join(c for c in part.lower() if c.isascii() and c.isalpha()) for part in (first, last))
        domain = self.word("free_email_domain")
        return self.unique("email", lambda: f"{local}{self.random.randrange(10_000)}@{domain}")
