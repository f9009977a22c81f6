"""Reading the Authorization header; each vendor decides what its credentials mean and how it refuses."""
from __future__ import annotations


class MissingCredentials(Exception):
    pass


class MalformedCredentials(Exception):
    pass


def credentials(request, scheme: str) -> str:
    """The credentials after `<scheme> ` in the Authorization header.

    Raises MissingCredentials when there is no header, MalformedCredentials when the scheme differs or nothing follows.
    """
    header = request.headers.get("Authorization")
    if not header:
        raise MissingCredentials
    sent_scheme, _, value = header.partition(" ")
    value = value.strip()
    if sent_scheme.lower() != scheme.lower() or not value:
        raise MalformedCredentials
    return value


def bearer_token(request, refuse, what: str, placeholder: str) -> str:
    """The bearer token, or `refuse` (the vendor's 401 class) raised with a message naming what to send."""
    try:
        return credentials(request, "Bearer")
    except MissingCredentials:
        raise refuse(f"Missing {what}: send Authorization: Bearer <{placeholder}>") from None
    except MalformedCredentials:
        raise refuse(f"Malformed Authorization header: expected 'Bearer <{placeholder}>'") from None


def bearer_credential(request) -> str | None:
    """A Mount's `credential`: the bearer token the request presents, if any."""
    try:
        return credentials(request, "Bearer")
    except (MissingCredentials, MalformedCredentials):
        return None
