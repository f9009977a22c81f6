"""Bearer API keys: "Community is resolved from the API key token — do not pass communityID" (seed 000).

A key record: {key, communityID, permissions[], expiresAt (ISO or null), active, purpose}.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandbox.core.authorization import bearer_token
from sandbox.core.clock import iso_millis
from sandbox.core.masking import mask

from .errors import Forbidden, Unauthorized
from .records import API_KEYS



@dataclass(frozen=True)
class Caller:
    key: str
    community_id: str
    permissions: tuple[str, ...]

    @property
    def masked_key(self) -> str:
        """How the key appears in the status history: a fingerprint that tells keys apart, no character of the key."""
        return mask(self.key)


def authenticate(world, request, operation, now: datetime) -> Caller:
    token = bearer_token(request, Unauthorized, "API key", "apiKey")
    record = world.store.get(API_KEYS, token)
    if record is None:
        raise Unauthorized("Invalid API key: it is not known to this sandbox (see GET /_sandbox/credentials)")
    if not record.get("active", True):
        raise Unauthorized("This API key is inactive; activate it or use another key")
    if record.get("expiresAt") and record["expiresAt"] <= iso_millis(now):
        raise Unauthorized(f"This API key expired at {record['expiresAt']}; create a new key")
    needed = operation.extensions.get("x-sandbox-permission")
    if needed and needed not in record["permissions"]:
        raise Forbidden(f"This API key lacks the {needed} permission; grant it to the key or use another key")
    return Caller(token, record["communityID"], tuple(record["permissions"]))
