"""Capillary authentication: Basic with the till and md5(password), or an OAuth token.

"Authorization: Basic <Base64 encoded (username:md5(password))>"; the OAuth alternative sends the token from
POST /v3/oauth/token/generate as X-CAP-API-OAUTH-TOKEN. Data is scoped to the till's org.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from sandbox.core.authorization import MalformedCredentials, MissingCredentials, credentials

from .errors import Unauthorized
from .records import OAUTH_TOKENS, TILLS

OAUTH_HEADER = "X-CAP-API-OAUTH-TOKEN"
TOKEN_PATH = "/v3/oauth/token/generate"
_FAILED = "Authentication failed. Please check username and password."


@dataclass(frozen=True)
class Till:
    username: str
    till_id: int
    till_name: str
    org_id: int


def authenticate(world, request, operation, now: datetime) -> Till:
    token = request.headers.get(OAUTH_HEADER)
    if token:
        return _till(world, _username_for_token(world, token, now))
    malformed = Unauthorized(f"{_FAILED} Malformed header: expected Basic base64(till:md5(password)).")
    try:
        encoded = credentials(request, "Basic")
        username, sep, secret = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
    except MissingCredentials:
        raise Unauthorized(f"{_FAILED} Send Authorization: Basic base64(till:md5(password)) or {OAUTH_HEADER}.") from None
    except (MalformedCredentials, binascii.Error, UnicodeDecodeError):
        raise malformed from None
    if not sep:
        raise malformed
    record = world.store.get(TILLS, username)
    if record is None:
        raise Unauthorized(f"{_FAILED} Unknown till {username}.")
    if secret == record["plainPassword"]:
        raise Unauthorized(f"{_FAILED} The password must be sent as md5(password), not as it is.")
    if secret.lower() != record["passwordMd5"]:
        raise Unauthorized(_FAILED)
    return _till(world, username)


def _username_for_token(world, token: str, now: datetime) -> str:
    record = world.store.get(OAUTH_TOKENS, token)
    if record is None:
        raise Unauthorized(f"{_FAILED} Unknown OAuth token; generate one with POST /v3/oauth/token/generate.")
    if record["expiresAt"] <= now.timestamp():
        raise Unauthorized(f"{_FAILED} The OAuth token expired; generate a new one.")
    return record["username"]


def _till(world, username: str) -> Till:
    record = world.store.get(TILLS, username)
    if record is None:  # a token whose till is gone (an imported world without it)
        raise Unauthorized(f"{_FAILED} The OAuth token's till {username} no longer exists.")
    return Till(username, record["tillId"], record["tillName"], record["orgId"])


def rate_key(till, request) -> str | None:
    """Capillary limits "per API key": a till counts its requests whether it sends its Basic header or an OAuth
    client's token (the client acts as its till). Asking for a token is not counted: the client is known only once
    the handler has checked its secret, and a count keyed by an unchecked key would let anyone use up a client's."""
    return till.username if till is not None else None


def credential(request) -> str | None:
    """The Mount's `credential`: the OAuth token, else the till's username in the Basic header, else (asking for a
    token) the OAuth client's key in the body."""
    token = request.headers.get(OAUTH_HEADER)
    if token:
        return token
    try:
        return base64.b64decode(credentials(request, "Basic"), validate=True).decode("utf-8").partition(":")[0]
    except (MissingCredentials, MalformedCredentials, binascii.Error, UnicodeDecodeError):
        pass
    if request.path.endswith(TOKEN_PATH):
        try:  # only to pick the world: the body is read (and refused, if it must be) afterwards like any other
            key = json.loads(request.get_data(cache=True)).get("key")
        except Exception:  # noqa: BLE001 - unreadable, not JSON, not an object: no world to pick by it
            return None
        return key if isinstance(key, str) else None
    return None
