"""`run.py compat`: breaking changes between two versions of a spec; CI gate against specs/released/."""
import copy
from pathlib import Path

import pytest
import yaml

from sandbox.kit.compat import Diff, main

SPECS = Path(__file__).parent.parent / "specs"
NAMES = ["returning-ai", "fabric", "capillary", "sandbox"]


@pytest.mark.parametrize("name", NAMES)
def test_specs_make_no_breaking_change_since_the_last_release(name):
    """A deliberate break means copying the spec to specs/released/ in the same commit."""
    assert main([str(SPECS / "released" / f"{name}.yaml"), str(SPECS / f"{name}.yaml")]) == 0


def fabric():
    return yaml.safe_load((SPECS / "fabric.yaml").read_text())


def changed(mutate):
    old = fabric()
    new = copy.deepcopy(old)
    mutate(new)
    return Diff(old, new).run()


def schemas(doc):
    return doc["components"]["schemas"]


@pytest.mark.parametrize("mutate,expected", [
    (lambda d: d["paths"]["/redemptions/{redemptionId}"].pop("delete"), "DELETE /redemptions/{redemptionId}: operation removed"),
    (lambda d: d["paths"]["/redemptions/{redemptionId}"]["get"]["responses"].pop("404"), "response 404 removed"),
    (lambda d: schemas(d)["RedemptionInput"]["required"].append("email"), "field email is now required"),
    (lambda d: schemas(d)["Status"]["enum"].remove("INACTIVE"), "enum values removed"),
    (lambda d: schemas(d)["OrderId"].update(maxLength=50), "maxLength tightened to 50"),
    (lambda d: schemas(d)["OrderId"].update(minLength=5), "minLength tightened to 5"),
    (lambda d: schemas(d)["UserId"].update(type="string"), "type narrowed"),
    (lambda d: schemas(d)["OrderId"].update(pattern="^[0-9-]+$"), "pattern changed"),
    (lambda d: d["paths"]["/redemptions"]["get"]["parameters"][0].update(required=True), "parameter size is now required"),
    (lambda d: d["paths"]["/redemptions"]["get"]["parameters"].append(
        {"name": "region", "in": "query", "required": True, "schema": {"type": "string"}}), "new required query parameter region"),
    (lambda d: schemas(d)["Redemption"]["required"].remove("updatedAt"), "response field updatedAt is no longer guaranteed"),
])
def test_each_breaking_change_is_reported(mutate, expected):
    assert any(expected in change for change in changed(mutate)), changed(mutate)


@pytest.mark.parametrize("mutate", [
    lambda d: schemas(d)["OrderId"].update(maxLength=500),
    lambda d: schemas(d)["Status"]["enum"].append("PENDING"),
    lambda d: d["paths"]["/redemptions"]["get"]["parameters"].append(
        {"name": "region", "in": "query", "schema": {"type": "string"}}),
    lambda d: d["paths"]["/redemptions/{redemptionId}"]["get"]["responses"].update({"418": {"description": "tea"}}),
])
def test_compatible_changes_pass(mutate):
    assert changed(mutate) == []
