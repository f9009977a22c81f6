"""`run.py contract`: the vendor's contract against a live server, with JUnit XML and a Markdown report."""
import threading

import pytest
from flask import Flask, jsonify
from werkzeug.serving import make_server

from sandbox import Settings, create_app
from sandbox.kit import contract


def serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def sandbox_url():
    server = serve(create_app(Settings(size=20, publisher_timeout=0.01)))
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_vendor_contract_drops_sandbox_only_headers_of_older_specs():
    """The specs carry none any more (tests/test_specs.py); a spec given by path may be an older one that does."""
    older = contract.spec_path(str(contract.Settings().specs_dir / "released" / "returning-ai.yaml"))
    assert "SandboxFault" in contract.yaml.safe_load(older.read_text())["components"]["parameters"]
    document = contract.vendor_contract(older)
    names = [p.get("name") or p.get("$ref") for item in document["paths"].values()
             for op in item.values() if isinstance(op, dict) for p in op.get("parameters", [])]
    assert names and not any("Sandbox" in n for n in names)
    assert "SandboxFault" not in document["components"]["parameters"]


def test_contract_passes_against_the_sandbox(sandbox_url, tmp_path):
    status = contract.main(["--spec", "returning-ai", "--base-url", f"{sandbox_url}/returning-ai/v1",
                            "--max-time", "8", "--phases", "examples,coverage", "--report-dir", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "contract-returning-ai.xml").exists()
    assert "0 with failures" in (tmp_path / "contract-returning-ai.md").read_text()


def test_contract_fails_against_a_broken_server_and_reports_curl(tmp_path):
    broken = Flask("broken")

    @broken.route("/<path:anything>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def anything(anything):
        return jsonify(oops=True)

    server = serve(broken)
    try:
        status = contract.main(["--spec", "fabric", "--base-url", f"http://127.0.0.1:{server.server_port}/fabric/v3",
                                "--auth", "bearer:whatever", "--max-time", "8", "--phases", "examples",
                                "--report-dir", str(tmp_path)])
    finally:
        server.shutdown()
    assert status == 1
    report = (tmp_path / "contract-fabric.md").read_text()
    assert "with failures" in report and "0 with failures" not in report
    assert "curl -X" in report and "Response violates schema" in report
