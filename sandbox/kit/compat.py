"""`run.py compat OLD NEW`: the breaking changes between two versions of a spec, for a CI gate.

No maintained diff tool installs here (oasdiff and openapi-changes are Go binaries fetched at install time), so
this checks the changes that break an existing client, operation by operation:
- an operation or a documented response removed;
- a new required parameter or body field, or an optional one made required;
- a request value narrowed: a type or enum value dropped, a lower maximum/maxLength/maxItems, a higher
  minimum/minLength/minItems, a new or changed pattern, unknown fields newly refused;
- a response field a client may rely on removed (no longer required, or gone).
Exit status 1 when anything is breaking.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from ..arguments import Parser, is_openapi, yaml_file
from ..core.spec import HTTP_METHODS, resolve

TIGHTER_WHEN_LOWER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
TIGHTER_WHEN_HIGHER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")


class Diff:
    def __init__(self, old: dict, new: dict):
        self.old, self.new = old, new
        self.breaking: list[str] = []

    def run(self) -> list[str]:
        for path, old_item in self.old.get("paths", {}).items():
            new_item = self.new.get("paths", {}).get(path, {})
            for method in HTTP_METHODS:
                if method not in old_item:
                    continue
                where = f"{method.upper()} {path}"
                if method not in new_item:
                    self.breaking.append(f"{where}: operation removed")
                    continue
                self._operation(where, old_item, old_item[method], new_item, new_item[method])
        return self.breaking

    def _operation(self, where, old_item, old_op, new_item, new_op):
        old_params = self._parameters(self.old, old_item, old_op)
        for key, new_param in self._parameters(self.new, new_item, new_op).items():
            old_param = old_params.get(key)
            if old_param is None:
                if new_param.get("required"):
                    self.breaking.append(f"{where}: new required {key[1]} parameter {key[0]}")
                continue
            if new_param.get("required") and not old_param.get("required"):
                self.breaking.append(f"{where}: {key[1]} parameter {key[0]} is now required")
            self._request_schema(f"{where} {key[1]} {key[0]}", old_param.get("schema", {}), new_param.get("schema", {}))
        old_body = self._json_schema(self.old, old_op.get("requestBody"))
        new_body = self._json_schema(self.new, new_op.get("requestBody"))
        if new_body is not None:
            if old_body is None and _resolve(self.new, new_op["requestBody"]).get("required"):
                self.breaking.append(f"{where}: a request body is now required")
            elif old_body is not None:
                self._request_schema(f"{where} body", old_body, new_body)
        for status, old_response in old_op.get("responses", {}).items():
            new_response = new_op.get("responses", {}).get(status)
            if new_response is None:
                self.breaking.append(f"{where}: response {status} removed")
                continue
            old_schema = self._json_schema(self.old, old_response)
            new_schema = self._json_schema(self.new, new_response)
            if old_schema is not None and new_schema is not None:
                self._response_schema(f"{where} {status}", old_schema, new_schema)

    # -- schemas -------------------------------------------------------------------------------------------
    def _request_schema(self, where, old, new, depth=0):
        old, new = _resolve(self.old, old), _resolve(self.new, new)
        if depth > 12:
            return
        old_types, new_types = _types(old), _types(new)
        if old_types and new_types and not old_types <= new_types:
            self.breaking.append(f"{where}: type narrowed from {sorted(old_types)} to {sorted(new_types)}")
        if "enum" in new and set(map(repr, old.get("enum", new["enum"]))) - set(map(repr, new["enum"])):
            self.breaking.append(f"{where}: enum values removed")
        for key in TIGHTER_WHEN_LOWER:
            if key in new and (key not in old or new[key] < old[key]):
                self.breaking.append(f"{where}: {key} tightened to {new[key]}")
        for key in TIGHTER_WHEN_HIGHER:
            if key in new and (key not in old or new[key] > old[key]):
                self.breaking.append(f"{where}: {key} tightened to {new[key]}")
        if "pattern" in new and new.get("pattern") != old.get("pattern"):
            self.breaking.append(f"{where}: pattern changed")
        if new.get("additionalProperties") is False and old.get("additionalProperties") is not False:
            self.breaking.append(f"{where}: unknown fields are now refused")
        for name in set(new.get("required", [])) - set(old.get("required", [])):
            self.breaking.append(f"{where}: field {name} is now required")
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        new_patterns = new.get("patternProperties", {})
        for name in old_props:
            # A field taken out of `properties` may still be accepted under a pattern (an alias kept out of
            # generated models, as Returning.AI's statusID): then it is compared with that pattern's schema.
            kept = new_props.get(name, next((schema for pattern, schema in new_patterns.items()
                                             if re.search(pattern, name)), None))
            if kept is None and new.get("additionalProperties") is False:
                self.breaking.append(f"{where}: field {name} removed")
            elif kept is not None:
                self._request_schema(f"{where}.{name}", old_props[name], kept, depth + 1)
        for pattern, schema in old.get("patternProperties", {}).items():
            if pattern in new_patterns:
                self._request_schema(f"{where}.{pattern}", schema, new_patterns[pattern], depth + 1)
            elif new.get("additionalProperties") is False:
                self.breaking.append(f"{where}: fields matching {pattern} removed")
        if "items" in old and "items" in new:
            self._request_schema(f"{where}[]", old["items"], new["items"], depth + 1)

    def _response_schema(self, where, old, new, depth=0):
        old, new = _resolve(self.old, old), _resolve(self.new, new)
        if depth > 12:
            return
        for name in set(old.get("required", [])) - set(new.get("required", [])):
            self.breaking.append(f"{where}: response field {name} is no longer guaranteed")
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name in set(old_props) & set(new_props):
            self._response_schema(f"{where}.{name}", old_props[name], new_props[name], depth + 1)
        if "items" in old and "items" in new:
            self._response_schema(f"{where}[]", old["items"], new["items"], depth + 1)

    # -- helpers -------------------------------------------------------------------------------------------
    @staticmethod
    def _parameters(document: dict, item: dict, op: dict) -> dict:
        params = {}
        for param in [*item.get("parameters", []), *op.get("parameters", [])]:
            param = _resolve(document, param)
            params[(param["name"].lower(), param["in"])] = param
        return params

    @staticmethod
    def _json_schema(document: dict, node):
        node = _resolve(document, node or {})
        return node.get("content", {}).get("application/json", {}).get("schema")


def _resolve(document: dict, node):
    """Follow $refs within the document the node came from; a reference that leads nowhere is an empty schema
    (the versions compared may be drafts), not an error."""
    try:
        return resolve(document, node)
    except (KeyError, TypeError, ValueError):
        return {}


def _types(schema: dict) -> set[str]:
    kind = schema.get("type")
    if kind is None:
        return set()
    kinds = {kind} if isinstance(kind, str) else set(kind)
    return kinds | ({"integer"} if "number" in kinds else set())


def main(argv) -> int:
    parser = Parser(
        prog=f"{Path(sys.argv[0]).name} compat",
        description="List the changes from OLD to NEW that break an existing client (removed operations or "
                    "responses; new required parameters or fields; narrowed types, enums, limits or patterns; "
                    "response fields no longer guaranteed). Exit status 1 if there is any, 0 otherwise.",
        epilog="example: run.py compat specs/released/fabric.yaml specs/fabric.yaml")
    parser.add_argument("old", type=yaml_file, metavar="OLD",
                        help="the spec clients were written against (YAML or JSON)")
    parser.add_argument("new", type=yaml_file, metavar="NEW", help="the spec about to be released")
    args = parser.parse_args(argv)
    for spec in (args.old, args.new):
        if not is_openapi(spec.data):
            parser.error(f"{spec.path} is not an OpenAPI document (no openapi field, or paths that are not a mapping)")
    found = Diff(args.old.data, args.new.data).run()
    for change in found:
        print(f"BREAKING {change}")
    print(f"{len(found)} breaking change(s) from {args.old.path} to {args.new.path}")
    return 1 if found else 0
