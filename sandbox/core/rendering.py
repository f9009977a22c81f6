"""Answers on the wire: JSON bodies, and errors in the envelope of the mount they belong to."""
from __future__ import annotations

import logging

from flask import Request, Response

from ..storage.codec import wire
from .errors import Problem, RequestContext, SandboxError
from .mount import Mount

log = logging.getLogger("sandbox")


class ResponseContractError(SandboxError):
    """Strict mode: the sandbox was about to send a response its own spec does not allow."""


def json_response(payload, status: int = 200, headers=None) -> Response:
    return Response(wire(payload), status=status, mimetype="application/json", headers=headers)


def context_of(mount: Mount, request: Request) -> RequestContext:
    """What an error body may say about the request: its method and the path below the mount's prefix."""
    return RequestContext(request.method, request.path.removeprefix("/" + mount.name))


def render(mount: Mount, error: SandboxError, context: RequestContext) -> Response:
    """The error in the mount's envelope; a response-contract violation becomes the mount's 500 saying so."""
    if isinstance(error, ResponseContractError):
        log.error("response contract violation: %s", error.message)
        error = mount.error_for_status(500, error.message, [])
    return json_response(error.body(context), error.status, error.headers)


def crash(mount: Mount) -> SandboxError:
    return mount.error_for_status(500, "Unexpected sandbox error; the details are in the server log", [])


def summary(problems: list[Problem]) -> str:
    """The headline of a 400: the first problem, and how many more the body lists."""
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s), listed in errors)" if len(problems) > 1 else ""
    return f"{first.message}{more}"


def echo_headers(mount: Mount, request: Request, response: Response) -> None:
    """Copy the headers a vendor echoes (fabric's x-fabric-request-id) onto every answer, errors included."""
    for name in mount.echo_headers:
        if name in request.headers:
            response.headers[name] = request.headers[name]
