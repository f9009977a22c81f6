"""House rules for our specs, beyond what openapi-spec-validator checks.

Every operation has an operationId and a summary; every documented status has a schema and an example; every
example obeys its schema; no response schema is a composition (allOf/anyOf/oneOf) at its root, which code generators
type as one branch only (openapi-python-client made the by-user-email response's member an untyped dict).
No text is split by an unquoted comma in a flow mapping. `problems(document)` lists what breaks them. `unnamed_envelopes(document)` lists the success responses whose schema
is not a named one (`#/components/schemas/...`): the vendor specs name every envelope, so generated clients get a
model of that name.
"""
from __future__ import annotations

from jsonschema import Draft202012Validator

from ..core.spec import HTTP_METHODS, resolve


def problems(document: dict) -> list[str]:
    found = [f"{where}: a key that reads as a sentence holds nothing ({key!r}): a comma in an unquoted flow mapping "
             "value ends the value there; quote the text" for where, key in _split_sentences(document, "")]
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            where = f"{method.upper()} {path}"
            for key in ("operationId", "summary"):
                if not operation.get(key):
                    found.append(f"{where}: no {key}")
            if "requestBody" in operation:
                found += _media_problems(document, resolve(document, operation["requestBody"]), f"{where} request")
            for status, response in operation.get("responses", {}).items():
                response = resolve(document, response)
                if not response.get("content"):
                    found.append(f"{where} {status}: no content schema")
                found += _media_problems(document, response, f"{where} {status}")
                for media_type, media in response.get("content", {}).items():
                    composed = set(resolve(document, media.get("schema") or {})) & {"allOf", "anyOf", "oneOf"}
                    if composed:
                        found.append(f"{where} {status} {media_type}: the schema is a {'/'.join(sorted(composed))} at "
                                     "its root; name the envelope with all its properties instead")
    return found


def _split_sentences(node, where: str):
    """(where, key) of every key with a space in it and no value: `{description: A, b or c.}` is {description: A,
    "b or c.": null} to every YAML reader (Redocly's struct rule found four in specs/sandbox.yaml)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and isinstance(key, str) and " " in key:
                yield where or "/", key
            yield from _split_sentences(value, f"{where}/{key}")
    elif isinstance(node, list):
        for number, value in enumerate(node):
            yield from _split_sentences(value, f"{where}/{number}")


def unnamed_envelopes(document: dict) -> list[str]:
    """The success JSON responses whose schema is written inline instead of referring to a named schema."""
    found = []
    for path, item in document.get("paths", {}).items():
        for method in HTTP_METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                schema = resolve(document, response).get("content", {}).get("application/json", {}).get("schema")
                if str(status).startswith("2") and schema is not None and "$ref" not in schema:
                    found.append(f"{method.upper()} {path} {status}")
    return found


def _media_problems(document: dict, body: dict, where: str) -> list[str]:
    found = []
    for media_type, media in body.get("content", {}).items():
        schema = media.get("schema")
        if schema is None:
            found.append(f"{where} {media_type}: no schema")
            continue
        examples = [resolve(document, e)["value"] for e in media.get("examples", {}).values()]
        if "example" in media:
            examples.append(media["example"])
        if not examples:
            found.append(f"{where} {media_type}: no example")
        validator = Draft202012Validator({**schema, "components": document.get("components", {})})
        for example in examples:
            for error in validator.iter_errors(example):
                found.append(f"{where} {media_type}: example breaks its schema: {error.message}")
    return found
