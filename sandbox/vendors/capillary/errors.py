"""Capillary's errors: a code and a message per problem, in the envelope of the API version called.

v2: {"warnings": [], "errors": [{"status": false, "code", "message"}]}; v1.1: {"response": {"status": {...}}};
v3 (OAuth): {"data": null, "errors": [...]}. The HTTP statuses are the sandbox's choice (specs/capillary.yaml).
"""
from __future__ import annotations

from sandbox.core.errors import RequestContext, SandboxError, error_for_status_among, header_text

INVALID_INPUT = 400  # Capillary's generic "Invalid input" code, for fields the spec gives no code of their own
# Capillary's messages are terse and faithful ("No metadata update requested."); the field to fix goes beside the
# body, in the sandbox's own header (specs/capillary.yaml's error responses), so the body stays the vendor's.
HINT_HEADER = "X-Sandbox-Hint"


class CapillaryError(SandboxError):
    """One or more Capillary error items. Subclasses fix the HTTP status; items carry the codes, which are the HTTP
    status unless the class or the raise names a documented one."""

    code: int | None = None

    def __init__(self, message: str | None = None, problems=(), headers=None, code: int | None = None):
        super().__init__(message, problems, headers)
        self.code = code if code is not None else (self.code or self.status)
        hints = list(dict.fromkeys(p.hint for p in self.problems if p.hint))
        if hints:
            self.headers[HINT_HEADER] = header_text("; ".join(hints))

    def items(self) -> list[dict]:
        if not self.problems:
            return [{"status": False, "code": self.code, "message": self.message}]
        seen, items = set(), []
        for p in self.problems:
            item = (p.code if isinstance(p.code, int) else INVALID_INPUT, p.message)
            if item not in seen:
                seen.add(item)
                items.append({"status": False, "code": item[0], "message": item[1]})
        return items

    def body(self, context: RequestContext) -> dict:
        items = self.items()
        version = _api_version(context)
        if version == "v1.1":
            first = items[0]
            return {"response": {"status": {"success": False, "code": first["code"], "message": first["message"]}}}
        if version == "v3":
            return {"data": None, "errors": items}
        return {"warnings": [], "errors": items}


def _api_version(context: RequestContext) -> str:
    segment = context.path.removeprefix("/").split("/", 1)[0]
    return segment if segment in ("v1.1", "v3") else "v2"


class BadRequest(CapillaryError):
    status = 400
    code = INVALID_INPUT


class Unauthorized(CapillaryError):
    status = 401
    # RFC 9110: every 401 names its scheme. Basic (the till); the OAuth token's header is not an HTTP auth scheme.
    default_headers = {"WWW-Authenticate": 'Basic realm="Capillary", charset="UTF-8"'}


class NotFound(CapillaryError):
    status = 404


class MethodNotAllowed(CapillaryError):
    status = 405


class Conflict(CapillaryError):
    status = 409


class TooManyRequests(CapillaryError):
    """Capillary's docs: "Demo and testing clusters: 1000 requests per minute per API key"."""

    status = 429


# Size limits (sandbox/core/limits.py): what any HTTP server answers, in the envelope of the API version called.
class PayloadTooLarge(CapillaryError):
    status = 413


class UriTooLong(CapillaryError):
    status = 414


class HeadersTooLarge(CapillaryError):
    status = 431


class ServerError(CapillaryError):
    status = 500
    message = "Requests have failed due to errors."


class ServiceUnavailable(CapillaryError):
    """The sandbox itself cannot serve the request now (its Redis store is away, or the world's write lock stayed
    busy or was lost); nothing was written. Sent with Retry-After."""

    status = 503


# The documented codes the backend raises, with Capillary's texts (seed 004 and Capillary's points codes).
def redemption_update_failed(reason: str) -> Conflict:
    """750 "Redemption update failed : {0}." (seed 004's spelling, with the space before the colon)."""
    return Conflict(f"Redemption update failed : {reason}.", code=750)


def identifier_not_found() -> NotFound:
    return NotFound("Invalid or malformed identifier provided in request body.", code=8015)


def customer_not_found(hint: str = "") -> NotFound:
    return NotFound("Customer not found for the given identifiers" + (f": {hint}" if hint else ""), code=8015)


def entity_type_not_supported(entity_type: str) -> Conflict:
    return Conflict(f"Entity type passed is not valid. {entity_type} entities are not configured for this org; "
                    "use CUSTOMER", code=1212)


_error_for_status = error_for_status_among(
    BadRequest, Unauthorized, NotFound, MethodNotAllowed, Conflict, TooManyRequests, PayloadTooLarge, UriTooLong,
    HeadersTooLarge, ServiceUnavailable,
    otherwise=ServerError)
IDENTIFIER_NOT_FOUND = 8015


def error_for_status(status: int, message: str, problems, headers=None) -> CapillaryError:
    """The core's error for a status. 8015 is always a 404, as the spec and README say: a malformed identifier (a
    customer ID that is not a whole number, a redemption ID beyond 50 characters) names nothing either, so a request
    whose only problems are 8015s is a 404, not a 400."""
    if status == 400 and problems and all(p.code == IDENTIFIER_NOT_FOUND for p in problems):
        status = 404
    return _error_for_status(status, message, problems, headers)
