"""Errors of the Returning.AI API, in the envelope the sandbox reads from its success bodies.

Returning.AI does not publish its error body; the sandbox mirrors the success envelope
(`meta`, `message`) and adds `errors[]` with one entry per field problem (see specs/returning-ai.yaml).
"""
from sandbox.core.errors import RequestContext, SandboxError, error_for_status_among


class ReturningAIError(SandboxError):
    def body(self, context: RequestContext) -> dict:
        return {
            "meta": {"status": "error", "statusCode": self.status},
            "message": self.message,
            "errors": [{"field": p.field, "message": p.message} for p in self.problems],
        }


class ValidationFailed(ReturningAIError):
    status = 400
    message = "Validation failed"


class Unauthorized(ReturningAIError):
    status = 401
    default_headers = {"WWW-Authenticate": 'Bearer realm="Returning.AI"'}  # RFC 9110: every 401 names its scheme
    message = "Missing API key: send Authorization: Bearer <apiKey>"


class Forbidden(ReturningAIError):
    status = 403
    message = "This API key lacks the permission this endpoint requires"


class NotFound(ReturningAIError):
    status = 404
    message = "Record not found in this community"


class MethodNotAllowed(ReturningAIError):
    status = 405


class Conflict(ReturningAIError):
    status = 409


class TooManyRequests(ReturningAIError):
    """"Standard API rate limits apply" (seed 000): reproduced on demand, with Retry-After."""

    status = 429


# Size limits (sandbox/core/limits.py): what any HTTP server answers, in the API's error envelope.
class PayloadTooLarge(ReturningAIError):
    status = 413


class UriTooLong(ReturningAIError):
    status = 414


class HeadersTooLarge(ReturningAIError):
    status = 431


class ServiceError(ReturningAIError):
    status = 500
    message = "Unexpected Returning.AI service error"


class ServiceUnavailable(ReturningAIError):
    """The sandbox itself cannot serve the request now (its Redis store is away, or the world's write lock stayed
    busy or was lost); nothing was written. Sent with Retry-After."""

    status = 503


class UpstreamStoreUnreachable(ReturningAIError):
    status = 502
    message = "The upstream store service is unreachable; nothing was written, retry the request"


class PublisherTimeout(ReturningAIError):
    status = 502
    # The same words whether or not the message was delivered (an applied fault): the client cannot tell which.
    message = ("The publisher timed out waiting for the store service; the update may or may not have been applied: "
               "read the purchase history before retrying")


error_for_status = error_for_status_among(
    ValidationFailed, Unauthorized, Forbidden, NotFound, MethodNotAllowed, Conflict, TooManyRequests,
    PayloadTooLarge, UriTooLong, HeadersTooLarge, ServiceUnavailable,
    otherwise=ServiceError)
