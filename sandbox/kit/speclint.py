"""House rules for our specs, beyond what openapi-spec-validator checks.

Every operation has an operationId and a summary; every documented status has a schema and an example; every
example obeys its schema. `problems(document)` lists what breaks them.
"""
from __future__ import annotations

from jsonschema import Draft202012Validator

from ..core.spec import HTTP_METHODS, resolve


def problems(document: dict) -> list[str]:
    found = []
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
