"""Turn a mount's spec into Flask routes, and run every request through one pipeline.

Pipeline, read top to bottom in `_view`: find the world and authenticate (if the operation is secured),
validate the request against the spec, decide the fault, call the handler named after the operationId,
check the response against the spec when strict mode is on, render, and record it in the journal (for a
write, in the same commit as its change). Any `SandboxError` is answered in the mount's own envelope;
anything else is logged and answered as the mount's 500, never with a stack trace.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .codec import wire
from .errors import Problem, SandboxError
from .clock import now_iso
from .faults import DELAY_HEADER, FAULT_HEADER, GENERIC_FAULTS, RETRY_AFTER_SECONDS, drop_connection, magic_fault, wait
from .journal import journal_entry
from .mount import Mount
from .spec import Operation, Spec
from .validation import validate_request

log = logging.getLogger("sandbox")


class ResponseContractError(SandboxError):
    """Strict mode: the sandbox was about to send a response its own spec does not allow."""


@dataclass
class Call:
    """What a handler receives: the validated request and the world it acts on."""

    operation: Operation
    params: dict
    body: object
    principal: object
    sandbox: object  # the running Sandbox (settings, specs, every world)
    world: object  # the world this request acts on (the default one, or a workspace)
    fault: str | None = None  # a vendor-specific fault to strike where the vendor's documents place it

    @property
    def store(self):
        return self.world.store

    @property
    def settings(self):
        return self.sandbox.settings

    @property
    def ids(self):
        return self.world.ids


def snake_case(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def mount(app: Flask, mount_: Mount, spec: Spec, prefix: str) -> None:
    for operation in spec.operations:
        handler = getattr(mount_.handlers, snake_case(operation.operation_id))
        for validator in [p.validator for p in operation.parameters] + [operation.body_validator]:
            if validator is not None:
                validator.compile()
        for i, base in enumerate(spec.base_paths):
            app.extensions["sandbox_paths"].append(_PathTemplate(base + operation.path, operation.method))
            app.add_url_rule(
                base + operation.flask_rule,
                endpoint=f"{mount_.name}:{operation.operation_id}:{i}",
                view_func=_make_view(mount_, operation, handler, base + operation.path),
                methods=[operation.method],
                # Only what the spec documents: an undocumented OPTIONS must be a 405 like any other method.
                provide_automatic_options=False,
            )
    app.extensions["sandbox_mounts"].append((prefix, mount_))


class _PathTemplate:
    """A documented path and method, to say which methods a path allows (the `Allow` of a 405)."""

    def __init__(self, template: str, method: str):
        self.template = template
        self.method = method
        self.regex = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
        # /redemptions/batch is more specific than /redemptions/{redemptionId}: count literal segments.
        self.literal_segments = sum(1 for part in template.split("/") if part and not part.startswith("{"))


def _can_be_shadowed(template: str) -> bool:
    """Whether a more literal documented path (/faults/catalogue) can match the same URLs as this one
    (/faults/{ruleId}); only such operations need the method check below."""
    ours = template.split("/")
    for other in current_app.extensions["sandbox_paths"]:
        theirs = other.template.split("/")
        if other.template != template and len(theirs) == len(ours) and other.literal_segments > sum(
                1 for part in ours if part and not part.startswith("{")) and all(
                a == b or a.startswith("{") for a, b in zip(ours, theirs)):
            return True
    return False


def documented_methods(path: str) -> list[str]:
    matches = [t for t in current_app.extensions["sandbox_paths"] if t.regex.match(path)]
    if not matches:
        return []
    best = max(t.literal_segments for t in matches)
    return sorted({t.method for t in matches if t.literal_segments == best})


def _make_view(mount_: Mount, operation: Operation, handler, template: str):
    shadowed = []  # decided at the first request, once every mount is known

    def view(**path_args):
        if not shadowed:
            shadowed.append(_can_be_shadowed(template))
        if shadowed[0] and operation.method not in documented_methods(request.path):
            # A literal path (/faults/catalogue) shadows a templated one (/faults/{ruleId}) for every method.
            raise MethodNotAllowed(valid_methods=documented_methods(request.path))
        return _view(mount_, operation, handler, path_args)

    return view


def _view(mount_: Mount, operation: Operation, handler, path_args: dict) -> Response:
    sandbox = current_app.extensions["sandbox"]
    req = request._get_current_object()  # the request itself: every read through the proxy costs a lookup
    world = None
    try:
        with sandbox.lookups():
            world = sandbox.world_for(mount_, req)
            g.world, g.operation = world, operation.operation_id
            principal = (mount_.authenticate(world, req, operation)
                         if operation.secured and mount_.authenticate is not None else None)
            ruled = world.faults.any_for(mount_.name, operation.operation_id)
    finally:
        if world is not None:  # out of the snapshot, since it may write; a refused request uses its workspace too
            sandbox.touch(world)
    params, body, problems = validate_request(operation, req, path_args)
    if problems:
        raise mount_.error_for_status(400, _summary(problems), problems)
    fault = _fault(world, mount_, operation, params, body, ruled)
    if fault in GENERIC_FAULTS:
        g.rule = f"fault:{fault}"
        answer = _generic_fault(mount_, fault)
        if answer is not None:
            return answer
        fault = None
    elif fault is not None:
        g.rule = f"fault:{fault}"
    call = Call(operation, params, body, principal, sandbox, world, fault)
    if fault is None and operation.method != "GET" and mount_.journaled:
        # A change and its journal entry in one commit: one turn of the write lock instead of two. (A fault may
        # wait in the handler, and a GET needs no lock; those are journaled after the answer, as errors are.)
        with world.store.transaction():
            response = _answer(mount_, operation, handler, call)
            record_request(world, mount_, req, response)
        g.journaled = True
        return response
    return _answer(mount_, operation, handler, call)


def _answer(mount_: Mount, operation: Operation, handler, call: Call) -> Response:
    result = handler(call)
    if isinstance(result, Response):  # non-JSON answers (a spec as YAML) are built by the handler
        return result
    status, payload = result if isinstance(result, tuple) else (200, result)
    if call.settings.strict_responses:
        _check_response(mount_, operation, status, payload)
    return json_response(payload, status)


def record_request(world, mount_: Mount, req, response: Response) -> None:
    """The request's entry in the journal of the world it acted on."""
    duration = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    rule = g.get("rule") or ("ok" if response.status_code < 400 else "error")
    world.journal.record(journal_entry(req, response, mount_.name, g.get("operation"), rule, duration, now_iso()))


def _fault(world, mount_: Mount, operation: Operation, params: dict, body, ruled: bool) -> str | None:
    """Header first, then a magic value, then the world's rules (when `ruled`: some may fire on this operation);
    any delay asked for is waited out here."""
    fault = params.get(FAULT_HEADER) or magic_fault(operation, params, body)
    delay = params.get(DELAY_HEADER, 0)
    if fault is None and ruled:
        rule = world.faults.pick(mount_.name, operation.operation_id)
        if rule is not None:
            fault, delay = rule.fault, delay + rule.latency_ms
    wait(delay)
    return fault


def _generic_fault(mount_: Mount, fault: str) -> Response | None:
    """Carry out a fault any vendor can have; None when the request should then be answered normally."""
    if fault == "latency":
        return None
    if fault == "rate-limit":
        raise mount_.error_for_status(429, f"Too many requests (injected fault); retry after {RETRY_AFTER_SECONDS} s",
                                      [], headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if fault == "server-error":
        raise mount_.error_for_status(500, "Unexpected server error (injected fault); nothing was written", [])
    if fault == "malformed-body":
        return Response('{"truncated": tru', status=200, mimetype="application/json")
    # connection-reset / empty-response: over HTTP the client sees the connection drop; in-process, an empty 502.
    drop_connection(request.environ, reset=fault == "connection-reset")
    return Response(b"", status=502)


def _summary(problems: list[Problem]) -> str:
    first = problems[0]
    more = f" (and {len(problems) - 1} more problem(s), listed in errors)" if len(problems) > 1 else ""
    return f"{first.message}{more}"


def _check_response(mount_: Mount, operation: Operation, status: int, payload) -> None:
    if not operation.documents_status(status):
        raise ResponseContractError(f"{operation.operation_id} answered {status}, which its spec does not document")
    validator = operation.response_validator(status)
    if validator is not None:
        errors = list(validator.iter_errors(payload))
        if errors:
            raise ResponseContractError(
                f"{operation.operation_id} answered {status} with a body its spec forbids: {errors[0].message}"
            )


def json_response(payload, status: int = 200, headers=None) -> Response:
    return Response(wire(payload), status=status, mimetype="application/json", headers=headers)


# -- errors -------------------------------------------------------------------------------------------------
def install_error_handlers(app: Flask) -> None:
    app.register_error_handler(SandboxError, _render_sandbox_error)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.register_error_handler(Exception, _render_crash)
    app.after_request(_echo_headers)


def _echo_headers(response: Response) -> Response:
    """Copy the headers a vendor echoes, on every answer of that vendor, errors included."""
    req = request._get_current_object()
    mount_ = mount_for_path(req.path)
    if mount_ is not None:
        for name in mount_.echo_headers:
            if name in req.headers:
                response.headers[name] = req.headers[name]
    return response


def mount_for_path(path: str) -> Mount | None:
    """The mount a path belongs to (longest prefix)."""
    matches = [(p, m) for p, m in current_app.extensions["sandbox_mounts"] if path == p or path.startswith(p + "/")]
    return max(matches, key=lambda pm: len(pm[0]))[1] if matches else None


def _render(error: SandboxError) -> Response:
    return json_response(error.body(), error.status, error.headers)


def _render_sandbox_error(error: SandboxError) -> Response:
    if isinstance(error, ResponseContractError):
        log.error("response contract violation: %s", error.message)
        mount_ = mount_for_path(request.path)
        return _render(mount_.error_for_status(500, error.message, []))
    g.setdefault("rule", error.rule)  # a fault that raised it keeps its own name
    return _render(error)


def _render_http_exception(exc: HTTPException) -> Response:
    mount_ = mount_for_path(request.path)
    if mount_ is None:
        return json_response({"error": {"code": exc.code, "message": exc.description}}, exc.code)
    if exc.code == 404:
        message = f"No route {request.path}: check the base URL and the path against the spec"
    elif isinstance(exc, MethodNotAllowed):
        allowed = documented_methods(request.path)
        message = f"Method {request.method} is not allowed here; allowed: {', '.join(allowed)}"
        error = mount_.error_for_status(405, message, [])
        # The spec's methods for this path, not werkzeug's union over every rule the path matches.
        error.headers["Allow"] = ", ".join(allowed)
        return _render(error)
    else:
        message = exc.description
    return _render(mount_.error_for_status(exc.code, message, []))


def _render_crash(exc: Exception) -> Response:
    log.exception("unexpected failure on %s %s", request.method, request.path)
    mount_ = mount_for_path(request.path)
    message = "Unexpected sandbox error; the details are in the server log"
    if mount_ is None:
        return json_response({"error": {"code": 500, "message": message}}, 500)
    return _render(mount_.error_for_status(500, message, []))
