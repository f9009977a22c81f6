"""The control API under /_sandbox (specs/sandbox.yaml)."""
import json

import yaml

from helpers import DOC_COMMUNITY, FABRIC, PATCH_URL, bearer


def test_health_reports_seed_size_vendors_and_backend(client, sandbox):
    assert client.get("/_sandbox/health").get_json() == {
        "status": "ok", "seed": 2026, "size": 40, "vendors": ["returning-ai", "fabric", "capillary"],
        "backend": {"kind": sandbox.settings.backend, "state": "up"}}


def test_health_is_503_saying_to_reset_when_the_worlds_data_vanished(client, sandbox):
    sandbox.store.clear()  # what a Redis restarted without persistence, or flushed, leaves
    response = client.get("/_sandbox/health")
    assert response.status_code == 503
    message = response.get_json()["error"]["message"]
    assert "gone from the" in message and "POST /_sandbox/reset" in message
    # Issue 26: a vendor call says the same, in the vendor's envelope, not "Invalid API key" (a 401).
    vendor = client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers=bearer())
    assert vendor.status_code == 503 and vendor.get_json()["message"] == message
    assert vendor.get_json()["meta"] == {"status": "error", "statusCode": 503}
    fabric = client.get("/fabric/v3/redemptions", headers=FABRIC)
    assert fabric.status_code == 503 and message in json.dumps(fabric.get_json())
    assert client.post("/_sandbox/reset", json={}).status_code == 200
    assert client.get("/_sandbox/health").status_code == 200


def test_credentials_list_the_documented_demo_keys(client):
    creds = client.get("/_sandbox/credentials").get_json()["credentials"]
    by_header = {c["headers"]["Authorization"]: c for c in creds if c["vendor"] == "returning-ai"}
    doc = by_header["Bearer XXXXXX"]
    assert doc["vendor"] == "returning-ai" and doc["tenant"] == DOC_COMMUNITY
    assert "purchase-history" in doc["permissions"]
    same_community = [c for c in creds if c["tenant"] == DOC_COMMUNITY]
    assert any("purchase-history" not in c["permissions"] for c in same_community)
    assert any("expired" in c["purpose"] for c in same_community)
    assert any(c["vendor"] == "returning-ai" and c["tenant"] != DOC_COMMUNITY
               and "purchase-history" in c["permissions"] for c in creds)
    for c in creds:
        assert set(c) == {"name", "vendor", "tenant", "permissions", "purpose", "headers"}
    assert {c["vendor"] for c in creds} == {"returning-ai", "fabric", "capillary"}


def test_every_listed_credential_behaves_as_its_purpose_says(client):
    url = "/returning-ai/v1/purchase-histories/ORD202641612055614747"
    for cred in client.get("/_sandbox/credentials").get_json()["credentials"]:
        if cred["vendor"] != "returning-ai":
            continue
        r = client.patch(url, json={"redemptionInstructions": "A"}, headers=cred["headers"])
        if "expired" in cred["purpose"] or "inactive" in cred["purpose"]:
            assert r.status_code == 401
        elif "purchase-history" not in cred["permissions"]:
            assert r.status_code == 403
        elif cred["tenant"] != DOC_COMMUNITY:
            assert r.status_code == 404
        else:
            assert r.status_code == 200


def test_reset_restores_seeded_state_and_clears_events(client, sandbox):
    url = "/returning-ai/v1/purchase-histories/ORD202641612055614747"
    seeded = sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012")
    client.patch(url, json={"voucherCode": "CHANGED-1", "voucherExpiryDate": "31/12/2026"}, headers=bearer())
    assert client.get("/_sandbox/events").get_json()["events"]
    r = client.post("/_sandbox/reset")
    assert r.status_code == 200 and r.get_json() == {"status": "reset", "seed": 2026, "size": 40}
    assert sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012") == seeded
    assert client.get("/_sandbox/events").get_json()["events"] == []


def test_reset_with_another_seed_and_size(client, sandbox):
    r = client.post("/_sandbox/reset", json={"seed": 7, "size": 10})
    assert r.get_json() == {"status": "reset", "seed": 7, "size": 10}
    # 10 generated purchase histories plus the 5 fixture records.
    assert len(sandbox.store.all("rai_purchase_histories")) == 15
    assert client.get("/_sandbox/health").get_json()["seed"] == 7


def test_reset_without_a_body_goes_back_to_the_start_up_seed_and_size_not_the_last_asked(client, sandbox):
    """Issue 32 point 4 (specs/sandbox.yaml resetSandbox): a seed or size left out is the world's start-up one."""
    client.post("/_sandbox/reset", json={"seed": 7, "size": 10})
    assert client.post("/_sandbox/reset").get_json() == {"status": "reset", "seed": 2026, "size": 40}
    assert len(sandbox.store.all("rai_purchase_histories")) == 45  # 40 generated and the 5 fixture records
    client.post("/_sandbox/reset", json={"seed": 7, "size": 10})
    assert client.post("/_sandbox/reset", json={"size": 3}).get_json() == {"status": "reset", "seed": 2026, "size": 3}


def test_a_workspace_reset_without_a_body_goes_back_to_its_own_seed_and_size(client):
    created = client.post("/_sandbox/workspaces", json={"seed": 5, "size": 4}).get_json()
    workspace = {"X-Sandbox-Workspace": created["id"]}
    client.post("/_sandbox/reset", json={"seed": 9, "size": 1}, headers=workspace)
    assert client.post("/_sandbox/reset", headers=workspace).get_json() == {"status": "reset", "seed": 5, "size": 4}
    assert client.get("/_sandbox/health").get_json()["seed"] == 2026  # the default world untouched


def test_reset_rejects_bad_options_in_control_envelope(client):
    r = client.post("/_sandbox/reset", json={"size": -1})
    assert r.status_code == 400
    assert r.get_json() == {"error": {"code": 400, "message": "size must be a whole number from 0 to 20000"}}
    r = client.post("/_sandbox/reset", json={"colour": "red"})
    assert r.status_code == 400 and "Unknown field(s) colour" in r.get_json()["error"]["message"]


def test_specs_are_served_with_a_server_pointing_at_the_sandbox(client):
    r = client.get("/_sandbox/specs/returning-ai.yaml")
    assert r.status_code == 200 and r.mimetype == "application/yaml"
    document = yaml.safe_load(r.get_data(as_text=True))
    assert document["servers"][0]["url"] == "http://localhost/returning-ai/v1"
    assert client.get("/_sandbox/specs/fabric.json").get_json()["servers"][0]["url"] == "http://localhost/fabric/v3"
    as_json = client.get("/_sandbox/specs/sandbox.json").get_json()
    assert as_json["servers"][0]["url"] == "http://localhost/_sandbox"
    r = client.get("/_sandbox/specs/nope.json")
    assert r.status_code == 404 and "available: capillary, fabric, returning-ai, sandbox" in r.get_json()["error"]["message"]
