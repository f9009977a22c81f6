"""One call to a sandbox's control API (specs/sandbox.yaml) over HTTP, with the standard library: what
`run.py verify` and sandbox.testing send, to a sandbox in this process or one running elsewhere."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from sandbox.app import WORKSPACE_HEADER
from sandbox.control.auth import ADMIN_HEADER


def control_call(base_url: str, method: str, path: str, body=None, admin_token: str | None = None,
                 workspace: str | None = None, timeout: float = 60) -> tuple[int, str]:
    """The status and body text of `method path` (path from the host: /_sandbox/...), `body` sent as JSON, in the
    given workspace (None: the default world). An error status is an answer like any other; a sandbox that does not
    answer raises urllib's URLError (or OSError)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if admin_token:
        headers[ADMIN_HEADER] = admin_token
    if workspace:
        headers[WORKSPACE_HEADER] = workspace
    request = urllib.request.Request(base_url.rstrip("/") + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
