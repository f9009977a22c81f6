"""The log: one line per request (method, path, status, duration, vendor, operation, world, fault), text or JSON,
at the level asked for; a fault that was asked for is one line, never a traceback; no secret in any line."""
import io
import json
import logging
import urllib.error
import urllib.request

import pytest

from sandbox import cli as run
from sandbox.core import logs

from helpers import PATCH_URL, strict_app
from services import run_py

AUTH = {"Authorization": "Bearer XXXXXX"}


@pytest.fixture
def captured():
    """The sandbox's log configured as run.py does, into a buffer; put back as it was afterwards."""
    logger = logging.getLogger("sandbox")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    buffer = io.StringIO()
    yield buffer
    logger.handlers[:], logger.level, logger.propagate = saved


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_one_json_line_per_request_with_its_fields_and_no_secret(captured):
    logs.configure("info", "json", captured)
    app = strict_app(size=5, publisher_timeout=0.01)
    client = app.test_client()
    workspace = client.post("/_sandbox/workspaces", json={"size": 5}).get_json()
    ws_key = next(c for c in workspace["credentials"] if c["name"] == "XXXXXX")["headers"]
    sent = [
        client.patch(PATCH_URL + "?access_token=SECRET-IN-QUERY", json={"redemptionInstructions": "x"}, headers=AUTH),
        client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers={**AUTH, "X-Sandbox-Fault": "rate-limit"}),
        client.patch(PATCH_URL, json={"voucherCode": "FAULT-STORE-UNAVAILABLE", "voucherExpiryDate": "31/12/2026"},
                     headers=AUTH),
        client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers={"Authorization": "Bearer wrong-key"}),
        client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers=ws_key),
        client.get("/"),
        client.get("/_sandbox/health", headers={"Host": "evil.example"}),
    ]
    assert [r.status_code for r in sent] == [200, 429, 502, 401, 200, 200, 403]
    lines = json_lines(captured.getvalue())
    assert len(lines) == 1 + len(sent)  # the workspace's creation, then one line each
    assert lines[0]["path"] == "/_sandbox/workspaces" and lines[0]["operation"] == "createWorkspace"
    request_lines = lines[1:]
    for line in request_lines:
        assert line["level"] == "info" and line["logger"] == "sandbox.requests"
        assert set(logs.FIELDS) <= set(line) and line["durationMs"] >= 0
    first, limited, outage, refused, in_workspace, page, foreign = request_lines
    assert {k: first[k] for k in ("method", "status", "vendor", "operation", "world", "fault")} == {
        "method": "PATCH", "status": 200, "vendor": "returning-ai", "operation": "updatePurchaseHistory",
        "world": "default", "fault": None}
    assert first["path"].startswith(PATCH_URL + "?access_token=‹secret ")
    assert (limited["status"], limited["fault"]) == (429, "rate-limit")
    assert (outage["status"], outage["fault"]) == (502, "store-unavailable")  # a magic value's fault, by its name
    assert (refused["status"], refused["fault"]) == (401, None)
    assert in_workspace["world"] == workspace["id"]
    assert (page["path"], page["status"], page["vendor"]) == ("/", 200, None)
    assert (foreign["path"], foreign["status"]) == ("/_sandbox/health", 403)
    text = captured.getvalue()
    for secret in ("SECRET-IN-QUERY", "XXXXXX", "wrong-key"):
        assert secret not in text


def test_text_lines_and_the_level(captured):
    logs.configure("info", "text", captured)
    client = strict_app(size=5).test_client()
    client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers={**AUTH, "X-Sandbox-Fault": "server-error"})
    client.get("/returning-ai/v1/nope%0Aforged 200")
    lines = captured.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].split(" ", 2)[2].startswith(f"INFO PATCH {PATCH_URL} 500 ")
    assert lines[0].endswith(" vendor=returning-ai operation=updatePurchaseHistory world=default fault=server-error")
    # a newline in a path cannot forge a line of its own
    assert "INFO GET /returning-ai/v1/nope\\x0aforged 200 404 " in lines[1]
    captured.seek(0), captured.truncate()
    logs.configure("warning", "text", captured)
    client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers=AUTH)
    client.get("/")
    assert captured.getvalue() == ""


def test_log_options_and_their_defaults(monkeypatch):
    args = run.parse_args([])
    assert (args.log_level, args.log_format) == ("info", "text")
    monkeypatch.setenv("SANDBOX_LOG_FORMAT", "json")
    args = run.parse_args(["--log-level", "warning"])
    assert (args.log_level, args.log_format) == ("warning", "json")
    with pytest.raises(SystemExit):
        run.parse_args(["--log-format", "xml"])


def _patch(base, **headers):
    request = urllib.request.Request(base + PATCH_URL, method="PATCH", data=b'{"redemptionInstructions": "x"}',
                                     headers={**AUTH, "Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, OSError):  # the connection dropped on purpose
        return None


def test_served_transport_faults_are_one_line_each_and_no_traceback(tmp_path):
    log = tmp_path / "server.log"
    with run_py(log, "--size", "5", "--workers", "1", "--log-format", "json") as (base, _, _):
        statuses = [_patch(base, **{"X-Sandbox-Fault": fault}) for fault in
                    ("connection-reset", "empty-response", "server-error", "malformed-body")]
        statuses.append(_patch(base, **{"X-Sandbox-Delay": "50"}))
    err = log.read_text()
    assert statuses == [None, None, 500, 200, 200]
    assert "Traceback" not in err and "Error" not in err, err
    lines = [line for line in json_lines("\n".join(l for l in err.splitlines() if l.startswith("{")))
             if line["logger"] == "sandbox.requests" and line["path"] == PATCH_URL]
    # in any order: the client may see its connection dropped before the line is written
    assert sorted(((line["status"], line["fault"]) for line in lines), key=repr) == sorted([
        (None, "connection-reset"), (None, "empty-response"), (500, "server-error"), (200, "malformed-body"),
        (200, None)], key=repr), err
    held = next(line for line in lines if line["fault"] is None)
    assert held["durationMs"] >= 50  # a held answer's line counts the hold
