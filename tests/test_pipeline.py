"""The request pipeline (issue 13): faults spent where they strike, one journal entry with what the client
received, and the operation (not the HTTP method) deciding whether it runs under the write lock."""
import socket

import pytest

from helpers import CAPILLARY, CAP_UPDATE, FABRIC, PATCH_URL, bearer, served, strict_app
from services import wait_for

UNKNOWN_ORDER_URL = "/returning-ai/v1/purchase-histories/ORD000000000000000000"
def rules(client):
    return client.get("/_sandbox/faults").get_json()["rules"]


def journal(client):
    return client.get("/_sandbox/requests").get_json()["requests"]


# -- seed 000: "Returns 502 if the upstream store service is unreachable or the publisher times out" ----------
@pytest.mark.parametrize("fault", ["store-unavailable", "publisher-timeout"])
def test_rule_502_one_shot_rule_survives_the_404_and_409_answered_first(client, sandbox, fault):
    client.post("/_sandbox/faults", json={"vendor": "returning-ai", "operation": "updatePurchaseHistory",
                                          "fault": fault, "count": 1})
    # 404: the order does not exist, so nothing reaches the publisher.
    assert client.patch(UNKNOWN_ORDER_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 404
    # 409: the voucher code belongs to another voucher of the product, refused before publishing too.
    taken = _code_of_another_voucher(sandbox)
    if taken is not None:
        r = client.patch(PATCH_URL, json={"voucherCode": taken, "voucherExpiryDate": "31/12/2027"}, headers=bearer())
        assert r.status_code == 409
    assert rules(client)[0]["count"] == 1 and rules(client)[0]["fired"] == 0
    before = sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012")
    r = client.patch(PATCH_URL, json={"redemptionInstructions": "Struck"}, headers=bearer())
    assert r.status_code == 502 and r.get_json()["meta"]["statusCode"] == 502
    assert sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012") == before
    assert rules(client)[0]["count"] == 0 and rules(client)[0]["fired"] == 1
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "Now"}, headers=bearer()).status_code == 200
    decided = [(e["status"], e["rule"]) for e in journal(client)]
    assert decided[0] == (404, "NotFound") and decided[-2:] == [(502, f"fault:{fault}"), (200, "ok")]


def _code_of_another_voucher(sandbox):
    order = sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012")
    voucher = sandbox.store.get("rai_vouchers", order["voucherID"])
    others = [v for v in sandbox.store.find("rai_vouchers", productID=voucher["productID"])
              if v["_id"] != voucher["_id"] and v["communityID"] == voucher["communityID"]]
    return others[0]["code"] if others else None


def test_rule_750_one_shot_rule_survives_the_8015_answered_first(client, sandbox):
    client.post("/_sandbox/faults", json={"vendor": "capillary", "operation": "updateRedeemPoints",
                                          "fault": "redemption-update-failed", "count": 1})
    r = client.put("/capillary/v2/points/updateRedemption", json={**CAP_UPDATE, "redemptionId": "nope"},
                   headers=CAPILLARY)
    assert r.status_code == 404 and r.get_json()["errors"][0]["code"] == 8015
    assert rules(client)[0]["count"] == 1
    r = client.put("/capillary/v2/points/updateRedemption", json=CAP_UPDATE, headers=CAPILLARY)
    assert r.status_code == 409 and r.get_json()["errors"][0]["code"] == 750
    assert sandbox.store.get("cap_redemptions", "sTDVyi")["billNumber"] == "idk"
    assert client.put("/capillary/v2/points/updateRedemption", json=CAP_UPDATE, headers=CAPILLARY).status_code == 200
    assert sandbox.store.get("cap_redemptions", "sTDVyi")["billNumber"] == "new"
    assert [e["rule"] for e in journal(client)] == ["NotFound", "fault:redemption-update-failed", "ok"]


def test_generic_rule_is_spent_before_the_operation_runs(client):
    client.post("/_sandbox/faults", json={"vendor": "returning-ai", "fault": "server-error", "count": 1})
    assert client.patch(UNKNOWN_ORDER_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 500
    assert client.patch(UNKNOWN_ORDER_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 404


# -- the journal says what the client received -----------------------------------------------------------------
def test_journal_keeps_the_delay_an_answer_was_held(client):
    client.get("/fabric/v3/redemptions?size=1", headers={**FABRIC, "X-Sandbox-Delay": "30"})
    client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "latency", "latencyMs": 20})
    client.get("/fabric/v3/redemptions?size=1", headers={**FABRIC, "X-Sandbox-Delay": "10"})
    first, second = journal(client)
    assert (first["status"], first["delayMs"]) == (200, 30) and first["durationMs"] >= 30
    assert (second["delayMs"], second["rule"]) == (30, "fault:latency")


@pytest.mark.parametrize("fault", ["connection-reset", "empty-response"])
def test_a_dropped_connection_is_journaled_with_no_status(app, fault):
    with served(app) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /fabric/v3/redemptions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer fabric-demo-token\r\n"
                     b"x-fabric-tenant-id: 61a5f0c2b3d4e5f6a7b8c9d0\r\nX-Sandbox-Fault: " + fault.encode()
                     + b"\r\n\r\n")
        try:
            received = sock.recv(1024)
        except ConnectionResetError:
            received = b""
        assert received == b""
    # The server's thread journals once the connection is dropped: the client may look first, on a busy machine.
    [entry] = wait_for(lambda: journal(app.test_client()), 10, "the dropped request's journal entry")
    assert entry["status"] is None and entry["response"] == "" and entry["rule"] == f"fault:{fault}"


def test_a_route_no_operation_matches_is_journaled_once(client):
    assert client.delete("/fabric/v3/redemptions", headers=FABRIC).status_code == 405
    assert client.get("/fabric/v3/nothing-here", headers=FABRIC).status_code == 404
    assert [(e["status"], e["operation"]) for e in journal(client)] == [(405, ""), (404, "")]


# -- x-sandbox-writes: the operation says whether it runs under the write lock ---------------------------------
READ_ONLY_POSTS = [
    ("list_redemption_statuses", "/redemption-statuses/list", {}),
    ("list_redemption_transactions_by_community", "/redemption-transactions/by-community", {}),
]


@pytest.mark.parametrize("handler,path,body", READ_ONLY_POSTS)
def test_read_only_operations_run_outside_the_write_lock(monkeypatch, tmp_path, handler, path, body):
    depth = _handler_lock_depth(monkeypatch, tmp_path, handler, "POST", "/returning-ai/v1" + path, body)
    assert depth == 0


def test_writing_operations_run_inside_the_write_lock(monkeypatch, tmp_path):
    depth = _handler_lock_depth(monkeypatch, tmp_path, "update_purchase_history", "PATCH", PATCH_URL,
                                {"redemptionInstructions": "A"})
    assert depth == 1


def _handler_lock_depth(monkeypatch, tmp_path, name, method, url, body) -> int:
    """The SQLite transaction depth the handler ran at (0: no write lock held)."""
    import sandbox.vendors.returning_ai.handlers as handlers

    seen = []
    original = getattr(handlers, name)

    def spy(call):
        seen.append(call.store._local.depth)
        return original(call)

    monkeypatch.setattr(handlers, name, spy)
    app = strict_app(backend="sqlite", db=str(tmp_path / "w.db"), size=5)
    r = app.test_client().open(url, method=method, json=body, headers=bearer())
    assert r.status_code == 200, r.get_json()
    return seen[0]


def test_the_callers_that_may_lock_before_their_lookups_are_bounded():
    """pipeline.lock_ahead: a process remembers the credentials that wrote lately, 1,024 at most (the
    newest), so a caller cycling through made-up keys cannot grow its memory."""
    from sandbox.app import RECENT_WRITERS

    sandbox = strict_app(backend="memory", size=3).extensions["sandbox"]
    for n in range(3 * RECENT_WRITERS):
        sandbox.note_writer(f"key-{n}")
    sandbox.note_writer(f"key-{2 * RECENT_WRITERS}")  # written again: the newest, not dropped next
    sandbox.note_writer("key-new")
    assert RECENT_WRITERS == 1024
    assert sandbox.wrote_lately(f"key-{2 * RECENT_WRITERS}") and sandbox.wrote_lately("key-new")
    assert sandbox.wrote_lately(f"key-{3 * RECENT_WRITERS - 1}") and not sandbox.wrote_lately("key-0")
    assert not sandbox.wrote_lately(f"key-{2 * RECENT_WRITERS + 1}")  # the oldest of those kept, dropped last
