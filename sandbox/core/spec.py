"""Load an OpenAPI 3.1 document and index its operations.

The spec is the single source of truth: routing, request validation and response checks are all built
from what this module reads, so no path, field or limit is restated in Python.
"""
from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import yaml

import jsonschema_rs
from jsonschema import Draft202012Validator

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it


class PortableLoader(_LOADER):
    """YAML that every tool reads the same way. PyYAML reads YAML 1.1; JavaScript tools (Spectral, Prism, Postman)
    and ruamel (openapi-python-client) read 1.2 or refuse what PyYAML lets through. So a spec may hold no duplicate
    key (PyYAML silently keeps the last; others refuse the file), no merge key (`<<`, 1.1 only: 1.2 readers keep it
    as a property), and no plain scalar the two versions read differently (`yes`, `on`, unquoted dates, `0777`,
    `1_000`, `1e3`, ...): quote it. Specs are loaded with it, so a spec that breaks this does not start."""


_YAML = "tag:yaml.org,2002:"
_CORE_SCHEMA = {  # YAML 1.2's core schema: how a 1.2 reader resolves a plain scalar
    "null": re.compile(r"~|null|Null|NULL|"),
    "bool": re.compile(r"true|True|TRUE|false|False|FALSE"),
    "int": re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"),
    "float": re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.nan|\.NaN|\.NAN"),
}


def _portable_scalar(node) -> None:
    if node.style:  # quoted or block text: a string to every reader (plain is None or "", by parser)
        return
    kind = node.tag.removeprefix(_YAML)
    core = next((k for k, pattern in _CORE_SCHEMA.items() if pattern.fullmatch(node.value)), "str")
    if core == "int" and re.fullmatch(r"[-+]?0[0-9]+", node.value):
        kind, core = "an octal int", "a decimal int"  # 1.1 reads a leading zero as octal
    if kind != core:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is read as {kind} by YAML 1.1 (PyYAML) and as {core} by YAML 1.2 readers "
                        "(Spectral, Prism, Postman, openapi-python-client): quote it", node.start_mark)


def _portable_map(loader, node):
    seen = set()
    for key_node, value_node in node.value:
        if key_node.tag == _YAML + "merge":
            raise yaml.constructor.ConstructorError(
                None, None, "a merge key (<<) is YAML 1.1 only: YAML 1.2 readers keep it as a property; write the "
                            "keys out or share them through $ref", key_node.start_mark)
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"duplicate key {key!r}: PyYAML keeps the last silently, "
                                                            "other readers refuse the file", key_node.start_mark)
        seen.add(key)
        for scalar in (key_node, value_node):
            if isinstance(scalar, yaml.ScalarNode):
                _portable_scalar(scalar)
    yield from yaml.constructor.SafeConstructor.construct_yaml_map(loader, node)


def _portable_sequence(loader, node):
    for item in node.value:
        if isinstance(item, yaml.ScalarNode):
            _portable_scalar(item)
    yield from yaml.constructor.SafeConstructor.construct_yaml_seq(loader, node)


PortableLoader.add_constructor(_YAML + "map", _portable_map)
PortableLoader.add_constructor(_YAML + "seq", _portable_sequence)


def load_portable(text: str):
    """A spec's document, read with PortableLoader (yaml.constructor.ConstructorError says where it is not portable)."""
    return yaml.load(text, Loader=PortableLoader)


class SchemaValidator:
    """jsonschema's Draft 2020-12 validator (the authority, and the source of every message), behind a compiled
    pre-check: jsonschema-rs says "valid" in microseconds for the common case, and only a value it doubts is
    walked by jsonschema, whose verdict then stands. A value jsonschema-rs accepts is not checked again, so the two
    must agree on what is valid: the rule tests and the negative contract run (tests/test_contract.py) hold them
    to that."""

    def __init__(self, root: dict):
        self.python = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
        self._root = root
        self._fast = _NOT_COMPILED
        self._exact = not _has_fast_rules(root)  # the compiled copy states the schema's own rules

    def compile(self) -> None:
        """Compile the fast pre-check now (request schemas, at start-up: before the server forks its workers, so
        they share it, and no first request waits for it)."""
        if self._fast is _NOT_COMPILED:
            try:
                self._fast = jsonschema_rs.validator_for(_fast_copy(self._root), validate_formats=True)
            except Exception:  # a schema it cannot compile is left to jsonschema alone
                self._fast = None

    def iter_errors(self, value):
        self.compile()  # response schemas are compiled on first use: most are never used outside strict mode
        if self._fast is not None:
            try:
                if self._fast.is_valid(value):
                    return iter(())
            except (ValueError, OverflowError, TypeError):  # e.g. an integer beyond 64 bits
                pass
        return self.python.iter_errors(value)

    def compiled_errors(self, value, most: int) -> list | None:
        """At most `most` of jsonschema-rs's own errors (instance_path, message, kind), or None when it cannot judge
        the value. For documents too large for jsonschema's walk (a whole-world import: 2.6x the time of a valid
        one), at the price of jsonschema's messages and the specs' x-error-message."""
        self.compile()
        if self._fast is None or not self._exact:  # a stricter stand-in rule: its refusals are not final
            return None
        try:
            if self._fast.is_valid(value):
                return []
            return list(itertools.islice(self._fast.iter_errors(value), most))
        except (ValueError, OverflowError, TypeError):
            return None


_NOT_COMPILED = object()


def _has_fast_rules(node) -> bool:
    if isinstance(node, dict):
        return "x-sandbox-fast" in node or any(_has_fast_rules(v) for v in node.values())
    return isinstance(node, list) and any(_has_fast_rules(v) for v in node)


def _fast_copy(node):
    """The schema as the compiled pre-check sees it: a node's `x-sandbox-fast` keywords replace its own. They state
    a stricter rule that compiles small (a `{0,9998}` repetition costs the regex engine some 20 MB a process): a value
    it accepts is valid, and one it refuses is judged by jsonschema against the real rule."""
    if isinstance(node, dict):
        copy = {k: _fast_copy(v) for k, v in node.items() if k != "x-sandbox-fast"}
        copy.update(node.get("x-sandbox-fast", {}))
        return copy
    if isinstance(node, list):
        return [_fast_copy(v) for v in node]
    return node


def resolve(document: dict, node):
    """Follow local `$ref`s (`#/components/...`) until a node that is not one."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported, got {ref}")
        node = document
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def template_regex(template: str) -> re.Pattern:
    """The URLs a path template matches, each `{name}` a named group: /redemptions/{redemptionId} ->
    ^/redemptions/(?P<redemptionId>[^/]+), to the end of the text (`$` would also match before a final newline)."""
    return re.compile("^" + re.sub(r"\\{([^}]+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + r"\Z")


def literal_segments(template: str) -> int:
    """How specific a template is: /redemptions/batch (2) wins over /redemptions/{redemptionId} (1)."""
    return sum(1 for part in template.split("/") if part and not part.startswith("{"))


@cache
def load_spec(path: Path) -> "Spec":
    """Specs are read-only once parsed, so every app in a process shares one copy of each."""
    return Spec(path)


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str  # path | query | header
    required: bool
    schema: dict
    validator: SchemaValidator
    default: object = None  # the schema's `default`, filled in when the request leaves the parameter out


@dataclass
class Operation:
    operation_id: str
    method: str
    path: str  # OpenAPI template, e.g. /purchase-histories/{purchaseHistoryID}
    raw: dict
    parameters: list[Parameter]
    body_required: bool
    body_media_types: tuple[str, ...]
    body_validator: SchemaValidator | None
    body_defaults: dict  # top-level body fields with a `default` in the schema, filled in when left out
    response_validators: dict[str, SchemaValidator | None]
    secured: bool
    extensions: dict = field(default_factory=dict)

    @property
    def flask_rule(self) -> str:
        return re.sub(r"{([^}]+)}", r"<\1>", self.path)

    def admits(self, location: str, name: str, value) -> bool:
        """Whether the spec's schema for the parameter admits `value` (authentication, which runs before the request
        is validated, asks so of a header it reads)."""
        parameter = next((p for p in self.parameters if p.location == location and p.name.lower() == name.lower()),
                         None)
        return parameter is not None and next(iter(parameter.validator.iter_errors(value)), None) is None

    def response_validator(self, status: int) -> SchemaValidator | None:
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in self.response_validators:
                return self.response_validators[key]
        return None

    def documents_status(self, status: int) -> bool:
        keys = self.response_validators
        return str(status) in keys or f"{str(status)[0]}XX" in keys or "default" in keys

    def response_problems(self, status: int, payload) -> list[str]:
        """What makes an answer break this operation's spec: an undocumented status, or a JSON body its schema
        refuses (each problem says where). Strict mode and the validation proxy both ask this."""
        if not self.documents_status(status):
            return [f"status {status} is not documented for {self.operation_id}"]
        validator = self.response_validator(status)
        if validator is None:
            return []
        return [f"body {'.'.join(map(str, e.absolute_path)) or '(whole)'}: {e.message}"
                for e in validator.iter_errors(payload)]

    @property
    def writes(self) -> bool:
        """Whether the operation may change state (the spec's `x-sandbox-writes`): only those take the write lock."""
        return bool(self.extensions.get("x-sandbox-writes", False))

    @property
    def whole_world(self) -> bool:
        """Whether run.py's server runs it in a thread, off the event loop (the spec's `x-sandbox-whole-world`): an
        operation on a whole world (seeding, an import, an export, a verification over the journal) that would
        otherwise hold up every other connection of its worker process (sandbox/serving/bridge.py)."""
        return bool(self.extensions.get("x-sandbox-whole-world", False))

    @property
    def exported_state(self) -> bool:
        """Whether its body is a whole exported world (the spec's `x-sandbox-exported-state`): read up to
        run.py --max-import-bytes (core/limits.py), numbers kept as written (core/validation.py)."""
        return bool(self.extensions.get("x-sandbox-exported-state", False))


class Spec:
    """One vendor's OpenAPI document, parsed once at start-up."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.stem
        self.document: dict = load_portable(self.path.read_text(encoding="utf-8"))
        self._components = self.document.get("components", {})

    # -- references -------------------------------------------------------------------------------------
    def resolve(self, node: dict) -> dict:
        """Follow a local `$ref` (parameters, responses); schemas keep theirs for jsonschema to resolve."""
        return resolve(self.document, node)

    def validator(self, schema: dict) -> "SchemaValidator":
        # Putting the components it refers to in the root schema lets `#/components/...` refs resolve with no
        # registry; only those, so that each compiled validator stays small.
        components: dict = {}
        pending = [schema]
        while pending:
            node = pending.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/components/"):
                    _, _, kind, name = ref.split("/", 3)
                    if name not in components.setdefault(kind, {}):
                        components[kind][name] = self._components[kind][name]
                        pending.append(components[kind][name])
                pending.extend(node.values())
            elif isinstance(node, list):
                pending.extend(node)
        return SchemaValidator({**schema, "components": components})

    # -- operations -------------------------------------------------------------------------------------
    @property
    def base_paths(self) -> list[str]:
        """Path parts of the (relative) server URLs: every operation is mounted under each."""
        return [server["url"].rstrip("/") for server in self.document.get("servers", [{"url": ""}])]

    @cached_property
    def operations(self) -> list[Operation]:
        global_security = self.document.get("security", [])
        operations = []
        for path, item in self.document.get("paths", {}).items():
            item = self.resolve(item)
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                raw = item[method]
                operations.append(self._operation(path, method, raw, shared, global_security))
        return operations

    def _operation(self, path, method, raw, shared, global_security) -> Operation:
        params = {}
        for p in [*shared, *raw.get("parameters", []), *self._sandbox_headers(raw)]:
            p = self.resolve(p)
            params.setdefault((p["name"].lower(), p["in"]), Parameter(
                name=p["name"],
                location=p["in"],
                required=p.get("required", p["in"] == "path"),
                schema=p.get("schema", {}),
                validator=self.validator(p.get("schema", {})),
                default=self.resolve(p.get("schema", {})).get("default"),
            ))
        body = self.resolve(raw.get("requestBody", {}))
        content = body.get("content", {})
        json_schema = content.get("application/json", {}).get("schema")
        responses = {}
        for status, response in raw.get("responses", {}).items():
            response = self.resolve(response)
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            responses[str(status).upper()] = self.validator(schema) if schema is not None else None
        security = raw.get("security", global_security)
        return Operation(
            operation_id=raw["operationId"],
            method=method.upper(),
            path=path,
            raw=raw,
            parameters=list(params.values()),
            body_required=bool(body.get("required")),
            body_media_types=tuple(content),
            body_validator=self.validator(json_schema) if json_schema is not None else None,
            body_defaults=self._defaults(json_schema or {}),
            response_validators=responses,
            secured=any(requirement for requirement in security),
            extensions={k: v for k, v in raw.items() if k.startswith("x-")},
        )

    def _sandbox_headers(self, raw: dict) -> list[dict]:
        """The sandbox-only request headers of an operation, as the parameters the sandbox validates them as (a bad
        one is the vendor's 400). They are the spec's `x-sandbox-headers`, never its `parameters`, so no code
        generator, Postman collection or Schemathesis run sends them. X-Sandbox-Fault's enum is the generic faults
        plus the operation's own `x-sandbox-faults`, and its message lists them."""
        headers = []
        for name, header in self.document.get("x-sandbox-headers", {}).items():
            schema = dict(header.get("schema", {}))
            if name.lower() == "x-sandbox-fault":
                schema["enum"] = [*schema.get("enum", ()), *raw.get("x-sandbox-faults", ())]
                schema.setdefault("x-error-message", f"{name} must be one of {', '.join(schema['enum'])}")
            headers.append({"name": name, "in": "header", "required": False, "schema": schema})
        return headers

    def _defaults(self, schema: dict) -> dict:
        properties = self.resolve(schema).get("properties", {})
        found = {name: self.resolve(prop).get("default") for name, prop in properties.items()}
        return {name: value for name, value in found.items() if value is not None}

    def served_copy(self, base_url: str) -> dict:
        """The document as served live: server URLs made absolute so tools can be aimed at it."""
        document = copy.deepcopy(self.document)
        for server in document.get("servers", []):
            if server["url"].startswith("/"):
                server["url"] = base_url.rstrip("/") + server["url"]
        return document
