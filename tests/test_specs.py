"""Every spec is a valid OpenAPI 3.1 document, portable YAML that every partner tool reads the same way, and its
examples obey its own schemas."""
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from helpers import strict_app
from sandbox.core.spec import HTTP_METHODS, Spec, load_portable, resolve
from sandbox.kit.speclint import problems, unnamed_envelopes

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.yaml"))
DIALECT = "https://json-schema.org/draft/2020-12/schema"
JS_SAFE_INTEGER = 2**53 - 1  # beyond it a JavaScript client (Postman, Prism) silently rounds a number


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_passes_openapi_spec_validator(path):
    validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_follows_house_rules(path):
    """operationId and summary everywhere; a schema and an example for every status; every example obeys its schema."""
    assert problems(yaml.safe_load(path.read_text())) == []


def test_house_rules_bite():
    document = yaml.safe_load(SPECS[0].read_text())
    operation = next(iter(document["paths"].values()))
    operation = next(v for k, v in operation.items() if k in ("get", "put", "post", "patch", "delete"))
    del operation["summary"]
    response = next(iter(operation["responses"].values()))
    response.pop("$ref", None)
    response["content"] = {"application/json": {"schema": {"type": "integer"}, "example": "not a number"}}
    response["content"]["application/json"]["schema"] = {"allOf": [{"type": "integer"}], "example": 1}
    found = problems(document)
    assert any("no summary" in p for p in found) and any("example breaks its schema" in p for p in found)
    assert any("allOf at its root" in p for p in found)
    split = yaml.safe_load("paths: {}\ncomponents: {schemas: {A: {type: string, description: One, two or three.}}}")
    assert problems(split) == ["/components/schemas/A: a key that reads as a sentence holds nothing ('two or "
                               "three.'): a comma in an unquoted flow mapping value ends the value there; quote the text"]


# -- portable: what PyYAML reads is what Spectral, Prism, Postman and openapi-python-client read ---------------
@pytest.fixture(scope="module")
def served():
    """The specs as the sandbox serves them (GET /_sandbox/specs/<name>.yaml), as text."""
    client = strict_app(size=5).test_client()
    return {path.stem: client.get(f"/_sandbox/specs/{path.stem}.yaml").get_data(as_text=True) for path in SPECS}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_is_portable_yaml_as_shipped_and_served(path, served):
    """No duplicate key, no merge key, no plain scalar YAML 1.1 and 1.2 read differently; the same document either way."""
    document = load_portable(path.read_text(encoding="utf-8"))
    assert document == yaml.safe_load(path.read_text(encoding="utf-8"))
    copy = load_portable(served[path.stem])
    assert copy["paths"] == document["paths"] and copy["components"] == document["components"]


@pytest.mark.parametrize("text,complaint", [
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("x: &fields {b: 1}\ny:\n  <<: *fields\n", "merge key"),
    ("a: yes\n", "'yes' is read as bool by YAML 1.1"),
    ("a: [on]\n", "'on' is read as bool"),
    ("a: 2026-01-01\n", "read as timestamp"),
    ("a: 1e3\n", "read as str by YAML 1.1 (PyYAML) and as float"),
    ("a: 0777\n", "octal"),
    ("a: 1_000\n", "read as int by YAML 1.1"),
])
def test_portable_loader_refuses_what_tools_read_differently(text, complaint):
    with pytest.raises(yaml.constructor.ConstructorError) as refused:
        load_portable(text)
    assert complaint in str(refused.value)
    assert load_portable("a: 'yes'\nb: '2026-01-01'\nc: 1.5\nd: -3\ne: null\nf: true\n") == {
        "a": "yes", "b": "2026-01-01", "c": 1.5, "d": -3, "e": None, "f": True}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_declares_the_2020_12_dialect(path):
    """Without it Prism validates 3.1 schemas as draft-07 and ignores dependentRequired."""
    assert load_portable(path.read_text())["jsonSchemaDialect"] == DIALECT


def _examples(node, where="#"):
    """Every example value in a document: `example`, `examples` (media, parameter and schema forms)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "example":
                yield f"{where}/example", value
            elif key == "examples" and isinstance(value, dict):
                yield from ((f"{where}/examples/{k}", v.get("value")) for k, v in value.items() if isinstance(v, dict))
            elif key == "examples" and isinstance(value, list):
                yield from ((f"{where}/examples/{i}", v) for i, v in enumerate(value))
            if isinstance(value, (dict, list)):
                yield from _examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _examples(value, f"{where}/{i}")


def _integers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _integers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _integers(item)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_integer_examples_are_exact_in_javascript(path):
    document = load_portable(path.read_text())
    found = list(_examples(document))
    assert found
    beyond = [(where, n) for where, value in found for n in _integers(value) if abs(n) > JS_SAFE_INTEGER]
    assert beyond == []


def test_integer_example_check_bites():
    document = {"paths": {"/x": {"put": {"requestBody": {"content": {"application/json": {
        "examples": {"big": {"value": {"billId": 1234567890123456789}}}}}}}}}}
    assert [n for _, value in _examples(document) for n in _integers(value)] == [1234567890123456789]


# -- the vendor's contract only: the sandbox's controls are x-sandbox-* extensions, never API surface -------------
VENDOR_SPECS = [path for path in SPECS if path.stem != "sandbox"]


@pytest.mark.parametrize("path", VENDOR_SPECS, ids=lambda p: p.name)
def test_vendor_spec_has_no_sandbox_only_parameter_as_shipped_and_served(path, served):
    for document in (load_portable(path.read_text()), load_portable(served[path.stem])):
        parameters = [resolve(document, p) for item in document["paths"].values()
                      for node in [item, *(item.get(m, {}) for m in HTTP_METHODS)] for p in node.get("parameters", [])]
        parameters += list(document.get("components", {}).get("parameters", {}).values())
        assert parameters
        assert [p["name"] for p in parameters if p["name"].lower().startswith("x-sandbox")] == []
        assert set(document["x-sandbox-headers"]) == {"X-Sandbox-Fault", "X-Sandbox-Delay", "X-Sandbox-Applied"}


def test_the_sandbox_still_reads_its_headers_from_the_extensions():
    """What the server validates: the generic faults plus the operation's own x-sandbox-faults, the delay's bounds."""
    spec = Spec(SPECS[0].parent / "returning-ai.yaml")
    operations = {op.operation_id: op for op in spec.operations}
    fault = {p.name: p for p in operations["updatePurchaseHistory"].parameters}["X-Sandbox-Fault"]
    assert fault.location == "header" and not fault.required
    assert fault.schema["enum"][-2:] == ["store-unavailable", "publisher-timeout"]
    assert fault.schema["x-error-message"] == "X-Sandbox-Fault must be one of " + ", ".join(fault.schema["enum"])
    other = {p.name: p for p in operations["getRedemptionStatusById"].parameters}
    assert "store-unavailable" not in other["X-Sandbox-Fault"].schema["enum"]
    assert other["X-Sandbox-Delay"].schema["maximum"] == 30000


@pytest.mark.parametrize("path", VENDOR_SPECS, ids=lambda p: p.name)
def test_vendor_spec_names_every_success_envelope(path):
    """So that generated clients get a typed model of that name for every answer (tests/test_partner_tools.py)."""
    assert unnamed_envelopes(load_portable(path.read_text())) == []
    assert unnamed_envelopes({"paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
        "schema": {"type": "object"}}}}}}}}}) == ["GET /x 200"]
