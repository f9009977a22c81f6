"""openapi-generator, the most used client generator, on the vendor specs (issue 32 point 5).

Every vendor spec generates a Python client (`-g python`) and a TypeScript one (`-g typescript-fetch`: the fetch of
browsers and Node 18+, so the client needs no HTTP library) with the spec validation on, as a partner runs it; the
Python client calls every operation of its spec against a running sandbox and parses each answer into its typed
models, every field typed (no `Any`, no plain dict) and nothing dropped.

The generator is a Java program; the `openapi-generator-cli` package of PyPI ships its jar. Without Java or the
package the tests are skipped, saying how to install them.
"""
from __future__ import annotations

import base64
import importlib
import importlib.resources
import importlib.util
import inspect
import json
import re
import shutil
import subprocess
import sys
import time
import typing
from datetime import datetime
from enum import Enum
from pathlib import Path

import pytest
import yaml

from sandbox import Settings
from sandbox.core.spec import Spec, template_regex
from sandbox.core.validation import _coerce
from sandbox.testing import start_sandbox

ROOT = Path(__file__).parent.parent
SPECS = ROOT / "specs"
VENDORS = ["returning-ai", "fabric", "capillary"]
RECORDED = yaml.safe_load((Path(__file__).parent / "partner_requests.yaml").read_text(encoding="utf-8"))
# The JIT's first tier only: a run of a few seconds takes about half the time (2.2 s instead of 5 s a spec here).
JVM_OPTIONS = ["-XX:TieredStopAtLevel=1"]
TIME_LIMIT = 120  # seconds for one generation: a few seconds is usual, so this only catches a hang


def generator() -> list[str]:
    """The command that runs openapi-generator: Java on the jar the openapi-generator-cli package ships."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("java is not installed; openapi-generator needs Java 11 or later: "
                    "apt-get install openjdk-17-jre-headless")
    if importlib.util.find_spec("openapi_generator_cli") is None:
        pytest.skip("openapi-generator-cli (the generator's jar) is not installed: pip install -r requirements.txt")
    jar = importlib.resources.files("openapi_generator_cli") / "openapi-generator.jar"
    return [java, *JVM_OPTIONS, "-jar", str(jar)]


def package_name(vendor: str) -> str:
    return "ogen_" + vendor.replace("-", "_")


def generate(command: list[str], vendor: str, kind: str, output: Path) -> tuple[int, str, float]:
    """(exit status, output, seconds) of `generate` as a partner runs it: with the spec validation on."""
    started = time.monotonic()
    result = subprocess.run([*command, "generate", "-i", str(SPECS / f"{vendor}.yaml"), "-g", kind, "-o", str(output),
                             "--package-name", package_name(vendor)],
                            capture_output=True, text=True, timeout=TIME_LIMIT, check=False)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


def problems(output: str) -> list[str]:
    """What the generator reported as wrong: errors and warnings, less the two it prints for every 3.1 spec."""
    general = ("OpenAPI 3.1 support is still in beta", "Failed to get the schema name: null",
               # TypeScript: the schema `Error` becomes `ModelError` (Error is a built-in type); nothing is lost.
               "Error (model name matches existing language type)")
    return [line for line in output.splitlines()
            if re.search(r"\b(WARN|ERROR)\b|Exception|rror count", line) and not any(g in line for g in general)]


@pytest.fixture(scope="module")
def python_clients(tmp_path_factory):
    """The Python client of each vendor spec, generated into a temporary folder and importable."""
    command = generator()
    root = tmp_path_factory.mktemp("openapi_generator")
    clients = {vendor: (root / vendor, *generate(command, vendor, "python", root / vendor)) for vendor in VENDORS}
    for folder, *_ in clients.values():
        sys.path.insert(0, str(folder))
    yield clients
    for folder, *_ in clients.values():
        sys.path.remove(str(folder))
    for module in [m for m in sys.modules if m.startswith("ogen_")]:
        del sys.modules[module]


@pytest.fixture(scope="module")
def live():
    """One sandbox on a free loopback port, strict about its own answers; reset before each use."""
    with start_sandbox(Settings(size=10, publisher_timeout=0.05, strict_responses=True)) as running:
        yield running


def operation_ids(vendor: str) -> list[str]:
    return [op.operation_id for op in Spec(SPECS / f"{vendor}.yaml").operations]


def plain(name: str) -> str:
    """A name without case or separators, to match generated names (generate_o_auth_token) to the spec's."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


# -- generation: Python and TypeScript, the spec validation on -------------------------------------------------------
@pytest.mark.parametrize("vendor", VENDORS)
def test_python_client_generates_with_the_spec_validation_on(python_clients, vendor):
    folder, status, output, seconds = python_clients[vendor]
    assert status == 0 and problems(output) == [], output[-3000:]
    assert seconds < TIME_LIMIT
    code = "\n".join(path.read_text() for path in (folder / package_name(vendor) / "api").glob("*.py"))
    methods = {plain(name) for name in re.findall(r"def (\w+)_with_http_info\(", code)}
    assert methods == {plain(operation_id) for operation_id in operation_ids(vendor)}
    assert "x_sandbox" not in code.lower()  # the sandbox's controls are no API surface


@pytest.mark.parametrize("vendor", VENDORS)
def test_typescript_client_generates_with_the_spec_validation_on(vendor, tmp_path):
    status, output, seconds = generate(generator(), vendor, "typescript-fetch", tmp_path)
    assert status == 0 and problems(output) == [], output[-3000:]
    assert seconds < TIME_LIMIT
    code = "\n".join(path.read_text() for path in (tmp_path / "apis").glob("*.ts"))
    for operation_id in operation_ids(vendor):
        assert re.search(rf"async {operation_id}\(", code), operation_id
    assert not re.search(r"headerParameters\[['\"]x-sandbox", code, re.IGNORECASE)  # no sandbox control is sent


def test_the_generator_refuses_a_link_request_body_that_is_not_a_string(tmp_path):
    """What made it refuse the Returning.AI and Capillary specs: its parser reads a link's `requestBody` as a string
    only (a runtime expression), though OpenAPI allows any value. The specs now say in words what those links said."""
    command = generator()
    spec = yaml.safe_load((SPECS / "returning-ai.yaml").read_text())
    spec["paths"]["/redemption-statuses/create"]["post"]["responses"]["201"]["links"] = {
        "ReadIt": {"operationId": "getRedemptionStatusById", "requestBody": {"statusId": "$response.body#/data/_id"}}}
    broken = tmp_path / "spec.yaml"
    broken.write_text(yaml.safe_dump(spec, sort_keys=False))
    result = subprocess.run([*command, "generate", "-i", str(broken), "-g", "python", "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=TIME_LIMIT, check=False)
    assert result.returncode != 0
    assert "links.ReadIt.requestBody is not of type `string`" in result.stdout + result.stderr
    for vendor in VENDORS:  # and no spec has one
        document = yaml.safe_load((SPECS / f"{vendor}.yaml").read_text())
        bodies = [(path, name) for path, item in document["paths"].items() for op in item.values()
                  if isinstance(op, dict) for response in op.get("responses", {}).values()
                  for name, link in response.get("links", {}).items() if not isinstance(link.get("requestBody", ""), str)]
        assert bodies == [], vendor


def test_schemathesis_still_follows_every_link_of_the_specs():
    """The links left (those that pass a value to a parameter) are transitions of Schemathesis's stateful tests."""
    import schemathesis
    config = schemathesis.config.SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
    for vendor in VENDORS:
        document = yaml.safe_load((SPECS / f"{vendor}.yaml").read_text())
        declared = {name for item in document["paths"].values() for op in item.values() if isinstance(op, dict)
                    for response in op.get("responses", {}).values() for name in response.get("links", {})}
        machine = schemathesis.openapi.from_path(SPECS / f"{vendor}.yaml", config=config).as_state_machine()
        followed = {link.name for operation in machine._transitions.operations.values()
                    for link in operation.outgoing if not link.is_inferred}
        assert declared and followed == declared, vendor


# -- the Python client against a running sandbox -----------------------------------------------------------------
def credential_headers(live, vendor: str) -> dict:
    return next(c["headers"] for c in live.credentials if c["vendor"] == vendor and "Authorization" in c["headers"])


def configuration(package, live, vendor: str):
    """The generated client's Configuration: the vendor's base URL and its demo credential."""
    base_url = live.base_url + Spec(SPECS / f"{vendor}.yaml").base_paths[0]
    scheme, _, secret = credential_headers(live, vendor)["Authorization"].partition(" ")
    if scheme == "Basic":
        username, _, password = base64.b64decode(secret).decode().partition(":")
        return package.Configuration(host=base_url, username=username, password=password)
    return package.Configuration(host=base_url, access_token=secret)


def method_of(package, operation_id: str):
    """The `<operation>_with_http_info` method (status, headers and the typed answer) of the generated API classes."""
    wanted = plain(operation_id) + "withhttpinfo"
    return next((cls, name) for _, cls in inspect.getmembers(package.api, inspect.isclass)
                for name in vars(cls) if plain(name) == wanted)


def keyword(parameters: dict, name: str) -> str:
    """The generated method's keyword for a spec parameter (x-fabric-tenant-id -> x_fabric_tenant_id)."""
    return next(p for p in parameters if plain(p) == plain(name))


def model_class(annotation):
    """The generated model a body annotation names (Optional[Model], Annotated[Model, ...] or Model)."""
    if hasattr(annotation, "from_dict"):
        return annotation
    return next(filter(None, (model_class(a) for a in typing.get_args(annotation))), None)


def loose(value, where: str = "answer") -> list[str]:
    """Where a parsed answer is not typed to its leaves: a field declared `Any` (holding a value), a plain dict. (An
    anyOf/oneOf wrapper holds its value in `actual_instance`, declared Any, after checking it against each typed
    alternative: its value is what counts.)"""
    from pydantic import BaseModel
    found = []
    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if item is not None and _holds_any(field.annotation) and name != "actual_instance":
                found.append(f"{where}.{name}: typed Any")
            found += loose(item, f"{where}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += loose(item, f"{where}[{index}]")
    elif isinstance(value, dict):
        found.append(f"{where}: a plain dict {sorted(value)}")
    return found


def dropped(kept, answer, where: str = "answer") -> list[str]:
    """Where the parsed model, back as a dict, differs from the JSON it was read from (a field the model has no
    attribute for is dropped without a word). Date-times come back as datetimes."""
    if isinstance(answer, dict) and isinstance(kept, dict):
        return [f"{where}.{k}: dropped" for k in answer.keys() - kept.keys()] + [
            f"{where}.{k}: added" for k in kept.keys() - answer.keys()] + [
            d for k in answer.keys() & kept.keys() for d in dropped(kept[k], answer[k], f"{where}.{k}")]
    if isinstance(answer, list) and isinstance(kept, list) and len(answer) == len(kept):
        return [d for i, (k, a) in enumerate(zip(kept, answer)) for d in dropped(k, a, f"{where}[{i}]")]
    if isinstance(kept, datetime) and isinstance(answer, str):
        return [] if kept == datetime.fromisoformat(answer) else [f"{where}: {kept} != {answer}"]
    if hasattr(kept, "get_secret_value"):  # a `format: password` string
        kept = kept.get_secret_value()
    kept = kept.value if isinstance(kept, Enum) else kept
    same = kept == answer and isinstance(kept, bool) == isinstance(answer, bool)
    return [] if same else [f"{where}: {kept!r} != {answer!r}"]


def _holds_any(annotation) -> bool:
    return annotation is typing.Any or any(_holds_any(a) for a in typing.get_args(annotation))


def call(package, api_client, vendor: str, row: dict, headers: dict):
    """Send a recorded request through the generated client; return its ApiResponse."""
    operation = next(op for op in Spec(SPECS / f"{vendor}.yaml").operations if op.operation_id == row["operation"])
    cls, name = method_of(package, row["operation"])
    method = getattr(cls(api_client), name)
    parameters = inspect.signature(method).parameters
    given = {**row.get("query", {}), **headers, **row.get("headers", {})}
    values = dict(template_regex(operation.path).match(row["path"]).groupdict())
    kwargs = {}
    for param in operation.parameters:
        raw = values.get(param.name) if param.location == "path" else given.get(param.name)
        if raw is not None and param.name.lower() != "authorization":
            kwargs[keyword(parameters, param.name)] = _coerce(str(raw), param.schema)
    if "body" in row:
        [(body_name, model)] = [(n, model_class(p.annotation)) for n, p in parameters.items()
                                if n not in kwargs and model_class(p.annotation) is not None]
        kwargs[body_name] = model.from_dict(row["body"])
    return method(**kwargs)


@pytest.mark.filterwarnings("ignore:POST /coupons/{couponId}/redemptions is deprecated:DeprecationWarning")  # as it is
@pytest.mark.parametrize("vendor", VENDORS)
def test_generated_python_client_calls_every_operation_and_parses_typed_models(python_clients, live, vendor):
    _, status, output, _ = python_clients[vendor]
    assert status == 0, output[-3000:]
    package = importlib.import_module(package_name(vendor))
    importlib.import_module(f"{package.__name__}.api")
    authenticated = package.ApiClient(configuration(package, live, vendor))
    anonymous = package.ApiClient(package.Configuration(host=authenticated.configuration.host))
    headers = {k: v for k, v in credential_headers(live, vendor).items() if k.lower() != "authorization"}
    live.reset()
    called = set()
    for row in (r for r in RECORDED[vendor] if r["status"] < 300):
        response = call(package, anonymous if row.get("auth") == "none" else authenticated, vendor, row, headers)
        answer = json.loads(response.raw_data)
        assert response.status_code == row["status"], (row, answer)
        parsed = response.data
        assert type(parsed).__module__.startswith(f"{package.__name__}.models."), (row["operation"], type(parsed))
        assert loose(parsed) == [], row["operation"]
        assert dropped(parsed.to_dict(), answer) == [], row["operation"]  # every field of the answer kept
        called.add(row["operation"])
    assert called == set(operation_ids(vendor))


def test_generated_python_client_status_update_changes_the_status(python_clients, live):
    """The PUT sends its status as statusId (the one documented spelling; seed 002's statusID is still accepted on
    the wire), and the order reads back in that status, with the change in its history."""
    package = importlib.import_module(package_name("returning-ai"))
    importlib.import_module(f"{package.__name__}.api")
    api = package.RewardsRedemptionsApi(package.ApiClient(configuration(package, live, "returning-ai")))
    live.reset()
    order, shipping = "ORD20260102ffc6", "695e2f8b3358520a2ecf86e4"
    read = package.GetRedemptionTransactionStatusHistoryRequest(transaction_id=order)
    before = api.get_redemption_transaction_status_history(read).data
    assert before.status_id != shipping
    request = package.UpdateStatusRequest(transaction_id=order, status_id=shipping)
    assert request.to_dict() == {"transactionId": order, "statusId": shipping, "refundCoins": False}
    answer = api.update_redemption_transaction_status_with_http_info(request)
    assert answer.status_code == 200 and answer.data.data.status_id == shipping
    after = api.get_redemption_transaction_status_history(read).data
    assert after.status_id == shipping
    assert [(e.from_status_id, e.to_status_id) for e in after.history][-1] == (before.status_id, shipping)
    assert len(after.history) == len(before.history) + 1
