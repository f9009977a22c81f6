"""fabric's bearer tokens. "Bearer authentication header of the form Bearer <token>" (seed 003).

A token belongs to one tenant; `x-fabric-tenant-id` must name that tenant (403 otherwise). A missing or
malformed tenant header is left to the spec's validation (400).
"""
from __future__ import annotations

from dataclasses import dataclass

from sandbox.core.authorization import MalformedCredentials, MissingCredentials, credentials

from .errors import Forbidden, Unauthorized
from .records import TOKENS

TENANT_HEADER = "x-fabric-tenant-id"


@dataclass(frozen=True)
class Caller:
    token: str
    tenant_id: str


def authenticate(world, request, operation) -> Caller:
    try:
        token = credentials(request, "Bearer")
    except MissingCredentials:
        raise Unauthorized("Missing bearer token: send Authorization: Bearer <token>") from None
    except MalformedCredentials:
        raise Unauthorized("Malformed Authorization header: expected 'Bearer <token>'") from None
    record = world.store.get(TOKENS, token)
    if record is None:
        raise Unauthorized("Unknown bearer token (demo tokens: GET /_sandbox/credentials)")
    tenant = request.headers.get(TENANT_HEADER, "")
    if len(tenant) == 24 and tenant != record["tenantId"]:
        raise Forbidden(f"This token belongs to another tenant; send its own {TENANT_HEADER}")
    return Caller(token, record["tenantId"])
