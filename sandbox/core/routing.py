"""A mount's spec turned into Flask routes, and the answer to a request no operation matches (404, 405).

Every operation of the spec becomes one route per server base path, whose view hands the request to
`pipeline.handle`. Which methods a path allows (the `Allow` of a 405) is what the specs document for it: when a
literal path (/faults/catalogue) shadows a templated one (/faults/{ruleId}), the literal one's methods only.
"""
from __future__ import annotations

import logging
import re

from flask import Flask, current_app, request
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
    def __init__(self, template: str, method: str):
        self.template = template
        self.method = method
        self.regex = template_regex(template)
        self.literal_segments = literal_segments(template)


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
            table.paths.append(_PathTemplate(base + operation.path, operation.method))
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
    """Refuse a request beyond the size limits before anything reads its body, in the envelope of its mount."""
    req = request._get_current_object()
    sandbox = current_app.extensions["sandbox"]
    refused = limits.refusal(req, sandbox.settings)
    if refused is None:
        return None
    status, message = refused
    mount_ = routes(current_app).mount_for_path(req.path)
    if mount_ is None:
        return rendering.json_response({"error": {"code": status, "message": message}}, status)
    return pipeline.refuse(pipeline.Exchange(req, mount_, sandbox), mount_.error_for_status(status, message, []))


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
    if mount_ is None:
        return rendering.json_response({"error": {"code": exc.code, "message": exc.description}}, exc.code)
    headers = {}
    if exc.code == 404:
        message = f"No route {req.path}: check the base URL and the path against the spec"
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
