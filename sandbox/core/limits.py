"""How large one request may be: the URL, the headers, the body (issue 14).

Every bound is far beyond what a documented request needs (the longest documented parameter is 254 characters, the
largest documented body a few KB) and is set in `Settings` (run.py --max-body-bytes, --max-import-bytes). A request
beyond one is refused before its body is read, in the envelope of the API it was sent to: 414 for the URL, 431 for
the headers, 413 for the body. A body sent chunked (no Content-Length) is read up to the bound and no further.

Beyond these, the server refuses on its own before the sandbox sees the request (gunicorn: a request line over 8,190
bytes, a header over 8,190 bytes, over 100 headers); run.py makes those answers JSON too (`serve`).
"""
from __future__ import annotations

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

_BODY_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")  # the two headers WSGI names without HTTP_


def body_limit(settings, operation) -> int:
    """By the operation the request names (None: none), as the server (sandbox/serving/bridge.py) decides before
    the app sees it: a whole exported world (POST /_sandbox/state/import) may be far larger than any vendor body."""
    return settings.max_import_bytes if operation is not None and operation.exported_state else settings.max_body_bytes


def refusal(request: Request, settings, operation=None) -> tuple[int, str] | None:
    """(status, what to change) when the request to `operation` (None: no documented one) is beyond a limit, else
    None."""
    environ = request.environ
    url = len(environ.get("PATH_INFO", "").encode("latin-1", "replace")) + len(environ.get("QUERY_STRING", ""))
    if url > settings.max_url_bytes:
        return 414, (f"The URL is {url} bytes long; at most {settings.max_url_bytes} are accepted. No documented "
                     "parameter needs more than a few hundred: check what the client puts in the path and query")
    count = size = 0
    for name, value in environ.items():
        if name.startswith("HTTP_") or name in _BODY_HEADERS:
            count += 1
            size += len(name) + len(value)
    if count > settings.max_headers:
        return 431, f"The request has {count} headers; at most {settings.max_headers} are accepted"
    if size > settings.max_header_bytes:
        return 431, (f"The request's headers are {size} bytes; at most {settings.max_header_bytes} are accepted: "
                     "send shorter header values")
    limit = body_limit(settings, operation)
    if request.content_length is not None and request.content_length > limit:
        return 413, too_large(limit)
    if request.content_length is None:
        # A chunked body: read through a stream that raises RequestEntityTooLarge once it passes the limit (the
        # server's own input stream is "terminated", so werkzeug would read it whole).
        environ["wsgi.input"] = _BoundedInput(environ["wsgi.input"], limit)
    return None


class _BoundedInput(LimitedStream):
    """Reads a body of unknown length and raises RequestEntityTooLarge as soon as it passes `limit` bytes, so
    no more than limit + 1 bytes are ever held (werkzeug's own LimitedStream would stop there silently)."""

    def __init__(self, stream, limit: int):
        super().__init__(stream, limit + 1, is_max=True)
        self.bound = limit

    def readinto(self, buffer) -> int | None:
        read = super().readinto(buffer)
        if self.tell() > self.bound:
            raise RequestEntityTooLarge()
        return read


def too_large(limit: int) -> str:
    return f"The body is larger than {limit:,} bytes, the most this endpoint accepts: send a smaller body"
