"""Validate an incoming request against its OpenAPI operation.

Everything checked here comes from the spec: parameter schemas, the request body schema, media types.
Messages name the field and say what to fix. A schema may carry `x-error-message` (the answer, in the vendor's
words, whenever that schema fails) and `x-error-code` (the vendor's code for it), so the spec stays the one
place where a rule, its wording and its code live.
"""
from __future__ import annotations

import json

import orjson
from jsonschema import ValidationError

from .errors import INVALID, MISSING, Problem
from .spec import Operation, Parameter

def validate_request(operation: Operation, request, path_args: dict) -> tuple[dict, object, list[Problem]]:
    """Return (parameters, body, problems). Parameters are coerced to their schema types; what is left out takes
    the spec's `default`. The body is None when absent (a JSON `null` body is validated like any value, so it never
    reaches a handler that expects an object)."""
    problems: list[Problem] = []
    params: dict = {}
    for param in operation.parameters:
        raw = _raw_parameter(param, request, path_args)
        if raw is None:
            if param.required:
                problems.append(Problem(param.location, param.name, f"{param.name} is required", kind=MISSING))
            elif param.default is not None:
                params[param.name] = param.default
            continue
        value = _coerce(raw, param.schema)
        found = _schema_problems(param.validator, value, param.location, param.name)
        problems.extend(found)
        if not found:
            params[param.name] = value
    body, body_problems = _body(operation, request)
    problems.extend(body_problems)
    if operation.body_defaults and not body_problems and (body is None or isinstance(body, dict)):
        body = {**operation.body_defaults, **(body or {})}  # the spec's defaults for what was left out
    return params, body, problems


def _raw_parameter(param: Parameter, request, path_args: dict):
    if param.location == "path":
        return path_args.get(param.name)
    if param.location == "query":
        return request.args.get(param.name)
    if param.location == "header":
        return request.headers.get(param.name)
    return None


def _coerce(raw: str, schema: dict):
    """Query, path and header values arrive as text; give them the type their schema declares."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(raw, 10)
        if kind == "number":
            return float(raw)
        if kind == "boolean" and raw in ("true", "false"):
            return raw == "true"
    except ValueError:
        pass
    return raw


def _body(operation: Operation, request) -> tuple[object, list[Problem]]:
    if not operation.body_media_types:
        return None, []
    data = request.get_data(cache=True)
    if not data:
        if operation.body_required:
            return None, [Problem("body", "", "A JSON request body is required (Content-Type: application/json)",
                                  kind=MISSING)]
        return None, []
    if request.mimetype != "application/json":
        sent = request.mimetype or "no Content-Type"
        return None, [Problem("body", "", f"Send the body as JSON with Content-Type: application/json (got {sent})")]
    try:
        body = _parse_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [Problem("body", "", f"The body is not valid JSON: {exc}")]
    except RecursionError:
        return None, [Problem("body", "", "The body nests arrays or objects too deeply to read; no documented field "
                                          "needs more than a few levels")]
    if operation.body_validator is None:
        return body, []
    return body, _schema_problems(operation.body_validator, body, "body", "")


def _parse_json(data: bytes):
    """orjson for speed, for documents without fractions or exponents. Anything else is read by the standard library
    as before: what orjson refuses (NaN, a byte-order mark, a lone surrogate) and any number it reads as a float,
    since it also reads integers beyond 64 bits that way. So what is accepted, every value, and every message stay
    the same."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _has_float(document):
            return document
    return json.loads(data, parse_float=_number)


def _has_float(document) -> bool:
    pending = [document]  # a stack, not recursion: orjson reads documents nested deeper than Python recurses
    while pending:
        value = pending.pop()
        if isinstance(value, float):
            return True
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _number(text: str):
    """JSON Schema counts 130.0 as an integer; hand handlers an int for it, so they never see 130.0 as a count."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _schema_problems(validator, value, location: str, name: str) -> list[Problem]:
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(e.absolute_path), e.validator))
    return [_problem(error, location, name) for error in errors]


def _problem(error: ValidationError, location: str, name: str) -> Problem:
    path = [str(part) for part in error.absolute_path]
    field = ".".join([name, *path] if name else path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = MISSING if error.validator in ("required", "dependentRequired") else INVALID
    return Problem(location, *_describe(error, field, schema.get("x-error-message")), code=schema.get("x-error-code"),
                   kind=kind)


def _describe(error: ValidationError, field: str, custom: str | None) -> tuple[str, str]:
    """Turn a jsonschema error into (field, a sentence that says what to fix)."""
    v, schema, instance = error.validator, error.schema, error.instance
    subject = field or "The body"
    if custom:
        # A message shared by several fields ("must be ...") gets the field's name; any other is used as written.
        return field, f"{subject} {custom}" if custom.startswith("must ") else custom
    if v == "required":
        missing = error.message.split("'")[1]
        full = f"{field}.{missing}" if field else missing
        return full, f"{full} is required"
    if v == "additionalProperties":
        allowed = ", ".join(schema.get("properties", {})) or "none"
        extra = ", ".join(sorted(set(instance) - set(schema.get("properties", {}))))
        return field, f"Unknown field(s) {extra} in {field or 'the body'}; allowed fields: {allowed}"
    if v == "dependentRequired":
        for trigger, needed in schema["dependentRequired"].items():
            if trigger in instance:
                for other in needed:
                    if other not in instance:
                        return other, f"{other} is required when {trigger} is sent; send both together"
    if v == "minProperties":
        allowed = ", ".join(schema.get("properties", {}))
        return field, f"{subject} is empty; send at least one of: {allowed}"
    if v == "type":
        expected = schema["type"] if isinstance(schema["type"], str) else " or ".join(schema["type"])
        return field, f"{subject} must be of type {expected}, not {_json_type(instance)}"
    if v == "enum":
        return field, f"{subject} must be one of: {', '.join(map(str, schema['enum']))}"
    return field, f"{subject}: {error.message}"


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
