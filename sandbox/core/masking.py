"""What is secret, in one place, and how a secret is shown where it must not be kept: the journal and the logs.

Read from the specs where they mark it: the header of every security scheme (`Authorization` for http schemes, the
named header for apiKey schemes), and every body or response field whose schema says `format: password` (Capillary's
OAuth `secret` and `accessToken`). To those, the headers and query parameters that carry credentials in any API
(proxies, cookies, API keys, the control API's admin token). A masked value keeps no character of the secret: only
the scheme word of an Authorization header and a 6-hex-digit fingerprint, enough to tell two credentials apart.
"""
from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote_plus

import orjson

HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token",
           "x-sandbox-admin-token"}
QUERY_PARAMETERS = {"sig", "auth", "authorization"}
# A query parameter whose name (any case, `-` or `_`) holds one of these is a credential too: `access_token`,
# `admin_token`, `X-Sandbox-Admin-Token`, `api_key`, `client_secret`. No parameter of the vendors' specs matches.
CREDENTIAL_WORDS = ("token", "secret", "key", "password", "passwd", "signature", "credential", "session")
_SCHEMES = {"basic", "bearer", "digest", "token"}


def mask(value: str) -> str:
    """`Bearer ‹secret 3f2a1c›`: the scheme word, if any, and a fingerprint; nothing of the secret itself."""
    scheme, _, rest = value.partition(" ")
    prefix = scheme + " " if rest and scheme.lower() in _SCHEMES else ""
    secret = rest if prefix else value
    return f"{prefix}‹secret {hashlib.sha256(secret.encode('utf-8', 'replace')).hexdigest()[:6]}›"


class Secrets:
    """The secret header, field and query-parameter names of a set of specs."""

    def __init__(self, headers=(), fields=()):
        self.headers = HEADERS | {h.lower() for h in headers}
        self.fields = set(fields)
        self._needles = [f'"{name}"' for name in self.fields]

    @classmethod
    def of(cls, documents) -> "Secrets":
        headers, fields = set(), set()
        for document in documents:
            for scheme in document.get("components", {}).get("securitySchemes", {}).values():
                if scheme.get("type") == "http":
                    headers.add("authorization")
                elif scheme.get("type") == "apiKey" and scheme.get("in") == "header":
                    headers.add(scheme["name"])
            fields |= _password_fields(document)
        return cls(headers, fields)

    def headers_of(self, headers) -> dict:
        return {k: (mask(v) if k.lower() in self.headers else v) for k, v in headers}

    def query_of(self, full_path: str) -> str:
        path, sep, query = full_path.partition("?")
        if not query:
            return path
        parts = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            secret = eq and secret_query_parameter(unquote_plus(name))  # access%5Ftoken is access_token
            parts.append(f"{name}={mask(value)}" if secret else pair)
        return path + sep + "&".join(parts)

    def body_of(self, text: str) -> str:
        """A JSON body with every secret field's value masked (the text as it came when it holds none). A key can
        hide behind escapes (\\u0073ecret), so a body with a backslash is parsed too; one nested too deeply to mask
        (validation refuses it anyway) is not shown at all."""
        if "\\" not in text and not any(needle in text for needle in self._needles):
            return text
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        try:
            return json.dumps(self._masked(document), ensure_ascii=False)
        except RecursionError:
            return "‹body not shown: nested too deeply to mask›"

    def _masked(self, value):
        if isinstance(value, dict):
            return {k: (mask(str(v)) if k in self.fields and not isinstance(v, (dict, list)) else self._masked(v))
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._masked(v) for v in value]
        return value


def secret_query_parameter(name: str) -> bool:
    name = name.lower()
    return name in QUERY_PARAMETERS or any(word in name for word in CREDENTIAL_WORDS)


def _password_fields(node) -> set[str]:
    found = set()
    pending = [node]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            for name, schema in (node.get("properties") or {}).items():
                if isinstance(schema, dict) and schema.get("format") == "password":
                    found.add(name)
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
