"""Faults three ways, one model (issue 6): header, magic value, rules; vendor envelope, nothing written."""
import http.client
import socket
import time
import urllib.error
import urllib.request

import pytest

from helpers import CAPILLARY, CAP_UPDATE, FABRIC, PATCH_URL, bearer, read_state, served

def order(sandbox):
    return sandbox.store.get("rai_purchase_histories", "507f1f77bcf86cd799439012")


# -- per request, by header ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault,status", [("server-error", 500), ("rate-limit", 429)])
def test_generic_fault_by_header_in_each_vendor_envelope(client, sandbox, fault, status):
    before = order(sandbox)
    r = client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers={**bearer(), "X-Sandbox-Fault": fault})
    assert r.status_code == status and r.get_json()["meta"] == {"status": "error", "statusCode": status}
    assert order(sandbox) == before
    r = client.get("/fabric/v3/redemptions", headers={**FABRIC, "X-Sandbox-Fault": fault})
    assert r.status_code == status and set(r.get_json()) >= {"type", "errorCode", "message", "context"}
    r = client.put("/capillary/v2/points/updateRedemption", json=CAP_UPDATE, headers={**CAPILLARY, "X-Sandbox-Fault": fault})
    assert r.status_code == status and r.get_json()["errors"][0]["code"] == status
    if fault == "rate-limit":
        assert r.headers["Retry-After"] == "1"
    assert sandbox.store.get("cap_redemptions", "sTDVyi")["billNumber"] == "idk"


def test_capillary_750_fault_writes_nothing(client, sandbox):
    r = client.put("/capillary/v2/points/updateRedemption", json=CAP_UPDATE,
                   headers={**CAPILLARY, "X-Sandbox-Fault": "redemption-update-failed"})
    assert r.status_code == 409
    [error] = r.get_json()["errors"]
    assert error["code"] == 750 and error["message"].startswith("Redemption update failed : ")
    assert sandbox.store.get("cap_redemptions", "sTDVyi")["billNumber"] == "idk"


def test_vendor_fault_not_accepted_by_another_operation_is_400(client):
    r = client.get("/fabric/v3/redemptions", headers={**FABRIC, "X-Sandbox-Fault": "store-unavailable"})
    assert r.status_code == 400 and "X-Sandbox-Fault must be one of" in r.get_json()["message"]


def test_delay_header_waits(client):
    started = time.monotonic()
    r = client.get("/fabric/v3/redemptions?size=1", headers={**FABRIC, "X-Sandbox-Delay": "150"})
    assert r.status_code == 200 and time.monotonic() - started >= 0.15


def test_malformed_body_fault(client):
    r = client.get("/fabric/v3/redemptions", headers={**FABRIC, "X-Sandbox-Fault": "malformed-body"})
    assert r.status_code == 200 and r.mimetype == "application/json"
    with pytest.raises(ValueError):
        r.get_json(force=True, silent=False)


def test_transport_faults_drop_the_connection_over_http(app):
    with served(app) as port:
        url = f"http://127.0.0.1:{port}/fabric/v3/redemptions"
        for fault in ("connection-reset", "empty-response"):
            req = urllib.request.Request(url, headers={**FABRIC, "X-Sandbox-Fault": fault})
            with pytest.raises((urllib.error.URLError, ConnectionError, socket.error, http.client.HTTPException)):
                urllib.request.urlopen(req, timeout=5).read()
        ok = urllib.request.urlopen(urllib.request.Request(url, headers=FABRIC), timeout=5)
        assert ok.status == 200


# -- magic values ----------------------------------------------------------------------------------------------
def test_magic_value_triggers_fault_without_header(client, sandbox):
    before = order(sandbox)
    r = client.patch(PATCH_URL, json={"voucherCode": "FAULT-STORE-UNAVAILABLE", "voucherExpiryDate": "31/12/2026"},
                     headers=bearer())
    assert r.status_code == 502 and "store service is unreachable" in r.get_json()["message"]
    assert order(sandbox) == before
    r = client.post("/fabric/v3/redemptions", json={"promotionId": "614b58924e92f6861ac91234", "orderId": "FAULT-429"},
                    headers=FABRIC)
    assert r.status_code == 429
    r = client.put("/capillary/v2/points/updateRedemption", json={**CAP_UPDATE, "billNumber": "FAULT-750"},
                   headers=CAPILLARY)
    assert r.status_code == 409 and r.get_json()["errors"][0]["code"] == 750


# -- rules through the control API -----------------------------------------------------------------------------
def test_rule_fires_count_times_then_stops(client):
    r = client.post("/_sandbox/faults", json={"vendor": "fabric", "operation": "getRedemption", "fault": "server-error",
                                              "count": 2})
    assert r.status_code == 201
    url = "/fabric/v3/redemptions/614b58924e92f6861ac9d43b"
    assert [client.get(url, headers=FABRIC).status_code for _ in range(3)] == [500, 500, 200]
    assert client.get("/fabric/v3/redemptions", headers=FABRIC).status_code == 200  # other operations untouched
    assert client.get("/_sandbox/faults").get_json()["rules"][0]["fired"] == 2


def test_recipe_fail_once_then_succeed_the_failure_writes_nothing_and_the_retry_writes(client):
    """The README's recipe, as written there: a 500 on the first PATCH, which writes nothing, and a 200 on the retry."""
    client.post("/_sandbox/faults", json={"vendor": "returning-ai", "operation": "updatePurchaseHistory",
                                          "fault": "server-error", "count": 1})
    sent = {"redemptionInstructions": "Retried"}
    first = client.patch(PATCH_URL, json=sent, headers=bearer())
    assert first.status_code == 500
    stored = read_state(client, "rai_purchase_histories", "507f1f77bcf86cd799439012")
    assert stored["product"]["redemptionInstructions"] != "Retried"
    retry = client.patch(PATCH_URL, json=sent, headers=bearer())
    assert retry.status_code == 200 and retry.get_json()["data"]["product"]["redemptionInstructions"] == "Retried"


def test_probabilistic_rule_replays_the_same_way_with_its_seed(client):
    def run():
        client.delete("/_sandbox/faults")
        client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "rate-limit", "probability": 0.5, "seed": 7})
        return [client.get("/fabric/v3/redemptions?size=1", headers=FABRIC).status_code for _ in range(20)]
    first = run()
    assert first == run()
    assert 429 in first and 200 in first


def test_rule_with_latency(client):
    client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "latency", "latencyMs": 120})
    started = time.monotonic()
    assert client.get("/fabric/v3/redemptions?size=1", headers=FABRIC).status_code == 200
    assert time.monotonic() - started >= 0.12


def test_rule_for_vendor_fault_strikes_where_documented(client, sandbox):
    client.post("/_sandbox/faults", json={"vendor": "returning-ai", "operation": "updatePurchaseHistory",
                                          "fault": "store-unavailable"})
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 502
    # 404 still comes first, as the document orders it.
    r = client.patch("/returning-ai/v1/purchase-histories/ORD000000000000000000", json={"redemptionInstructions": "A"},
                     headers=bearer())
    assert r.status_code == 404


def test_rule_fault_the_operation_does_not_accept_is_404(client):
    r = client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "store-unavailable"})
    assert r.status_code == 404 and "does not accept the fault store-unavailable" in r.get_json()["error"]["message"]
    r = client.post("/_sandbox/faults", json={"vendor": "fabric", "operation": "nope", "fault": "latency"})
    assert r.status_code == 404


def test_delete_one_rule_and_all(client):
    rule = client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "server-error"}).get_json()
    assert client.delete(f"/_sandbox/faults/{rule['id']}").get_json() == {"id": rule["id"], "deleted": True}
    assert client.delete(f"/_sandbox/faults/{rule['id']}").status_code == 404
    client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "server-error"})
    assert client.delete("/_sandbox/faults").get_json() == {"deleted": 1}
    assert client.get("/fabric/v3/redemptions?size=1", headers=FABRIC).status_code == 200


def test_catalogue_lists_every_fault_and_magic_value_per_vendor(client):
    vendors = {v["vendor"]: v for v in client.get("/_sandbox/faults/catalogue").get_json()["vendors"]}
    assert set(vendors) == {"returning-ai", "fabric", "capillary"}
    rai = {op["operationId"]: op for op in vendors["returning-ai"]["operations"]}
    assert {"store-unavailable", "publisher-timeout", "server-error", "rate-limit"} <= set(rai["updatePurchaseHistory"]["faults"])
    assert {"in": "body", "name": "voucherCode", "value": "FAULT-STORE-UNAVAILABLE", "fault": "store-unavailable"} in \
        rai["updatePurchaseHistory"]["magicValues"]
    cap = {op["operationId"]: op for op in vendors["capillary"]["operations"]}
    assert "redemption-update-failed" in cap["updateRedeemPoints"]["faults"]
    assert "redemption-update-failed" not in cap["redeemPoints"]["faults"]
