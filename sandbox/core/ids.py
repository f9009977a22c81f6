"""Identifiers for records created at run time.

The n-th identifier a world hands out is drawn from a generator seeded with the world's seed and n, where n
comes from a counter in the world's store: every worker process continues the same sequence, a reset starts
it again, and a replayed run (a Schemathesis failure, a demo) creates the same IDs in the same order.
"""
import random

COUNTER = "_runtime_ids"
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def object_id(dice: random.Random) -> str:
    """A Mongo-style 24-hex ObjectId."""
    return f"{dice.getrandbits(96):024x}"


class IdGenerator:
    def __init__(self, store, seed):
        self._store = store
        self._seed = seed  # a callable: the world's current seed

    def _next(self) -> random.Random:
        # Distinct from the Faker streams that seeded the world, so new IDs never repeat seeded ones.
        return random.Random(f"runtime-ids:{self._seed()}:{self._store.next_value(COUNTER)}")

    def object_id(self) -> str:
        return object_id(self._next())

    def number(self, low: int, high: int) -> int:
        """A numeric ID, as Capillary uses for redemptions and reversals."""
        return self._next().randint(low, high)

    def hex(self, digits: int) -> str:
        """`digits` hex digits (a Capillary OAuth token's body)."""
        return f"{self._next().getrandbits(4 * digits):0{digits}x}"

    def token(self, length: int) -> str:
        """A short alphanumeric code such as Capillary's redemptionId (`sTDVyi`)."""
        dice = self._next()
        return "".join(dice.choice(ALPHABET) for _ in range(length))
