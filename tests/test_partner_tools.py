"""The specs as partners take them home, checked by the tools partners use (issue 18): the Postman collections the
sandbox serves (and newman running them), Spectral, openapi-python-client, and Prism as a proxy in front of the
sandbox. The node tools are installed in tools/ by scripts/install-partner-tools.sh (which .ci/run calls); without
them their tests are skipped, saying so."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import Settings, create_app
from sandbox.core.spec import HTTP_METHODS, Spec
from sandbox.testing import start_sandbox

ROOT = Path(__file__).parent.parent
SPECS = ROOT / "specs"
VENDORS = ["returning-ai", "fabric", "capillary"]
NODE_BIN = ROOT / "tools" / "node_modules" / ".bin"
INSTALL = "run `bash scripts/install-partner-tools.sh` (.ci/run does)"


def node_tool(name: str) -> str:
    tool = NODE_BIN / name
    if not tool.exists():
        pytest.skip(f"{name} is not installed in tools/: {INSTALL}")
    return str(tool)


def operation_ids(name: str) -> list[str]:
    return [op.operation_id for op in Spec(SPECS / f"{name}.yaml").operations]


@pytest.fixture(scope="module")
def live():
    """One sandbox on a free loopback port for the tools that call it; reset before each use."""
    with start_sandbox(Settings(size=10, publisher_timeout=0.05, strict_responses=True)) as running:
        yield running


# -- Postman: a collection per vendor, served by the sandbox -----------------------------------------------------
@pytest.fixture(scope="module")
def control():
    return create_app(Settings(size=5, strict_responses=True)).test_client()


def requests_of(collection: dict) -> list[dict]:
    return [request for folder in collection["item"] for request in folder["item"]]


@pytest.mark.parametrize("vendor", VENDORS)
def test_postman_collection_has_every_documented_operation_and_the_demo_credential(control, vendor):
    r = control.get(f"/_sandbox/postman/{vendor}.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    collection = r.get_json()
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")
    spec = Spec(SPECS / f"{vendor}.yaml")
    documented = {(op.method, op.operation_id) for op in spec.operations}
    sent = [(item["request"]["method"], item["event"][0]["script"]["exec"][0]) for item in requests_of(collection)]
    assert len(sent) == len(documented)
    assert {(method, op_id) for method, op_id in documented} == {
        (method, test.split(" for ")[1].split('"')[0]) for method, test in sent}
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["baseUrl"] == "http://localhost" + spec.base_paths[0]
    credential = {"returning-ai": ("bearerToken", "XXXXXX"), "fabric": ("bearerToken", "fabric-demo-token"),
                  "capillary": ("password", "8a16a6b70505eb1f1ff7cdc0cd5559a7")}[vendor]
    assert variables[credential[0]] == credential[1]
    headers = {h["key"].lower() for item in requests_of(collection) for h in item["request"]["header"]}
    assert not any(name.startswith("x-sandbox") for name in headers)  # the sandbox's controls are no API surface


def test_postman_collection_carries_the_workspace_credentials(control):
    workspace = control.post("/_sandbox/workspaces", json={"size": 3}).get_json()
    collection = control.get("/_sandbox/postman/fabric.json", headers={"X-Sandbox-Workspace": workspace["id"]}).get_json()
    variables = {v["key"]: v["value"] for v in collection["variable"]}
    assert variables["bearerToken"].startswith("fabric-demo-token.") and variables["bearerToken"] in json.dumps(
        workspace["credentials"])
    assert control.get("/_sandbox/postman/sandbox.json").status_code == 404
    assert control.get("/_sandbox/postman/nope.json").get_json()["error"]["code"] == 404


def test_postman_link_sets_the_created_id_for_the_operations_after_it(control):
    collection = control.get("/_sandbox/postman/fabric.json").get_json()
    by_op = {item["event"][0]["script"]["exec"][0].split(" for ")[1].split('"')[0]: item
             for item in requests_of(collection)}
    assert 'pm.collectionVariables.set("deleteRedemption.redemptionId"' in "\n".join(
        by_op["createRedemption"]["event"][0]["script"]["exec"])
    assert by_op["deleteRedemption"]["request"]["url"]["variable"] == [
        {"key": "redemptionId", "value": "{{deleteRedemption.redemptionId}}"}]


@pytest.mark.parametrize("vendor", VENDORS)
def test_newman_runs_every_documented_operation(live, vendor, tmp_path):
    newman = node_tool("newman")
    live.reset()
    report = tmp_path / "newman.json"
    result = subprocess.run([newman, "run", f"{live.base_url}/_sandbox/postman/{vendor}.json", "--reporters", "json",
                             "--reporter-json-export", str(report)], capture_output=True, text=True, timeout=120)
    run = json.loads(report.read_text())["run"]
    failures = [(f["source"]["name"], f["error"]["message"]) for f in run["failures"]]
    assert result.returncode == 0 and failures == []
    assert run["stats"]["requests"]["total"] == len(operation_ids(vendor))
    assert run["stats"]["assertions"]["failed"] == 0 and run["stats"]["assertions"]["total"] == 2 * len(operation_ids(vendor))
    statuses = {e["item"]["name"]: e["response"]["code"] for e in run["executions"]}
    assert all(200 <= code < 300 for code in statuses.values()), statuses
