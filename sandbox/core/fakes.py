"""Generated data in bulk: Faker for the words, its seeded random generator for everything else.

Faker's providers cost tens of microseconds a call (random_elements, regex-driven numerify/bothify), which made
100,000 records take minutes. Words (names, companies, sentences) come from small pools drawn from Faker once;
numbers, codes, dates and choices come straight from `fake.random`. Everything is still drawn from the one seeded
generator in a fixed order: the same seed gives the same world.
"""
from __future__ import annotations

import string
from datetime import datetime, timezone

from .ids import object_id

POOL = 256  # distinct words of each kind; records combine them, and IDs and codes make them unique
UPPER = string.ascii_uppercase


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
            provider = getattr(self.fake, kind)
            pool = self._pools[kind] = [provider(*args, **kwargs) for _ in range(POOL)]
        return self.random.choice(pool)

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
