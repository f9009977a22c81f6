"""The specs as partners take them home, checked by the tools partners use (issue 18): the Postman collections the
sandbox serves (and newman running them), Spectral, Redocly, openapi-python-client, and Prism as a proxy in front of the
sandbox. The node tools are installed in tools/ by scripts/install-partner-tools.sh (which .ci/run calls); without
them their tests are skipped, saying so."""
from __future__ import annotations

import base64
import importlib
import inspect
import json
import os
import re
import socket
import subprocess
import sys
import time
import typing
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from sandbox import Settings, create_app
from sandbox.core.spec import Spec, template_regex
from sandbox.core.validation import _coerce
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


def test_postman_collection_of_a_world_without_a_demo_credential_has_no_auth(control):
    """Found by the hostile-input fuzzing: a world imported without Capillary's tills has no credential to put in
    its collection (its OAuth client acts as a till that is gone). The collection comes without auth (to fill in),
    and the credentials list without the client, not a 500."""
    snapshot = control.get("/_sandbox/state/export").get_json()
    snapshot["collections"].pop("cap_tills", None)
    assert control.post("/_sandbox/state/import", json=snapshot).status_code == 200
    r = control.get("/_sandbox/postman/capillary.json")
    assert r.status_code == 200 and r.get_json()["auth"] == {"type": "noauth"}
    credentials = control.get("/_sandbox/credentials").get_json()["credentials"]
    assert credentials and not [c for c in credentials if c["vendor"] == "capillary"]


def test_postman_link_sets_the_created_id_for_the_operations_after_it(control):
    collection = control.get("/_sandbox/postman/fabric.json").get_json()
    by_op = {item["event"][0]["script"]["exec"][0].split(" for ")[1].split('"')[0]: item
             for item in requests_of(collection)}
    assert 'pm.collectionVariables.set("deleteRedemption.redemptionId"' in "\n".join(
        by_op["createRedemption"]["event"][0]["script"]["exec"])
    assert by_op["deleteRedemption"]["request"]["url"]["variable"] == [
        {"key": "redemptionId", "value": "{{deleteRedemption.redemptionId}}"}]


@pytest.mark.parametrize("vendor", VENDORS)
def test_newman_runs_every_documented_operation_twice_in_a_row(live, vendor, tmp_path):
    """Issue 32 point 5: a CI job runs the collection on the world it has; the second run of Returning.AI's and
    Capillary's got the documented 409 (a status name, a transaction number already used) until the values that
    must be unique (x-sandbox-unique) ended with a run's own suffix."""
    newman = node_tool("newman")
    live.reset()
    for attempt in (1, 2):
        report = tmp_path / f"newman-{attempt}.json"
        result = subprocess.run([newman, "run", f"{live.base_url}/_sandbox/postman/{vendor}.json", "--reporters",
                                 "json", "--reporter-json-export", str(report)], capture_output=True, text=True,
                                timeout=120)
        run = json.loads(report.read_text())["run"]
        failures = [(f["source"]["name"], f["error"]["message"]) for f in run["failures"]]
        assert (attempt, result.returncode, failures) == (attempt, 0, [])
        assert run["stats"]["requests"]["total"] == len(operation_ids(vendor))
        assert run["stats"]["assertions"]["failed"] == 0
        assert run["stats"]["assertions"]["total"] == 2 * len(operation_ids(vendor))
        statuses = {e["item"]["name"]: e["response"]["code"] for e in run["executions"]}
        assert all(200 <= code < 300 for code in statuses.values()), (attempt, statuses)


@pytest.mark.parametrize("vendor", VENDORS)
def test_postmans_own_converter_makes_a_collection_that_passes(live, vendor, tmp_path):
    """As a partner imports the served spec into Postman (openapi-to-postmanv2, example values): no sandbox header
    is switched on and every request succeeds with the demo credential (0 of 21 did while the specs listed them)."""
    converter, newman = node_tool("openapi2postmanv2"), node_tool("newman")
    spec, converted, report = tmp_path / f"{vendor}.yaml", tmp_path / "collection.json", tmp_path / "newman.json"
    spec.write_bytes(urllib.request.urlopen(f"{live.base_url}/_sandbox/specs/{vendor}.yaml", timeout=30).read())
    subprocess.run([converter, "-s", str(spec), "-o", str(converted), "-p", "-O",
                    "folderStrategy=Tags,parametersResolution=Example"], check=True, capture_output=True, timeout=120)
    requests = requests_of(json.loads(converted.read_text()))
    assert len(requests) == len(operation_ids(vendor))
    assert not [h for item in requests for h in item["request"].get("header", []) if h["key"].lower().startswith("x-sandbox")]
    scheme, _, secret = credential_headers(live, vendor)["Authorization"].partition(" ")
    user, _, password = (base64.b64decode(secret).decode().partition(":") if scheme == "Basic" else ("", "", ""))
    live.reset()
    subprocess.run([newman, "run", str(converted), "--env-var", f"bearerToken={secret}", "--env-var",
                    f"basicAuthUsername={user}", "--env-var", f"basicAuthPassword={password}", "--reporters", "json",
                    "--reporter-json-export", str(report)], capture_output=True, timeout=120)
    codes = [e["response"]["code"] for e in json.loads(report.read_text())["run"]["executions"]]
    assert len(codes) == len(requests) and all(200 <= code < 300 for code in codes), codes


# -- Spectral: the OpenAPI ruleset, 0 errors and 0 warnings on every spec ---------------------------------------------
ALL_SPECS = [*VENDORS, "sandbox"]


def test_spectral_finds_no_error_or_warning_in_any_spec():
    """Warnings too: an operation without tags is a loose request in a Postman collection and in the docs' list, one
    without a description or a spec without a contact is what a partner's linter flags first."""
    spectral = node_tool("spectral")
    result = subprocess.run([spectral, "lint", *(str(SPECS / f"{name}.yaml") for name in ALL_SPECS), "--ruleset",
                             str(ROOT / ".spectral.yaml"), "--format", "json", "--quiet", "--fail-severity", "warn"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    findings = json.loads(result.stdout or "[]")
    found = [(Path(f["source"]).name, f["code"], f["message"], f["range"]["start"]["line"] + 1)
             for f in findings if f["severity"] <= 1]
    assert found == [] and result.returncode == 0, found or result.stderr


def test_spectral_would_report_a_duplicate_key_or_a_missing_tag(tmp_path):
    """The check can fail: the 24 duplicate keys specs/sandbox.yaml had were 24 Spectral errors."""
    spectral = node_tool("spectral")
    broken = tmp_path / "fabric.yaml"
    broken.write_text((SPECS / "fabric.yaml").read_text().replace(
        "        '400': {$ref: '#/components/responses/BadRequest'}\n",
        "        '400': {$ref: '#/components/responses/BadRequest'}\n        '400': {$ref: '#/components/responses/BadRequest'}\n", 1))
    result = subprocess.run([spectral, "lint", str(broken), "--ruleset", str(ROOT / ".spectral.yaml"), "--format",
                             "json", "--quiet"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1 and any(f["severity"] == 0 for f in json.loads(result.stdout))
    untagged = tmp_path / "capillary.yaml"  # and a warning fails it too: an operation without tags
    untagged.write_text((SPECS / "capillary.yaml").read_text().replace("      tags: [Points]\n", "", 1))
    result = subprocess.run([spectral, "lint", str(untagged), "--ruleset", str(ROOT / ".spectral.yaml"), "--format",
                             "json", "--quiet", "--fail-severity", "warn"], capture_output=True, text=True, timeout=300,
                            cwd=ROOT)
    assert result.returncode == 1 and [f["code"] for f in json.loads(result.stdout)] == ["operation-tags"]


def test_redocly_finds_no_error_or_warning_in_any_spec():
    """Issue 32 point 5: Redocly's recommended rules, as a partner runs `redocly lint` on a spec they downloaded (it
    found four sentences split by a comma in specs/sandbox.yaml, which Spectral does not check)."""
    redocly = node_tool("redocly")
    for name in ALL_SPECS:
        result = subprocess.run([redocly, "lint", str(SPECS / f"{name}.yaml"), "--format", "json"],
                                capture_output=True, text=True, timeout=300, cwd=ROOT)
        report = json.loads(result.stdout)
        found = [(p["ruleId"], p["message"]) for p in report["problems"]]
        assert (name, report["totals"]["errors"], report["totals"]["warnings"], found) == (name, 0, 0, [])


# -- the recorded requests, a valid and an invalid one of every vendor operation ------------------------------------
RECORDED = yaml.safe_load((Path(__file__).parent / "partner_requests.yaml").read_text(encoding="utf-8"))


def test_recorded_requests_cover_every_operation_valid_and_invalid():
    for vendor in VENDORS:
        valid = {r["operation"] for r in RECORDED[vendor] if r["status"] < 300}
        invalid = {r["operation"] for r in RECORDED[vendor] if r["status"] >= 400}
        assert valid == invalid == set(operation_ids(vendor)), vendor


def credential_headers(live, vendor: str) -> dict:
    return next(c["headers"] for c in live.credentials if c["vendor"] == vendor and "Authorization" in c["headers"])


# -- openapi-python-client: every spec generates with no warning; the clients call the sandbox with typed models ----
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    if not GENERATOR.exists():
        pytest.skip("openapi-python-client is not installed: pip install -r requirements.txt")
    root = tmp_path_factory.mktemp("clients")
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # its ruff hook
    outputs = {}
    for name in ALL_SPECS:
        package = root / f"client_{name.replace('-', '_')}"
        result = subprocess.run([str(GENERATOR), "generate", "--path", str(SPECS / f"{name}.yaml"), "--output-path",
                                 str(package), "--meta", "none"], capture_output=True, text=True, timeout=300, env=env)
        outputs[name] = (package, result.returncode, result.stdout + result.stderr)
    sys.path.insert(0, str(root))
    yield outputs
    sys.path.remove(str(root))
    for module in [m for m in sys.modules if m.startswith("client_")]:
        del sys.modules[module]


@pytest.mark.parametrize("name", ALL_SPECS)
def test_openapi_python_client_generates_the_spec_without_warnings(generated, name):
    package, status, output = generated[name]
    assert status == 0 and "warning" not in output.lower() and "error" not in output.lower(), output
    code = "\n".join(path.read_text() for path in package.rglob("*.py"))
    assert "def sync_detailed(" in code
    assert "x_sandbox_fault" not in code and "x_sandbox_delay" not in code  # no sandbox control as API surface


def untyped(value, where="parsed") -> list[str]:
    """Where a generated model holds fields of the answer it does not type (they land in additional_properties)."""
    import attrs
    found = []
    if attrs.has(type(value)):
        declared = [f.name for f in attrs.fields(type(value)) if f.name != "additional_properties"]
        if declared and getattr(value, "additional_properties", None):
            found.append(f"{where}: {sorted(value.additional_properties)} untyped")
        for name in declared:
            found += untyped(getattr(value, name), f"{where}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += untyped(item, f"{where}[{index}]")
    return found


def test_untyped_finds_what_a_model_leaves_untyped():
    import attrs

    @attrs.define
    class Data:  # as openapi-python-client typed the by-user-email answer's allOf: items, and the member untyped
        items: list
        additional_properties: dict = attrs.field(factory=dict)

    assert untyped(Data(items=[], additional_properties={"user": {}})) == ["parsed: ['user'] untyped"]
    assert untyped(Data(items=[])) == []


def _keyword(function, name: str) -> str:
    """The generated function's keyword for a spec parameter (purchaseHistoryID -> purchase_history_id)."""
    wanted = re.sub(r"[^0-9a-z]", "", name.lower())
    return next(p for p in inspect.signature(function).parameters if p.replace("_", "") == wanted)


@pytest.mark.parametrize("vendor", VENDORS)
def test_generated_client_calls_each_documented_operation_and_parses_typed_models(generated, live, vendor):
    package_dir, status, _ = generated[vendor]
    assert status == 0
    package = package_dir.name
    client_module = importlib.import_module(f"{package}.client")
    scheme, _, token = credential_headers(live, vendor)["Authorization"].partition(" ")
    base_url = live.base_url + Spec(SPECS / f"{vendor}.yaml").base_paths[0]
    authenticated = client_module.AuthenticatedClient(base_url=base_url, token=token, prefix=scheme)
    anonymous = client_module.Client(base_url=base_url)
    operations = {op.operation_id: op for op in Spec(SPECS / f"{vendor}.yaml").operations}
    modules = {path.stem.replace("_", ""): path for path in (package_dir / "api").rglob("*.py")}
    live.reset()
    called = set()
    for row in (r for r in RECORDED[vendor] if r["status"] < 300):
        operation = operations[row["operation"]]
        path = modules[operation.operation_id.lower()]
        module = importlib.import_module(".".join([package, *path.relative_to(package_dir).with_suffix("").parts]))
        function = module.sync_detailed
        kwargs = dict(template_regex(operation.path).match(row["path"]).groupdict())
        given = {**row.get("query", {}), **credential_headers(live, vendor), **row.get("headers", {})}
        for param in operation.parameters:
            if param.name in kwargs or param.name in given and param.location != "path":
                raw = kwargs.pop(param.name, None) or given[param.name]
                if param.location != "header" or param.name.lower() != "authorization":
                    kwargs[param.name] = _coerce(str(raw), param.schema)
        kwargs = {_keyword(function, name): value for name, value in kwargs.items()
                  if name.lower() != "authorization" and not name.lower().startswith("x-sandbox")}
        if "body" in row:
            hints = typing.get_type_hints(module._get_kwargs)["body"]
            model = next(t for t in typing.get_args(hints) or (hints,) if hasattr(t, "from_dict"))
            kwargs["body"] = model.from_dict(row["body"])
        response = function(client=anonymous if row.get("auth") == "none" else authenticated, **kwargs)
        assert response.status_code == row["status"], (row, response.content[:300])
        parsed = response.parsed
        assert type(parsed).__module__.startswith(f"{package}.models."), (row["operation"], type(parsed))
        assert untyped(parsed) == [], row["operation"]
        called.add(row["operation"])
    assert called == set(operations)


# -- Prism: a validating proxy in front of the sandbox reports no violation the sandbox does not also refuse --------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def prism(live, tmp_path_factory):
    """A Prism proxy per vendor (started together: each takes seconds to start), each on the spec the sandbox serves,
    forwarding to the sandbox."""
    binary = node_tool("prism")
    logs = tmp_path_factory.mktemp("prism")
    running = {}
    try:
        for vendor in VENDORS:
            port = _free_port()
            upstream = live.base_url + Spec(SPECS / f"{vendor}.yaml").base_paths[0]
            log = open(logs / f"{vendor}.log", "w")
            process = subprocess.Popen([binary, "proxy", f"{live.base_url}/_sandbox/specs/{vendor}.yaml", upstream,
                                        "--host", "127.0.0.1", "--port", str(port), "--errors=false"],
                                       stdout=log, stderr=subprocess.STDOUT)
            running[vendor] = (process, port, logs / f"{vendor}.log", log)
        deadline = time.monotonic() + 120
        for vendor, (process, port, path, _) in running.items():
            while "Prism is listening" not in path.read_text():
                assert process.poll() is None and time.monotonic() < deadline, path.read_text()[-2000:]
                time.sleep(0.2)
        yield {vendor: f"http://127.0.0.1:{port}" for vendor, (_, port, _, _) in running.items()}
    finally:
        for process, _, _, log in running.values():
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def _send(url: str, row: dict, headers: dict) -> tuple[int, list[dict], bytes]:
    query = "?" + urllib.parse.urlencode(row["query"]) if row.get("query") else ""
    data = json.dumps(row["body"]).encode() if "body" in row else None
    headers = {**({} if row.get("auth") == "none" else headers), **row.get("headers", {})}
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url + row["path"] + query, data=data, method=row["method"], headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.headers.get("sl-violations") or "[]"), response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.headers.get("sl-violations") or "[]"), refused.read()


@pytest.mark.parametrize("vendor", VENDORS)
def test_prism_proxy_reports_no_violation_of_valid_requests_or_any_response(prism, live, vendor):
    live.reset()
    headers = credential_headers(live, vendor)
    seen = []
    for row in RECORDED[vendor]:
        status, violations, body = _send(prism[vendor], row, headers)
        where = {v["location"][0] for v in violations}
        seen.append((row["operation"], row["method"], row["path"], status, sorted(where)))
        assert status == row["status"], (row, body[:300])
        assert "response" not in where, (row, violations)  # the sandbox's answer conforms, valid request or not
        if row["status"] < 300:
            assert violations == [], (row, violations)  # Prism agrees the request is valid
        else:
            assert "request" in where, (row, body[:300])  # Prism agrees it is invalid, as the sandbox said
    assert {operation for operation, *_ in seen} == set(operation_ids(vendor))
