"""The error model: every failure is a named exception that knows its own wire format.

Vendors subclass `SandboxError` once for their envelope (`body(context)`), then once per documented error. A
`Problem` says what kind of thing is wrong (a field missing, a value invalid, a record not found, a conflict), so a
vendor picks its own code from the kind, never from the wording. The core never builds an error body itself; it asks
the mounted vendor for the error of a given status and hands it the request's context to render with.
"""
from __future__ import annotations

from dataclasses import dataclass

# What a Problem can be. Several problems at once are a request's, not a problem's: len(error.problems) > 1.
MISSING = "missing"  # a required field, parameter or body is absent
INVALID = "invalid"  # present, but not what the spec allows
NOT_FOUND = "not-found"  # names a record this caller cannot see
CONFLICT = "conflict"  # clashes with the state (a taken code, a forbidden transition)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where, what to fix, and its kind."""

    location: str  # body | path | query | header | auth
    field: str  # dotted path of the offending field, "" for the body as a whole
    message: str
    code: int | str | None = None  # the vendor's error code, when the spec names one (`x-error-code`)
    kind: str = INVALID
    # What to fix, where the vendor's own message does not say (Capillary's "Entity details not set/invalid."): the
    # spec's `x-error-hint`, or what the schema says of the field. Sent beside the body, never in it (X-Sandbox-Hint).
    hint: str = ""


@dataclass(frozen=True)
class RequestContext:
    """What an error body may say about the request it answers: the method and the path below the vendor's
    prefix (/v3/redemptions/x for fabric, /v1.1/points/isredeemable for Capillary)."""

    method: str = ""
    path: str = ""


class SandboxError(Exception):
    """Base of every error the sandbox answers with. Subclasses set `status` and render `body(context)`."""

    status: int = 500
    message: str = "Unexpected error"
    default_headers: dict = {}  # sent with every answer of the class (a 401's WWW-Authenticate challenge)

    def __init__(self, message: str | None = None, problems: list[Problem] | tuple = (), headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.problems = list(problems)
        self.headers = {**self.default_headers, **dict(headers or {})}

    def body(self, context: RequestContext) -> dict:
        raise NotImplementedError

    # What the request journal and logs show: which rule decided the answer.
    @property
    def rule(self) -> str:
        return type(self).__name__


# What a refusal was, in a word, by its status: the first half of a journal entry's `reason`.
_KINDS = {400: "validation", 401: "authentication", 403: "permission", 404: "not found", 405: "method", 409: "conflict",
          413: "too large", 414: "too large", 431: "too large", 429: "rate limit", 500: "server error",
          502: "upstream", 503: "unavailable"}
REASON_LIMIT = 200  # characters of a reason: a feed's column, not a report


def in_words(error: SandboxError) -> str:
    """What decided a refusal, as a person reads it in the demo page's feed: "validation: voucherExpiryDate
    missing", "not found: No purchase history ORD1", "permission: ..." (the first problem, and how many more)."""
    kind = _KINDS.get(error.status, f"HTTP {error.status}")
    if not error.problems:
        return f"{kind}: {error.message}"[:REASON_LIMIT]
    first = error.problems[0]
    what = f"{first.field} missing" if first.kind == MISSING and first.field else first.hint or first.message
    more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
    return f"{kind}: {what}{more}"[:REASON_LIMIT]


def header_text(text: str, most: int = 500) -> str:
    """Text made safe for a header value: printable ASCII only (a client's value may be quoted in it), at most
    `most` characters."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return safe if len(safe) <= most else safe[:most - 3] + "..."


def error_for_status_among(*classes: type[SandboxError], otherwise: type[SandboxError]):
    """A vendor's `error_for_status(status, message, problems, headers=None)`: its class for a status the core
    decides (400 validation, 404/405 routing, 429/500 faults), `otherwise` for any other."""
    by_status = {cls.status: cls for cls in classes}

    def error_for_status(status: int, message: str, problems: list[Problem], headers=None) -> SandboxError:
        return by_status.get(status, otherwise)(message, problems, headers)

    return error_for_status
