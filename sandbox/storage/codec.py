"""JSON text for the stores and the wire: orjson where it can, the standard library where orjson refuses.

orjson is several times faster than `json` both ways, but it refuses integers beyond 64 bits and reads them back
as floats. A client may send such a number in a field the spec leaves unbounded, so those documents are written
by `json` instead, with a leading space (still valid JSON, also to SQLite's json functions) that tells `decode`
to read them back with `json` too.
"""
from __future__ import annotations

import json

import orjson

_FALLBACK_MARK = " "


def encode(value) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return _FALLBACK_MARK + json.dumps(value, ensure_ascii=False)


def decode(text: str | bytes):
    if text[:1] in (_FALLBACK_MARK, b" "):
        return json.loads(text)
    return orjson.loads(text)


def wire(value) -> bytes:
    """A response body."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False).encode()
