"""A mount's spec turned into routes, and the answer to a request no operation matches (404, 405).

Every operation of the spec becomes one route per server base path, whose view hands the request to
`pipeline.handle`. Which methods a path allows (the `Allow` of a 405) is what the specs document for it: when a
literal path (/faults/catalogue) shadows a templated one (/faults/{ruleId}), the literal one's methods only.

`Dispatch`, a WSGI layer in front of Flask, hands a request that names one documented operation (its path and
method) straight to the pipeline: Flask's request context, URL adapter and hooks cost about a fifth of a valid
request's time, and the pipeline needs none of them. Everything else (HEAD, the pages, the proxy, 404s, 405s)
goes on to Flask, whose routes are the same operations, so both paths answer alike.
"""
from __future__ import annotations

import logging
import re

from flask import Flask, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import limits, pipeline, rendering
from .mount import Mount
from .spec import Operation, Spec, literal_segments, template_regex

log = logging.getLogger("sandbox")


def snake_case(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


class Routes:
    """Every mount and documented path of an app (in `app.extensions["sandbox_routes"]`)."""

    def __init__(self):
        self.mounts: list[tuple[str, Mount]] = []  # (prefix, mount)
        self.paths: list[_PathTemplate] = []
        self.by_prefix: dict[str, list[_PathTemplate]] = {}  # a path's first segment -> the operations under it

    def operation_for(self, method: str, path: str) -> tuple[_PathTemplate, dict] | None:
        """The one operation a request names, with its path arguments; None when the path matches none, matches
        a more literal path that does not allow the method (a 405), or is ambiguous: Flask decides those."""
        first = path[:path.find("/", 1)] if path.find("/", 1) > 0 else path
        matches = [(t, m) for t in self.by_prefix.get(first, ()) for m in [t.regex.match(path)] if m is not None]
        if not matches:
            return None
        best = max(t.literal_segments for t, _ in matches)
        chosen = [(t, m) for t, m in matches if t.literal_segments == best and t.method == method]
        if len(chosen) != 1:
            return None
        template, match = chosen[0]
        return template, match.groupdict()

    def mount_for_path(self, path: str) -> Mount | None:
        """The mount a path belongs to (longest prefix)."""
        matches = [(p, m) for p, m in self.mounts if path == p or path.startswith(p + "/")]
        return max(matches, key=lambda pm: len(pm[0]))[1] if matches else None

    def documented_methods(self, path: str) -> list[str]:
        matches = [t for t in self.paths if t.regex.match(path)]
        if not matches:
            return []
        best = max(t.literal_segments for t in matches)
        return sorted({t.method for t in matches if t.literal_segments == best})

    def can_be_shadowed(self, template: str) -> bool:
        """Whether a more literal documented path (/faults/catalogue) can match the same URLs as this one
        (/faults/{ruleId}); only such operations need the method check of their view."""
        ours = template.split("/")
        return any(other.template != template and len(theirs) == len(ours)
                   and other.literal_segments > literal_segments(template)
                   and all(a == b or a.startswith("{") for a, b in zip(ours, theirs))
                   for other in self.paths for theirs in [other.template.split("/")])


class _PathTemplate:
    def __init__(self, template: str, method: str, mount_: Mount | None = None, operation: Operation | None = None,
                 handler=None):
        self.template = template
        self.method = method
        self.regex = template_regex(template)
        self.literal_segments = literal_segments(template)
        self.mount, self.operation, self.handler = mount_, operation, handler


def routes(app: Flask) -> Routes:
    return app.extensions.setdefault("sandbox_routes", Routes())


def mount(app: Flask, mount_: Mount, spec: Spec) -> None:
    table = routes(app)
    for operation in spec.operations:
        handler = getattr(mount_.handlers, snake_case(operation.operation_id))
        for validator in [p.validator for p in operation.parameters] + [operation.body_validator]:
            if validator is not None:
                validator.compile()
        for i, base in enumerate(spec.base_paths):
            template = _PathTemplate(base + operation.path, operation.method, mount_, operation, handler)
            table.paths.append(template)
            first = template.template.split("/")[1]
            table.by_prefix.setdefault("/" + first, []).append(template)
            app.add_url_rule(
                base + operation.flask_rule,
                endpoint=f"{mount_.name}:{operation.operation_id}:{i}",
                view_func=_make_view(mount_, operation, handler, base + operation.path),
                methods=[operation.method],
                # Only what the spec documents: an undocumented OPTIONS must be a 405 like any other method.
                provide_automatic_options=False,
            )
    table.mounts.append(("/" + mount_.name, mount_))


def install_error_handlers(app: Flask) -> None:
    app.before_request(_within_limits)
    app.register_error_handler(HTTPException, _unrouted)
    app.register_error_handler(Exception, _crash)


def _within_limits():
    return limits_refusal(request._get_current_object(), current_app.extensions["sandbox"], routes(current_app))


def limits_refusal(req: Request, sandbox, table: Routes, operation=None) -> Response | None:
    """Refuse a request (to `operation`, None: no documented one) beyond the size limits before anything reads its
    body, in the envelope of its mount."""
    refused = limits.refusal(req, sandbox.settings, operation)
    if refused is None:
        return None
    status, message = refused
    mount_ = table.mount_for_path(req.path)
    if mount_ is None:
        return rendering.json_response({"error": {"code": status, "message": message}}, status)
    return pipeline.refuse(pipeline.Exchange(req, mount_, sandbox), mount_.error_for_status(status, message, []))


class Dispatch:
    """The WSGI layer that hands a request naming one documented operation straight to the pipeline (the
    module's docstring says why); any other request goes on to the Flask app."""

    def __init__(self, app: Flask):
        self.app = app
        self.wsgi_app = app.wsgi_app
        self.sandbox = app.extensions["sandbox"]
        self.table = routes(app)

    def __call__(self, environ, start_response):
        req = Request(environ)
        found = self.table.operation_for(environ.get("REQUEST_METHOD", ""), req.path)
        if found is None:
            return self.wsgi_app(environ, start_response)
        template, path_args = found
        try:
            response = limits_refusal(req, self.sandbox, self.table, template.operation) or pipeline.handle(
                pipeline.Exchange(req, template.mount, self.sandbox, template.operation, template.handler, path_args))
        except Exception:  # noqa: BLE001 - as Flask's error handler would: the mount's 500, the details logged
            log.exception("unexpected failure on %s %s", req.method, req.path)
            response = rendering.render(template.mount, rendering.crash(template.mount),
                                        rendering.context_of(template.mount, req))
        return response(environ, start_response)


def _make_view(mount_: Mount, operation: Operation, handler, template: str):
    shadowed = []  # decided at the first request, once every mount is known

    def view(**path_args):
        req = request._get_current_object()  # the request itself: every read through the proxy costs a lookup
        if not shadowed:
            shadowed.append(routes(current_app).can_be_shadowed(template))
        if shadowed[0] and operation.method not in routes(current_app).documented_methods(req.path):
            # A literal path (/faults/catalogue) shadows a templated one (/faults/{ruleId}) for every method.
            raise MethodNotAllowed()
        return pipeline.handle(pipeline.Exchange(req, mount_, current_app.extensions["sandbox"], operation, handler,
                                                 path_args))

    return view


def _unrouted(exc: HTTPException):
    """No operation matched: the mount's 404 or 405 (with the spec's methods in `Allow`), journaled."""
    req = request._get_current_object()
    table = routes(current_app)
    mount_ = table.mount_for_path(req.path)
    not_found = f"No route {req.path}: check the base URL and the path against the spec (paths match as written)"
    if mount_ is None:
        message = not_found if exc.code == 404 else exc.description
        return rendering.json_response({"error": {"code": exc.code, "message": message}}, exc.code)
    headers = {}
    if exc.code == 404:
        message = not_found
    elif isinstance(exc, MethodNotAllowed):
        # The spec's methods for this path, not werkzeug's union over every rule the path matches.
        allowed = table.documented_methods(req.path)
        message = f"Method {req.method} is not allowed here; allowed: {', '.join(allowed)}"
        headers["Allow"] = ", ".join(allowed)
    else:
        message = exc.description
    error = mount_.error_for_status(exc.code, message, [], headers=headers)
    return pipeline.refuse(pipeline.Exchange(req, mount_, current_app.extensions["sandbox"]), error)


def _crash(exc: Exception):
    """A failure outside the pipeline (the pages, the proxy): a 500 in the envelope of the path's mount."""
    log.exception("unexpected failure on %s %s", request.method, request.path)
    mount_ = routes(current_app).mount_for_path(request.path)
    message = "Unexpected sandbox error; the details are in the server log"
    if mount_ is None:
        return rendering.json_response({"error": {"code": 500, "message": message}}, 500)
    return rendering.render(mount_, rendering.crash(mount_), rendering.context_of(mount_, request))
