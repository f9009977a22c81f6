"""Who may talk to the sandbox at all, decided before anything else runs (a WSGI middleware around the app).

- **Host allow-list** (the DNS-rebinding defence, as Vite's `allowedHosts` and Jupyter's local-only check): a
  request whose `Host` is not the address the sandbox listens on, `localhost`, a loopback address, or a name given
  with `--allowed-host` is refused, on every path (vendors, control API, pages, proxy, unrouted). Listening on
  every address (0.0.0.0, ::), any IP address is the sandbox's own; a name never is unless given. Everything after
  (served specs' `servers`, redirects) builds URLs from a Host that passed.
- **Cross-site requests to the control API**: a request from a web page of another origin is refused, whatever its
  method and Content-Type: its `Origin` names another host than the request's own `Host` (and not one given with
  `--cors-origin`), or, without an `Origin`, the browser's `Sec-Fetch-Site` says cross-site or same-site.
  Programs (curl, CI, the kit) send neither and pass. A POST with a body must send it as application/json, which
  no page of another origin can send without a CORS preflight.
- **CORS**: closed on the control API unless `--cors-origin` names origins; their preflights are answered and
  their responses carry `Access-Control-Allow-Origin`. Vendor routes answer clients from anywhere, as the
  vendors' APIs do.

Refusals are JSON: `{"error": {"code", "message"}}` (the control API's envelope), saying what to change.
"""
from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

_HOST = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)(?::(?P<port>\d{1,5}))?\Z")
_WILDCARDS = ("0.0.0.0", "::", "")
_BODY_METHODS = ("POST", "PUT", "PATCH")
_CORS_METHODS = "GET, POST, DELETE"
_CORS_HEADERS = "Content-Type, X-Sandbox-Admin-Token, X-Sandbox-Workspace"


class Guard:
    def __init__(self, app, settings, control_prefix: str):
        self.app = app
        self.control_prefix = control_prefix
        self.bound = _bare(settings.host.lower())
        self.names = {"localhost", self.bound} | {_bare(n.strip().lower()) for n in settings.allowed_hosts}
        self.any_address = self.bound in _WILDCARDS
        self.cors_origins = {o.strip().rstrip("/").lower() for o in settings.cors_origins}

    def __call__(self, environ, start_response):
        # No Host header at all (HTTP/1.0): the address the server was reached on; browsers always send one.
        host = environ.get("HTTP_HOST", f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}")
        if not self.host_allowed(host):
            return _refuse(start_response, 403, f"Host {host[:200]} is not this sandbox's: it answers to the address it "
                           f"listens on ({self.bound or 'every address'}), localhost, loopback addresses and the names "
                           "given with --allowed-host (env SANDBOX_ALLOWED_HOSTS); to serve this name, restart it with "
                           "--allowed-host NAME")
        if not self._control(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        origin = environ.get("HTTP_ORIGIN")
        allowed_origin = origin is not None and origin.rstrip("/").lower() in self.cors_origins
        if origin is not None and not allowed_origin and urlsplit(origin).netloc.lower() != host.lower():
            return _refuse(start_response, 403, f"Cross-site request refused: the control API answers pages of its own "
                           f"origin (http://{host[:200]}) and of the origins given with --cors-origin, not "
                           f"{origin[:200]}")
        fetch_site = environ.get("HTTP_SEC_FETCH_SITE", "")
        if origin is None and fetch_site in ("cross-site", "same-site"):
            return _refuse(start_response, 403, f"Cross-site request refused: the browser says it came from another "
                           f"site (Sec-Fetch-Site: {fetch_site[:40]}); the control API answers its own origin only")
        method = environ.get("REQUEST_METHOD", "")
        if allowed_origin and method == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            start_response("204 No Content", [*_cors(origin), ("Access-Control-Allow-Methods", _CORS_METHODS),
                                              ("Access-Control-Allow-Headers", _CORS_HEADERS),
                                              ("Access-Control-Max-Age", "600")])
            return [b""]
        media_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if method in _BODY_METHODS and _has_body(environ) and media_type != "application/json":
            return _refuse(start_response, 415, "Send the body as Content-Type: application/json (this request sent "
                           f"{media_type[:100] or 'no Content-Type'})")
        if not allowed_origin:
            return self.app(environ, start_response)

        def with_cors(status, headers, exc_info=None):
            return start_response(status, [*headers, *_cors(origin)], exc_info)

        return self.app(environ, with_cors)

    def host_allowed(self, host: str) -> bool:
        match = _HOST.match(host)
        if match is None:
            return False
        name = _bare(match["name"].lower())
        if name in self.names:
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False  # a name: only those given
        return address.is_loopback or self.any_address

    def _control(self, path: str) -> bool:
        path = re.sub("/{2,}", "/", path)  # //_sandbox/reset is routed as /_sandbox/reset
        return path == self.control_prefix or path.startswith(self.control_prefix + "/")


def _bare(name: str) -> str:
    """An IPv6 address without its brackets."""
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def _has_body(environ) -> bool:
    length = environ.get("CONTENT_LENGTH", "")
    return (length not in ("", "0")) or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()


def _cors(origin: str) -> list[tuple[str, str]]:
    return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]


def _refuse(start_response, status: int, message: str):
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    reason = {403: "FORBIDDEN", 415: "UNSUPPORTED MEDIA TYPE"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                          ("Vary", "Origin")])
    return [body]
