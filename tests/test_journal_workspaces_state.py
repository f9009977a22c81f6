"""Request journal, workspaces, state snapshots, protection and scenarios (issue 6)."""
import json
import re
import concurrent.futures
import copy
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import FABRIC, PATCH_URL, bearer, read_state, strict_app

ROOT = Path(__file__).resolve().parent.parent

# -- journal ---------------------------------------------------------------------------------------------------
def test_journal_records_vendor_requests_with_secrets_masked(client):
    client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer())
    client.get("/fabric/v3/redemptions/nope", headers=FABRIC)
    client.get("/_sandbox/health")  # control calls are not journaled
    entries = client.get("/_sandbox/requests").get_json()["requests"]
    assert [(e["vendor"], e["operation"], e["status"]) for e in entries] == [
        ("returning-ai", "updatePurchaseHistory", 200), ("fabric", "getRedemption", 404)]
    first = entries[0]
    assert first["headers"]["Authorization"].startswith("Bearer ‹secret ") and "XXX" not in str(first)
    assert first["body"] == '{"redemptionInstructions": "A"}'
    assert json.loads(first["response"])["meta"]["statusCode"] == 200
    assert first["rule"] == "ok" and entries[1]["rule"] == "NotFound" and first["durationMs"] >= 0


def test_a_request_refused_before_its_body_was_read_keeps_its_body_in_the_journal(client):
    """Issue 32 point 5: a 401 or 403 is decided before validation reads the body; the entry keeps what was sent
    all the same (the journal was "" before, so `verify` could not match a refused request by its body)."""
    sent = {"redemptionInstructions": "Refused all the same"}
    assert client.patch(PATCH_URL, json=sent, headers=bearer("wrong-key")).status_code == 401
    assert client.patch(PATCH_URL, json=sent, headers=bearer("rai_test_no_purchase_history")).status_code == 403
    entries = client.get("/_sandbox/requests").get_json()["requests"][-2:]
    assert [(e["status"], json.loads(e["body"])) for e in entries] == [(401, sent), (403, sent)]
    r = client.post("/_sandbox/requests/verify", json={"status": 403, "body": sent, "count": 1})
    assert r.status_code == 200 and r.get_json()["verified"] is True


def test_each_entry_says_in_words_what_decided_its_answer(client):
    """Issue 31 point 4: the demo page's feed shows `reason`, not a class name (BadRequest, ok)."""
    client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer())
    client.patch(PATCH_URL, json={"voucherCode": "GOLD-1"}, headers=bearer())
    client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers={**bearer(), "X-Sandbox-Fault": "server-error"})
    client.get("/fabric/v3/redemptions/nope", headers=FABRIC)
    client.patch(PATCH_URL, json={}, headers=bearer("rai_test_no_purchase_history"))
    reasons = [e["reason"] for e in client.get("/_sandbox/requests").get_json()["requests"][-5:]]
    assert reasons[0] == "ok" and reasons[2] == "fault: server-error"
    assert reasons[1] == "validation: voucherExpiryDate missing"
    assert reasons[3].startswith("not found: ") and reasons[4].startswith("permission: ")


def last_entry(client) -> dict:
    return client.get("/_sandbox/requests").get_json()["requests"][-1]


def test_a_write_keeps_each_record_it_changed_before_and_after_with_the_changed_fields(client):
    """Issue 31 point 4 (core/changes.py): what the demo page shows of a write; a refusal changed nothing."""
    stored = read_state(client, "rai_purchase_histories", "507f1f77bcf86cd799439012")
    client.patch(PATCH_URL, json={"redemptionInstructions": "Ask at the desk"}, headers=bearer())
    [change] = last_entry(client)["changes"]
    assert (change["collection"], change["key"]) == ("rai_purchase_histories", "507f1f77bcf86cd799439012")
    assert change["before"] == stored
    assert change["after"] == read_state(client, "rai_purchase_histories", "507f1f77bcf86cd799439012")
    assert change["changed"] == ["product.redemptionInstructions", "updatedAt"]
    client.patch(PATCH_URL, json={"voucherCode": "GOLD-1"}, headers=bearer())  # refused: nothing changed
    assert "changes" not in last_entry(client)
    client.patch(PATCH_URL, json={"redemptionInstructions": "Ask at the desk"}, headers={
        **bearer(), "X-Sandbox-Fault": "server-error", "X-Sandbox-Applied": "true"})  # applied: kept and shown
    assert last_entry(client)["changes"][0]["changed"] == ["updatedAt"]


def test_a_created_record_has_no_before_a_deleted_one_no_after(client):
    created = client.post("/fabric/v3/redemptions", json={"promotionId": "614b58924e92f6861ac91234",
                                                          "orderId": "ORD-CHANGES-1", "userId": "u-1"}, headers=FABRIC)
    assert created.status_code == 201, created.get_json()
    [change] = last_entry(client)["changes"]
    assert change["before"] is None and change["after"]["orderId"] == "ORD-CHANGES-1"
    client.delete(f"/fabric/v3/redemptions/{created.get_json()['id']}", headers=FABRIC)
    [change] = last_entry(client)["changes"]
    assert change["before"]["orderId"] == "ORD-CHANGES-1" and change["after"] is None


def test_changes_never_show_a_credential_and_stay_within_their_bound(client):
    token = client.post("/capillary/v3/oauth/token/generate", json={"key": "cap-demo-client",
                                                                    "secret": "cap-demo-secret"})
    assert token.status_code == 200 and "changes" not in last_entry(client)  # the token record is a credential
    client.patch(PATCH_URL, json={"redemptionInstructions": "x" * 10_000}, headers=bearer())
    [change] = last_entry(client)["changes"]
    assert change == {"collection": "rai_purchase_histories", "key": "507f1f77bcf86cd799439012",
                      "changed": ["product.redemptionInstructions", "updatedAt"], "cut": True}


def test_a_change_and_its_journal_entry_commit_together(monkeypatch):
    """One commit per write request (issue 8): on SQLite, an answer the sandbox could not send (strict mode: its own
    spec forbids it) leaves neither the change nor a success in the journal, only the 500 it became."""
    import sandbox.vendors.returning_ai.handlers as handlers

    app = strict_app(backend="sqlite", size=5)
    client = app.test_client()
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "Kept"}, headers=bearer()).status_code == 200
    monkeypatch.setattr(handlers, "purchase_history_json", lambda order, now: {"not": "the documented shape"})
    r = client.patch(PATCH_URL, json={"redemptionInstructions": "Rolled back"}, headers=bearer())
    assert r.status_code == 500 and "spec forbids" in r.get_json()["message"]
    monkeypatch.undo()
    order = app.extensions["sandbox"].store.find_one("rai_purchase_histories", purchaseID=PATCH_URL.rsplit("/", 1)[1])
    assert order["product"]["redemptionInstructions"] == "Kept"
    entries = client.get("/_sandbox/requests").get_json()["requests"]
    assert [e["status"] for e in entries] == [200, 500]


def test_journal_filters_count_and_verify(client):
    for _ in range(3):
        client.get("/fabric/v3/redemptions?size=1", headers=FABRIC)
    client.get("/fabric/v3/redemptions/nope", headers=FABRIC)
    assert client.get("/_sandbox/requests/count?vendor=fabric").get_json() == {"count": 4}
    assert client.get("/_sandbox/requests/count?operation=listRedemptions&status=200").get_json() == {"count": 3}
    assert len(client.get("/_sandbox/requests?status=404").get_json()["requests"]) == 1
    since = client.get("/_sandbox/requests").get_json()["requests"][-1]["time"]
    assert client.get(f"/_sandbox/requests/count?since={since}").get_json()["count"] >= 1
    r = client.post("/_sandbox/requests/verify", json={"operation": "listRedemptions", "count": 3})
    assert r.status_code == 200 and r.get_json() == {"verified": True, "count": 3, "expected": {"count": 3}}
    r = client.post("/_sandbox/requests/verify", json={"operation": "listRedemptions", "atLeast": 4})
    assert r.status_code == 409 and r.get_json()["count"] == 3 and r.get_json()["expected"] == {"atLeast": 4}
    assert [m["request"]["operation"] for m in r.get_json()["nearMisses"]] == ["getRedemption"]  # the only one left


def test_journal_records_the_fault_that_decided(client):
    client.get("/fabric/v3/redemptions", headers={**FABRIC, "X-Sandbox-Fault": "server-error"})
    assert client.get("/_sandbox/requests").get_json()["requests"][-1]["rule"] == "fault:server-error"


def test_journal_is_bounded_and_clearable():
    client = strict_app(size=5, journal_size=5).test_client()
    for _ in range(8):
        client.get("/fabric/v3/redemptions?size=1", headers=FABRIC)
    entries = client.get("/_sandbox/requests").get_json()["requests"]
    assert len(entries) == 5 and entries[0]["id"] == 4
    assert client.delete("/_sandbox/requests").get_json() == {"deleted": 5}
    assert client.get("/_sandbox/requests").get_json()["requests"] == []


# -- workspaces ------------------------------------------------------------------------------------------------
def _workspace(client, **body):
    r = client.post("/_sandbox/workspaces", json=body)
    assert r.status_code == 201
    return r.get_json()


def _header(workspace, vendor, fragment=""):
    return next(c["headers"] for c in workspace["credentials"] if c["vendor"] == vendor and fragment in c["purpose"])


def test_workspace_is_an_isolated_world_with_its_own_credentials(client, sandbox):
    ws = _workspace(client, seed=7, size=10)
    rai = _header(ws, "returning-ai", "placeholder")
    assert re.fullmatch(r"Bearer XXXXXX\.[0-9a-f]{32}", rai["Authorization"])
    assert ws["id"][2:] not in rai["Authorization"]  # the credential does not give the workspace's ID away
    r = client.patch(PATCH_URL, json={"voucherCode": "WS-ONLY-1", "voucherExpiryDate": "31/12/2026"}, headers=rai)
    assert r.status_code == 200
    # The default world did not change, and the workspace's change is visible only with its header.
    assert sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "GOLD-2026-0001"
    scoped = {"X-Sandbox-Workspace": ws["id"]}
    voucher = client.get("/_sandbox/state/rai_vouchers?id=507f1f77bcf86cd799439016", headers=scoped).get_json()
    assert voucher["records"][0]["code"] == "WS-ONLY-1"
    assert [e["name"] for e in client.get("/_sandbox/events", headers=scoped).get_json()["events"]] == [
        "update:purchase-history", "voucher:update"]
    assert client.get("/_sandbox/events").get_json()["events"] == []
    assert client.get("/_sandbox/requests/count", headers=scoped).get_json() == {"count": 1}
    assert client.get("/_sandbox/requests/count").get_json() == {"count": 0}
    assert client.get("/_sandbox/health", headers=scoped).get_json()["seed"] == 7
    # The default world's key does not open the workspace, and vice versa.
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 200
    assert sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012")["voucherCode"] == "GOLD-2026-0001"


def test_workspace_credentials_for_every_vendor(client):
    ws = _workspace(client, size=5)
    assert client.get("/fabric/v3/redemptions/614b58924e92f6861ac9d43b", headers=_header(ws, "fabric", "demo tenant")).status_code == 200
    cap = _header(ws, "capillary", "seed 004")
    assert client.get("/capillary/v1.1/points/isredeemable?id=109943742&points=1", headers=cap).status_code == 200


def test_workspace_faults_are_its_own(client):
    ws = _workspace(client, size=5)
    scoped = {"X-Sandbox-Workspace": ws["id"]}
    client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "server-error"}, headers=scoped)
    ws_fabric = _header(ws, "fabric", "demo tenant")
    assert client.get("/fabric/v3/redemptions?size=1", headers=ws_fabric).status_code == 500
    assert client.get("/fabric/v3/redemptions?size=1", headers=FABRIC).status_code == 200


def test_workspace_delete_and_unknown(client):
    ws = _workspace(client, size=5)
    assert [w["id"] for w in client.get("/_sandbox/workspaces").get_json()["workspaces"]] == [ws["id"]]
    assert client.delete(f"/_sandbox/workspaces/{ws['id']}").get_json() == {"id": ws["id"], "deleted": True}
    assert client.delete(f"/_sandbox/workspaces/{ws['id']}").status_code == 404
    assert client.get("/_sandbox/health", headers={"X-Sandbox-Workspace": ws["id"]}).status_code == 404
    # Its credentials now mean nothing.
    r = client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=_header(ws, "returning-ai", "placeholder"))
    assert r.status_code == 401


def test_a_workspace_deleted_while_a_request_is_under_way_is_not_made_anew(tmp_path, monkeypatch):
    """Another worker deletes a workspace between a request's lookup of it and the request's first use of its
    store (on a thread with no connection to its file yet): the client gets a 503 in the vendor's envelope saying
    so, not a 500, and the workspace's database file is not made anew, empty, where nothing would remove it."""
    db = tmp_path / "sandbox.db"
    app = strict_app(backend="sqlite", db=str(db), size=5)
    client, sandbox = app.test_client(), app.extensions["sandbox"]
    other_worker = strict_app(backend="sqlite", db=str(db), size=5).extensions["sandbox"]
    ws = _workspace(client, size=5)
    found = sandbox._workspace_with_suffix

    def found_then_deleted(suffix):
        world = found(suffix)
        if world is not None:
            with concurrent.futures.ThreadPoolExecutor(1) as elsewhere:  # as another process would
                elsewhere.submit(other_worker.drop_workspace, world.id).result()
        return world

    monkeypatch.setattr(sandbox, "_workspace_with_suffix", found_then_deleted)
    with concurrent.futures.ThreadPoolExecutor(1) as fresh_thread:
        answer = fresh_thread.submit(client.patch, PATCH_URL, json={"redemptionInstructions": "A"},
                                     headers=_header(ws, "returning-ai", "placeholder")).result()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.get_json()["meta"] == {"status": "error", "statusCode": 503}
    assert f"Workspace {ws['id']} was deleted while this request was under way" in answer.get_json()["message"]
    assert sorted(p.name for p in tmp_path.iterdir() if ws["id"] in p.name) == []
    monkeypatch.undo()
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "A"},
                        headers=_header(ws, "returning-ai", "placeholder")).status_code == 401


def test_a_workspace_deleted_by_another_worker_does_not_fail_a_request_for_another(tmp_path, monkeypatch):
    """A worker learning of workspaces another made (its registry read just before one of them was deleted) skips
    the deleted one: a request for another workspace, and the workspace list, are answered as usual."""
    db = str(tmp_path / "sandbox.db")
    app = strict_app(backend="sqlite", db=db, size=5)
    client, sandbox = app.test_client(), app.extensions["sandbox"]
    other_worker = strict_app(backend="sqlite", db=db, size=5).extensions["sandbox"]
    gone, kept = other_worker.create_workspace(size=5), other_worker.create_workspace(size=5)
    registry_read = sandbox.registry.all(sandbox.REGISTRY)
    assert other_worker.drop_workspace(gone.id)
    read_all = sandbox.registry.all
    monkeypatch.setattr(sandbox.registry, "all", lambda collection: registry_read if collection == sandbox.REGISTRY
                        else read_all(collection))
    answer = client.get("/_sandbox/requests", headers={"X-Sandbox-Workspace": kept.id})
    assert answer.status_code == 200 and answer.get_json()["requests"] == []
    assert [w["id"] for w in client.get("/_sandbox/workspaces").get_json()["workspaces"]] == [kept.id]


def test_the_database_file_deleted_under_the_sandbox_says_to_restart(tmp_path):
    """Not a workspace gone: the sandbox's own file. A thread that opens it afresh gets a 503 in the vendor's envelope
    saying what happened and what to do, and the file is not made anew, empty."""
    db = tmp_path / "sandbox.db"
    app = strict_app(backend="sqlite", db=str(db), size=5)
    for path in tmp_path.iterdir():
        path.unlink()
    with concurrent.futures.ThreadPoolExecutor(1) as fresh_thread:
        answer = fresh_thread.submit(app.test_client().patch, PATCH_URL, json={"redemptionInstructions": "A"},
                                     headers=bearer()).result()
    assert answer.status_code == 503 and answer.get_json()["meta"] == {"status": "error", "statusCode": 503}
    assert answer.get_json()["message"].startswith(f"The sandbox's database file {db} was deleted while the sandbox "
                                                   "ran; nothing was written. Restart the sandbox")
    assert not db.exists()


def test_idle_workspaces_expire(monkeypatch):
    app = strict_app(size=5, workspace_ttl=0.05)
    client = app.test_client()
    ws = _workspace(client, size=5)
    sandbox = app.extensions["sandbox"]
    sandbox._last_sweep -= 10  # let the next request sweep at once
    import time
    time.sleep(0.1)
    client.get("/_sandbox/health")
    assert client.get("/_sandbox/workspaces").get_json()["workspaces"] == []
    assert ws["id"] not in sandbox.worlds


def test_parallel_ci_jobs_in_workspaces_do_not_disturb_each_other(client):
    """Concurrent jobs, each in its own workspace, run the same flow on the same records."""
    workspaces = [_workspace(client, size=5) for _ in range(4)]

    def job(ws):
        rai = _header(ws, "returning-ai", "placeholder")
        codes = []
        for n in range(10):
            code = f"JOB-{ws['id']}-{n}"
            r = client.patch(PATCH_URL, json={"voucherCode": code, "voucherExpiryDate": "31/12/2026"}, headers=rai)
            codes.append((r.status_code, r.get_json()["data"]["voucherCode"]))
        return ws, codes

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(job, workspaces))
    for ws, codes in results:
        assert codes == [(200, f"JOB-{ws['id']}-{n}") for n in range(10)]
        scoped = {"X-Sandbox-Workspace": ws["id"]}
        final = client.get("/_sandbox/state/rai_vouchers?id=507f1f77bcf86cd799439016", headers=scoped).get_json()
        assert final["records"][0]["code"] == f"JOB-{ws['id']}-9"
        assert client.get("/_sandbox/requests/count", headers=scoped).get_json() == {"count": 10}


# -- state -----------------------------------------------------------------------------------------------------
def test_export_change_import_restores_exactly(client):
    snapshot = client.get("/_sandbox/state/export").get_json()
    client.patch(PATCH_URL, json={"voucherCode": "CHANGED", "voucherExpiryDate": "31/12/2026"}, headers=bearer())
    client.put("/fabric/v3/redemptions/614b58924e92f6861ac9d43b", headers=FABRIC,
               json={"promotionId": "614b58924e92f6861ac91234", "orderId": "X", "status": "INACTIVE"})
    assert client.get("/_sandbox/state/export").get_json() != snapshot
    r = client.post("/_sandbox/state/import", json=copy.deepcopy(snapshot))
    assert r.status_code == 200 and r.get_json()["status"] == "imported"
    assert client.get("/_sandbox/state/export").get_json() == snapshot
    # And the restored world serves requests as before (indexes rebuilt).
    r = client.patch(PATCH_URL, json={"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2026"},
                     headers=bearer())
    assert r.status_code == 409


def test_a_redemption_with_attribute_values_as_a_list_exports_and_imports_back(client):
    """Issue 26 point 3: fabric accepts an attribute's `values` as a list (its spec's Attribute), so the import
    schema must too: the world round-trips, export -> import -> export identical."""
    created = client.post("/fabric/v3/redemptions", headers=FABRIC, json={
        "promotionId": "614b58924e92f6861ac91234", "orderId": "ROUND-TRIP-1",
        "additionalAttributes": [{"name": "sizes", "values": ["S", "M"]}]})
    assert created.status_code == 201
    exported = client.get("/_sandbox/state/export").get_json()
    r = client.post("/_sandbox/state/import", json=exported)
    assert r.status_code == 200, r.get_json()
    assert client.get("/_sandbox/state/export").get_json() == exported


def test_a_large_invalid_import_is_refused_by_the_compiled_validator_naming_the_field_and_changes_nothing():
    """Issue 25 point 3: an import beyond 1 MiB (a large world) is judged by jsonschema-rs alone (core/validation.py
    LARGE_BODY), so its refusal costs what an acceptance does; the 400 names the field, and nothing is imported."""
    client = strict_app(backend="memory", size=400).test_client()
    exported = client.get("/_sandbox/state/export").get_json()
    collection = "cap_redemptions"
    key = next(iter(exported["collections"][collection]))
    original = exported["collections"][collection][key]["redemptionId"]
    exported["collections"][collection][key]["redemptionId"] = 12345
    body = json.dumps(exported).encode()
    assert len(body) > 1024 * 1024
    before = client.get("/_sandbox/state").get_json()
    r = client.post("/_sandbox/state/import", data=body, content_type="application/json")
    assert r.status_code == 400
    assert f"collections.{collection}.{key}.redemptionId" in r.get_json()["error"]["message"]
    assert client.get("/_sandbox/state").get_json() == before
    exported["collections"][collection][key]["redemptionId"] = original
    r = client.post("/_sandbox/state/import", json=exported)
    assert r.status_code == 200


def test_state_collections_listed(client):
    collections = client.get("/_sandbox/state").get_json()["collections"]
    assert collections["rai_purchase_histories"] > 0 and collections["fab_redemptions"] > 0
    assert client.get("/_sandbox/state/nope").status_code == 404


# -- protection ------------------------------------------------------------------------------------------------
def test_admin_token_required_when_set():
    client = strict_app(size=5, admin_token="s3cret").test_client()
    r = client.get("/_sandbox/health")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'X-Sandbox-Admin-Token realm="sandbox control API"'
    assert client.get("/_sandbox/health", headers={"X-Sandbox-Admin-Token": "wrong"}).status_code == 401
    assert client.get("/_sandbox/health", headers={"X-Sandbox-Admin-Token": "s3cret"}).status_code == 200
    # Vendor APIs are unaffected, and the token never reaches the journal.
    client.get("/fabric/v3/redemptions?size=1", headers={**FABRIC, "X-Sandbox-Admin-Token": "s3cret"})
    entries = client.get("/_sandbox/requests", headers={"X-Sandbox-Admin-Token": "s3cret"}).get_json()["requests"]
    assert entries and "s3cret" not in str(entries)


def test_control_api_off_beyond_loopback_without_token():
    client = strict_app(size=5, control_open=False).test_client()
    r = client.get("/_sandbox/health")
    assert r.status_code == 403 and "--admin-token" in r.get_json()["error"]["message"]


# -- scenarios -------------------------------------------------------------------------------------------------
def test_scenarios_listed_and_loaded(client, sandbox):
    names = {s["name"] for s in client.get("/_sandbox/scenarios").get_json()["scenarios"]}
    assert names == {"voucher-typo-reissue", "fulfilment-refund", "store-outage", "capillary-late-bill",
                     "fabric-order-cancel", "retry-safety", "rate-limited"}
    r = client.post("/_sandbox/scenarios/store-outage")
    assert r.status_code == 200 and r.get_json()["faults"][0]["fault"] == "store-unavailable"
    statuses = {client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code
                for _ in range(10)}
    assert statuses == {200, 502}
    assert client.post("/_sandbox/scenarios/nope").status_code == 404


@pytest.mark.parametrize("name,check", [
    ("voucher-typo-reissue", lambda s: s.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "G0LD-2O26-OOO1"),
    ("fulfilment-refund", lambda s: s.get("rai_redemption_transactions", "686352a0b1c2d3e4f5a63831")["statusId"]
     == "695e2f8b3358520a2ecf86e4"),
    ("capillary-late-bill", lambda s: s.get("cap_redemptions", "LATEB1")["billId"] == -1),
    ("fabric-order-cancel", lambda s: s.get("fab_redemptions", "614b58924e92f6861ac9d4ff")["status"] == "ACTIVE"),
])
def test_each_scenario_sets_up_its_story(client, sandbox, name, check):
    assert client.post(f"/_sandbox/scenarios/{name}").status_code == 200
    assert check(sandbox.store)


@pytest.mark.parametrize("operation", ["reset", "import", "scenario"])
def test_a_whole_world_write_on_a_workspace_deleted_under_it_is_a_503_and_leaves_nothing(tmp_path, monkeypatch,
                                                                                          operation):
    """Issue 26: a reset or an import under way when another worker deleted its workspace answered 200 (it wrote
    to the unlinked file, or made the dropped Redis keys anew). The deletion lands after the write has opened the
    workspace's store (here: at the end of the write), and the answer is the README's 503."""
    db = tmp_path / "sandbox.db"
    app = strict_app(backend="sqlite", db=str(db), size=5)
    client = app.test_client()
    ws = _workspace(client, size=5)
    exported = client.get("/_sandbox/state/export", headers={"X-Sandbox-Workspace": ws["id"]}).get_json()
    world = app.extensions["sandbox"].workspaces()[0]
    written = {"reset": "reset", "import": "adopt", "scenario": "reset"}[operation]
    write = getattr(type(world), written)

    def written_then_deleted(self, *args, **kwargs):
        result = write(self, *args, **kwargs)
        subprocess.run([sys.executable, "-c", "from sandbox.app import create_app; from sandbox.config import Settings; "
                        f"assert create_app(Settings(backend='sqlite', db={str(db)!r})).extensions['sandbox']"
                        f".drop_workspace({ws['id']!r})"], check=True, cwd=ROOT)  # another worker process
        return result

    monkeypatch.setattr(type(world), written, written_then_deleted)
    headers = {"X-Sandbox-Workspace": ws["id"]}
    answer = {"reset": lambda: client.post("/_sandbox/reset", json={"size": 5}, headers=headers),
              "import": lambda: client.post("/_sandbox/state/import", json=exported, headers=headers),
              "scenario": lambda: client.post("/_sandbox/scenarios/store-outage", headers=headers)}[operation]()
    assert answer.status_code == 503, answer.get_json()
    assert f"Workspace {ws['id']} was deleted while this request was under way" in answer.get_json()["error"]["message"]
    assert sorted(p.name for p in tmp_path.iterdir() if ws["id"] in p.name) == []
    assert client.get("/_sandbox/health", headers=headers).status_code == 404
