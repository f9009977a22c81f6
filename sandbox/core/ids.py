"""Identifiers for records created at run time.

Drawn from a generator seeded with the world's seed and re-seeded on every reset, so a replayed run (a
Schemathesis failure, a demo) creates the same IDs in the same order.
"""
import random
import threading


class IdGenerator:
    def __init__(self, seed: int):
        self._lock = threading.Lock()
        self.reseed(seed)

    def reseed(self, seed: int | str) -> None:
        with self._lock:
            # Distinct from the Faker streams that seeded the world, so new IDs never repeat seeded ones.
            self._random = random.Random(f"runtime-ids:{seed}")

    def object_id(self) -> str:
        """A Mongo-style 24-hex ObjectId."""
        with self._lock:
            return f"{self._random.getrandbits(96):024x}"

    def number(self, low: int, high: int) -> int:
        """A numeric ID, as Capillary uses for redemptions and reversals."""
        with self._lock:
            return self._random.randint(low, high)

    def token(self, length: int) -> str:
        """A short alphanumeric code such as Capillary's redemptionId (`sTDVyi`)."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        with self._lock:
            return "".join(self._random.choice(alphabet) for _ in range(length))
