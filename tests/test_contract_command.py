"""`run.py contract`: the vendor's contract against a live server, with JUnit XML and a Markdown report."""
import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

import pytest
from flask import Flask, jsonify, request

from helpers import served, strict_app
from sandbox.kit import contract


@pytest.fixture(scope="module")
def sandbox_url():
    with served(strict_app(size=20, publisher_timeout=0.01)) as port:
        yield f"http://127.0.0.1:{port}"


def test_vendor_contract_drops_sandbox_only_headers_of_older_specs():
    """The specs carry none any more (tests/test_specs.py); a spec given by path may be an older one that does."""
    older = contract.spec_path(str(contract.Settings().specs_dir / "released" / "returning-ai.yaml"))
    loaded = contract.yaml.safe_load(older.read_text())
    assert "SandboxFault" in loaded["components"]["parameters"]
    document = contract.vendor_contract(loaded)
    names = [p.get("name") or p.get("$ref") for item in document["paths"].values()
             for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]
    assert names and not any("Sandbox" in n for n in names)
    assert "SandboxFault" not in document["components"]["parameters"]


def test_contract_passes_against_the_sandbox(sandbox_url, tmp_path, capsys):
    status = contract.main(["--spec", "returning-ai", "--base-url", f"{sandbox_url}/returning-ai/v1",
                            "--exclude", "getRedemptionStatusById",
                            "--max-time", "8", "--phases", "examples,coverage", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    # the project's own schemathesis.toml gives each spec only its own credential: no warning about the others
    assert "Warning" not in out and "WARNING" not in out and "Unused OpenAPI auth" not in out
    assert "7 selected / 8 total" in out
    tested = {case.get("name") for case in ElementTree.parse(tmp_path / "contract-returning-ai.xml").iter("testcase")}
    assert len(tested) == 7 and not any("redemption-statuses/get" in name for name in tested)
    assert "0 with failures" in (tmp_path / "contract-returning-ai.md").read_text()


def test_contract_selects_operations_by_id(sandbox_url, tmp_path, capsys):
    """A partner implementing only the two documented Returning.AI operations tests only those."""
    status = contract.main(["--spec", "returning-ai", "--base-url", f"{sandbox_url}/returning-ai/v1",
                            "--operation", "updatePurchaseHistory", "--operation", "updateRedemptionTransactionStatus",
                            "--max-time", "5", "--phases", "examples", "--report-dir", str(tmp_path)])
    assert status == 0
    tested = sorted(case.get("name") for case in
                    ElementTree.parse(tmp_path / "contract-returning-ai.xml").iter("testcase"))
    assert tested == ["PATCH /purchase-histories/{purchaseHistoryID}", "PUT /redemption-transactions/status"]
    with pytest.raises(SystemExit, match="No operation updatePurchaseHistorie in the spec; its operations: "
                                         "updatePurchaseHistory, updateRedemptionTransactionStatus"):
        contract.main(["--spec", "returning-ai", "--base-url", sandbox_url, "--operation", "updatePurchaseHistorie"])


def test_contract_fails_fast_when_nothing_answers(tmp_path, capsys):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    status = contract.main(["--spec", "fabric", "--base-url", f"http://127.0.0.1:{port}/fabric/v3",
                            "--report-dir", str(tmp_path)])
    assert status == contract.UNREACHABLE == 2 and time.monotonic() - started < 10
    err = capsys.readouterr().err
    assert f"Nothing answers at http://127.0.0.1:{port}/fabric/v3" in err and "No case was run" in err
    assert not list(tmp_path.iterdir())  # no report of a run that never was


def test_contract_fails_against_a_broken_server_and_reports_curl_that_runs(tmp_path, capsys):
    broken = Flask("broken")
    seen = []

    @broken.route("/<path:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def anything(anything):
        seen.append((request.method, request.path, request.headers.get("Authorization")))
        return jsonify(oops=True)

    with served(broken) as port:
        base = f"http://127.0.0.1:{port}/fabric/v3"
        status = contract.main(["--spec", "fabric", "--base-url", base, "--auth", "bearer:partner-secret-token",
                                "--max-time", "8", "--phases", "examples", "--report-dir", str(tmp_path)])
        out = capsys.readouterr().out
        assert status == 1
        report = (tmp_path / "contract-fabric.md").read_text()
        assert "with failures" in report and "0 with failures" not in report
        assert "curl -X" in report and "Response violates schema" in report
        # the secret reaches neither the console nor the reports: the commands read it from a variable
        for text in (out, report, (tmp_path / "contract-fabric.xml").read_text()):
            assert "partner-secret-token" not in text and "[Filtered]" not in text
        assert "export CONTRACT_AUTHORIZATION='Bearer <the TOKEN given to --auth>'" in report
        curls = [line.strip() for line in report.splitlines() if line.strip().startswith("curl -X DELETE")
                 and '"Authorization: $CONTRACT_AUTHORIZATION"' in line]
        assert curls, report
        seen.clear()
        # as printed, with the variable set: the request arrives with the credential
        subprocess.run(["bash", "-c", curls[0] + " --silent --fail --output /dev/null"], check=True, timeout=30,
                       env={"PATH": os.environ["PATH"], "CONTRACT_AUTHORIZATION": "Bearer partner-secret-token"})
        assert seen == [("DELETE", "/fabric/v3/redemptions/614b58924e92f6861ac9d43b", "Bearer partner-secret-token")]



def test_without_schemathesis_installed_the_command_says_which_extra_to_install(monkeypatch, capsys):
    """Issue 32 point 2: the package serves without the test stack; `contract` needs it and says how to get it."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "schemathesis" else found(name, *a))
    monkeypatch.setattr(sys, "argv", ["run.py"])
    with pytest.raises(SystemExit) as stopped:
        contract.main(["--spec", "fabric", "--base-url", "http://127.0.0.1:1"])
    assert stopped.value.code == 2 and capsys.readouterr().err == (
        "run.py contract: error: needs Schemathesis, which the sandbox installs only when asked for: pip install "
        "'redemption-sandbox[contract]'\n")
