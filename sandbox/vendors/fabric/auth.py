"""fabric's bearer tokens. "Bearer authentication header of the form Bearer <token>" (seed 003).

A token belongs to one tenant; `x-fabric-tenant-id` must name that tenant (403 otherwise). A missing or
malformed tenant header (one its schema in the spec refuses) is left to the spec's validation (400).
"""
from __future__ import annotations

from dataclasses import dataclass

from sandbox.core.authorization import bearer_token

from .errors import Forbidden, Unauthorized
from .records import TOKENS

TENANT_HEADER = "x-fabric-tenant-id"


@dataclass(frozen=True)
class Caller:
    token: str
    tenant_id: str


def authenticate(world, request, operation, now) -> Caller:
    """`now`: unused, as fabric's tokens never expire here."""
    token = bearer_token(request, Unauthorized, "bearer token", "token")
    record = world.store.get(TOKENS, token)
    if record is None:
        raise Unauthorized("Unknown bearer token (demo tokens: GET /_sandbox/credentials)")
    tenant = request.headers.get(TENANT_HEADER, "")
    if operation.admits("header", TENANT_HEADER, tenant) and tenant != record["tenantId"]:
        raise Forbidden(f"This token belongs to another tenant; send its own {TENANT_HEADER}")
    return Caller(token, record["tenantId"])
