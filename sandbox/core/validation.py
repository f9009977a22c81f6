"""Validate an incoming request against its OpenAPI operation.

Everything checked here comes from the spec: parameter schemas, the request body schema, media types.
Messages name the field and say what to fix. A schema may carry `x-error-message` (the answer, in the vendor's
words, whenever that schema fails) and `x-error-code` (the vendor's code for it), so the spec stays the one
place where a rule, its wording and its code live.
"""
from __future__ import annotations

import json
import math
import re

import orjson
from jsonschema import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

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
    """Query, path and header values arrive as text; give them the type their schema declares. Numbers are read as
    JSON spells them (ASCII digits only: no Unicode digits, underscores, spaces or signs int() would accept)."""
    kind = schema.get("type")
    if kind == "integer":
        value = ascii_integer(raw)
        return raw if value is None else value
    if kind == "number" and _NUMBER.fullmatch(raw):
        value = float(raw)
        return value if math.isfinite(value) else raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def ascii_integer(text: str) -> int | None:
    """The whole number `text` spells in ASCII digits (an optional minus, at most 19 digits), else None."""
    return int(text) if _INTEGER.fullmatch(text) else None


_INTEGER = re.compile(r"-?[0-9]{1,19}", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]{1,19}(\.[0-9]{1,19})?([eE][-+]?[0-9]{1,3})?", re.ASCII)


def _body(operation: Operation, request) -> tuple[object, list[Problem]]:
    if not operation.body_media_types:
        return None, []
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise
    except Exception as exc:  # noqa: BLE001 - the server's reader failed on the framing (a bad chunk size, ...)
        return None, [Problem("body", "", f"The body could not be read ({type(exc).__name__}); check Content-Length "
                                          "or the chunked encoding")]
    if not data:
        if operation.body_required:
            return None, [Problem("body", "", "A JSON request body is required (Content-Type: application/json)",
                                  kind=MISSING)]
        return None, []
    if request.mimetype != "application/json":
        sent = request.mimetype or "no Content-Type"
        return None, [Problem("body", "", f"Send the body as JSON with Content-Type: application/json (got {sent})")]
    exported = operation.exported_state
    try:
        body = parse_json(data, exported)
    except Unreadable as exc:
        return None, [Problem("body", exc.field, str(exc))]
    except (ValueError, UnicodeDecodeError) as exc:
        return None, [Problem("body", "", f"The body is not valid JSON: {exc}")]
    except RecursionError:
        return None, [Problem("body", "", _too_deep(exported))]
    if operation.body_validator is None:
        return body, []
    if len(data) > LARGE_BODY:
        compiled = operation.body_validator.compiled_errors(body, MOST_PROBLEMS)
        if compiled is not None:
            return body, [_compiled_problem(error) for error in compiled]
    return body, _schema_problems(operation.body_validator, body, "body", "")


# A body beyond the largest a vendor accepts (1 MiB by default: only a whole-world import is larger) is judged by the
# compiled validator alone, so a refused import costs what an accepted one does; at most MOST_PROBLEMS are listed.
LARGE_BODY = 1024 * 1024
MOST_PROBLEMS = 20


def _compiled_problem(error) -> Problem:
    field = ".".join(str(part) for part in error.instance_path)
    missing = type(error.kind).__name__ == "Required"
    return Problem("body", field, f"{field}: {error.message}" if field else error.message,
                   kind=MISSING if missing else INVALID)


# Strict JSON: what the standard library would let through but a field cannot hold.
MAX_DEPTH = 32  # far below what the parsers and the validator recurse to; no documented body nests beyond 6
# An exported state (the spec's `x-sandbox-exported-state`) holds each record as stored, under
# collections.<name>.<key>:
# a record kept from a vendor body that nests to MAX_DEPTH sits 3 levels further down than the body's top.
EXPORTED_DEPTH = MAX_DEPTH + 3


def _too_deep(exported: bool) -> str:
    return (f"The body nests arrays or objects more than {EXPORTED_DEPTH if exported else MAX_DEPTH} levels deep; "
            "no documented field needs more than a few levels")


class Unreadable(ValueError):
    """JSON the standard library reads but no field can hold: NaN or Infinity (not JSON), a number beyond a double,
    a lone UTF-16 surrogate (not Unicode), or nesting deeper than MAX_DEPTH. (Range checks are the schemas' job,
    but every one of them is false for NaN.)"""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def parse_json(data: bytes, exported: bool = False):
    """orjson for speed, for documents without fractions or exponents; it refuses NaN, Infinity and lone surrogates.
    Anything else is read by the standard library with those refused too, and any number orjson reads as a float,
    since it also reads integers beyond 64 bits that way. An exported state (`exported`) keeps its numbers as
    written (5000.0 stays a float: its records come back exactly as they were exported) and may nest to
    EXPORTED_DEPTH."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        if not _inspect(document, strings=False, exported=exported):
            return document
    document = json.loads(data, parse_float=_finite if exported else _number, parse_constant=_constant)
    _inspect(document, strings=True, exported=exported)
    return document


def _inspect(document, strings: bool, exported: bool) -> bool:
    """Whether the document holds a float; refuses nesting beyond MAX_DEPTH (an exported state's: EXPORTED_DEPTH)
    and (with `strings`) lone surrogates.
    A stack, not recursion: orjson reads documents nested deeper than Python recurses."""
    has_float = False
    pending = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (dict, list)):
            if depth >= (EXPORTED_DEPTH if exported else MAX_DEPTH):
                raise Unreadable(_too_deep(exported))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if strings and isinstance(key, str):
                    _unicode(key)
                pending.append((item, depth + 1))
        elif isinstance(value, float):
            has_float = True
        elif strings and isinstance(value, str):
            _unicode(value)
    return has_float


def _unicode(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Unreadable(f"The body holds a lone UTF-16 surrogate in {text[:40]!r}, which is not Unicode; "
                             "send valid UTF-8 text") from None


def _constant(name: str):
    raise Unreadable(f"The body holds {name}, which JSON does not allow: send a finite number")


def _number(text: str):
    """JSON Schema counts 130.0 as an integer; hand handlers an int for it, so they never see 130.0 as a count."""
    value = _finite(text)
    return int(value) if value.is_integer() and abs(value) < 2**63 else value


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise Unreadable(f"The body holds the number {text[:30]}, beyond what a field can hold: send a finite number")
    return value


def body_problems(operation: Operation, body) -> list[Problem]:
    """What the operation's body schema finds wrong with a body given as a value (not read from a request): run.py
    --faults checks each rule of its file as POST /_sandbox/faults would."""
    return [] if operation.body_validator is None else value_problems(operation.body_validator, body)


def value_problems(validator, value) -> list[Problem]:
    """What a schema (Spec.validator) finds wrong with a value, in the words a 400 uses (a scenario's steps)."""
    return _schema_problems(validator, value, "body", "")


def _schema_problems(validator, value, location: str, name: str) -> list[Problem]:
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(e.absolute_path), e.validator))
    return [_problem(error, location, name) for error in errors]


def _problem(error: ValidationError, location: str, name: str) -> Problem:
    path = [str(part) for part in error.absolute_path]
    field = ".".join([name, *path] if name else path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = MISSING if error.validator in ("required", "dependentRequired") else INVALID
    custom = schema.get("x-error-message")
    hint = schema.get("x-error-hint", "")
    if custom and not hint and error.validator not in _COMBINING:
        hint = _describe(error, field, None)[1]
    return Problem(location, *_describe(error, field, custom), code=schema.get("x-error-code"), kind=kind, hint=hint)


# Errors of a combination of schemas, whose plain description restates the whole value: their hint is the spec's.
_COMBINING = ("oneOf", "anyOf", "allOf", "not", "if", "then", "else")


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
