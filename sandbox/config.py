"""Settings of one sandbox instance. Every field can be set from run.py or by tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    seed: int = 2026
    size: int = 100  # generated records per vendor (Returning.AI: purchase histories)
    # How long a requested publisher timeout makes the client wait before its 502.
    publisher_timeout: float = 2.0
    # How long a Capillary OAuth token lives.
    oauth_token_ttl: int = 300
    # Check every response against the spec and answer 500 when the sandbox would break its own contract.
    strict_responses: bool = False
    specs_dir: Path = field(default_factory=lambda: ROOT / "specs")
    fixtures_dir: Path = field(default_factory=lambda: ROOT / "fixtures")
