"""Errors of fabric's Offers API, in fabric's v3 error framework.

fabric documents `{"type", "errorCode", "message", "context"}` and the SERVICE-4002/4003/4004/4007 codes; it does
not publish the Offers API's own error bodies, so this framework is the sandbox's reading (see specs/fabric.yaml).
"""
from sandbox.core.errors import MISSING, Problem, RequestContext, SandboxError, error_for_status_among


class FabricError(SandboxError):
    error_code = "SERVICE-5000"
    kind = "CLIENT_ERROR"

    def body(self, context: RequestContext) -> dict:
        endpoint = f"{context.method} {context.path}" if context.method else ""
        body = {"type": self.kind, "errorCode": self.error_code, "message": self.message,
                "context": {"service": "offers", "endpoint": endpoint}}
        if len(self.problems) > 1:
            body["errors"] = [{"type": self.kind, "errorCode": _code_for(p), "message": p.message, "field": p.field}
                              for p in self.problems]
        return body


def _code_for(problem: Problem) -> str:
    return "SERVICE-4003" if problem.kind == MISSING else "SERVICE-4002"


class InvalidRequest(FabricError):
    """SERVICE-4003 for one missing field, SERVICE-4002 for one invalid value, SERVICE-4007 for several."""

    status = 400

    def __init__(self, message=None, problems=(), headers=None):
        problems = list(problems)
        if len(problems) > 1:
            self.error_code, message = "SERVICE-4007", "Multiple fields are invalid/missing."
        elif problems and _code_for(problems[0]) == "SERVICE-4003":
            self.error_code = "SERVICE-4003"
            message = f"Mandatory parameters: {problems[0].field or 'body'} is/are missing."
        else:
            self.error_code = "SERVICE-4002"
            if problems:
                message = f"Invalid values specified for {problems[0].field or 'body'}. {problems[0].message}"
        super().__init__(message, problems, headers)


class Unauthorized(FabricError):
    status = 401
    default_headers = {"WWW-Authenticate": 'Bearer realm="fabric"'}  # RFC 9110: every 401 names its scheme
    error_code = "UNAUTHORIZED"


class Forbidden(FabricError):
    status = 403
    error_code = "FORBIDDEN"


class NotFound(FabricError):
    status = 404
    error_code = "SERVICE-4004"


class MethodNotAllowed(FabricError):
    status = 405
    error_code = "METHOD_NOT_ALLOWED"


class Conflict(FabricError):
    status = 409
    error_code = "CONFLICT"


class TooManyRequests(FabricError):
    status = 429
    error_code = "TOO_MANY_REQUESTS"


# Size limits (sandbox/core/limits.py): what any HTTP server answers; fabric does not document its bodies for them.
class PayloadTooLarge(FabricError):
    status = 413
    error_code = "PAYLOAD_TOO_LARGE"


class UriTooLong(FabricError):
    status = 414
    error_code = "URI_TOO_LONG"


class HeadersTooLarge(FabricError):
    status = 431
    error_code = "REQUEST_HEADER_FIELDS_TOO_LARGE"


class ServiceError(FabricError):
    status = 500
    kind = "SERVER_ERROR"
    message = "Unexpected error in the offers service; the sandbox logged the details"


class ServiceUnavailable(FabricError):
    """The sandbox itself cannot serve the request now (its Redis store is away, or the world's write lock stayed
    busy or was lost); nothing was written. Sent with Retry-After."""

    status = 503
    kind = "SERVER_ERROR"
    error_code = "SERVICE_UNAVAILABLE"


error_for_status = error_for_status_among(
    InvalidRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, TooManyRequests, PayloadTooLarge,
    UriTooLong, HeadersTooLarge, ServiceUnavailable,
    otherwise=ServiceError)
