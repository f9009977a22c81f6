"""Every spec is a valid OpenAPI 3.1 document, and its examples obey its own schemas."""
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_passes_openapi_spec_validator(path):
    validate(yaml.safe_load(path.read_text()))


def _examples(document):
    """(schema, example, where) for every media-type example of every operation."""
    for route, item in document["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            bodies = [operation.get("requestBody", {})] + list(operation.get("responses", {}).values())
            for body in bodies:
                body = _resolve(document, body)
                for media in body.get("content", {}).values():
                    examples = [_resolve(document, e)["value"] for e in media.get("examples", {}).values()]
                    if "example" in media:
                        examples.append(media["example"])
                    for example in examples:
                        yield media["schema"], example, f"{method.upper()} {route}"


def _resolve(document, node):
    while "$ref" in node:
        node = _pointer(document, node["$ref"])
    return node


def _pointer(document, ref):
    node = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_is_valid_against_its_schema(path):
    document = yaml.safe_load(path.read_text())
    checked = 0
    for schema, example, where in _examples(document):
        validator = Draft202012Validator({**schema, "components": document.get("components", {})})
        errors = [e.message for e in validator.iter_errors(example)]
        assert not errors, f"{path.name} {where}: {errors}"
        checked += 1
    assert checked > 0
