"""Returning.AI: purchase histories (seeds 000, 001)."""
from sandbox.core.mount import Mount

from . import handlers
from .auth import authenticate
from .errors import error_for_status
from .records import INDEXES
from .seed import credentials, seed

vendor = Mount(
    name="returning-ai",
    spec_file="returning-ai.yaml",
    handlers=handlers,
    error_for_status=error_for_status,
    authenticate=authenticate,
    seed=seed,
    credentials=credentials,
    indexes=INDEXES,
)
