"""Every spec is a valid OpenAPI 3.1 document, and its examples obey its own schemas."""
from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from sandbox.kit.speclint import problems

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.yaml"))


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
    found = problems(document)
    assert any("no summary" in p for p in found) and any("example breaks its schema" in p for p in found)
