"""The validation proxy: forwards a partner's traffic to a real server and records whether each exchange conforms.

Mounted at /proxy/<spec>/... when the sandbox is started with `run.py proxy --spec <vendor> --upstream <url>`.
Each exchange is forwarded as it is (a non-conforming request still reaches the upstream) and lands in the
journal under vendor `proxy:<spec>`, with what failed and where; `GET /_sandbox/proxy/findings` lists them.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request

from flask import Blueprint, Response, current_app, request

from ..core.clock import iso_millis, wall_now_iso
from ..core.rendering import json_response
from ..core.journal import journal_entry, sent_part
from ..core.spec import template_regex
from ..core.validation import validate_request

bp = Blueprint("proxy", __name__)
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length",
              "proxy-authorization", "proxy-authenticate"}


@bp.route("/proxy/<spec_name>/", defaults={"rest": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/proxy/<spec_name>/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def forward(spec_name: str, rest: str):
    sandbox = current_app.extensions["sandbox"]
    upstream = sandbox.settings.proxies.get(spec_name)
    if upstream is None:
        return _own_error(404, f"No proxy for {spec_name}; start with run.py proxy --spec {spec_name} --upstream <url>")
    started = time.perf_counter()
    spec = sandbox.specs[spec_name]
    path = "/" + rest
    operation, path_args = _operation(spec, request.method, path)
    problems = []
    if operation is None:
        problems.append(f"request: {request.method} {path} is not an operation of {spec_name}")
    else:
        _, _, found = validate_request(operation, request, path_args)
        problems += [f"request {p.location} {p.field or '(whole)'}: {p.message}" for p in found]
    response = _send(upstream.rstrip("/") + path, request.query_string.decode())
    if operation is not None:
        problems += _response_problems(operation, response)
    entry = journal_entry(sent_part(request, request.get_data(), sandbox.secrets), response, f"proxy:{spec_name}", operation.operation_id if operation else None,
                          "conforms" if not problems else "violations", (time.perf_counter() - started) * 1000,
                          wall_now_iso(), iso_millis(sandbox.default.clock.now()), sandbox.secrets)
    sandbox.default.journal.record({**entry, "findings": bounded(problems)})
    return response


FINDINGS_LIMIT = 20  # findings kept per exchange (a body with thousands of bad fields says so in one line more)


def bounded(problems: list[str]) -> list[str]:
    if len(problems) <= FINDINGS_LIMIT:
        return problems
    return problems[:FINDINGS_LIMIT] + [f"... and {len(problems) - FINDINGS_LIMIT} more"]


def _operation(spec, method: str, path: str):
    for operation in spec.operations:
        if operation.method != method:
            continue
        match = template_regex(operation.path).match(path)
        if match:
            return operation, match.groupdict()
    return None, {}


def _send(url: str, query: str) -> Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    outgoing = urllib.request.Request(url + (f"?{query}" if query else ""), data=request.get_data() or None,
                                      headers=headers, method=request.method)
    try:
        with urllib.request.urlopen(outgoing, timeout=30) as upstream:
            return _relay(upstream.status, upstream.headers, upstream.read())
    except urllib.error.HTTPError as failed:
        return _relay(failed.code, failed.headers, failed.read())
    except (urllib.error.URLError, OSError) as unreachable:
        return _own_error(502, f"Upstream unreachable: {unreachable}")


def _own_error(status: int, message: str) -> Response:
    """The proxy's own refusal (the upstream never answered), in the control API's envelope like every answer of
    the sandbox's own."""
    return json_response({"error": {"code": status, "message": message}}, status)


def _relay(status: int, headers, body: bytes) -> Response:
    kept = [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]
    return Response(body, status=status, headers=kept)


def _response_problems(operation, response: Response) -> list[str]:
    """The spec's verdict on the answer (operation.response_problems), once the body is known to be the JSON the
    spec documents for its status."""
    status = response.status_code
    body = None
    if operation.documents_status(status) and operation.response_validator(status) is not None:
        if response.mimetype != "application/json":
            return [f"response: Content-Type {response.mimetype or 'none'} where application/json is documented"]
        try:
            body = response.get_json(force=True)
        except Exception:  # noqa: BLE001 - any parse failure is the finding itself
            return ["response: the body is not valid JSON"]
    return [f"response {problem}" for problem in operation.response_problems(status, body)]
