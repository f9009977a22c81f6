"""Issue 30 point 3: retry safety made visible. The `retry-safety` scenario applies the first money-like write of
each kind and then fails it; GET /_sandbox/requests/applied-twice lists what a client applied more than once."""
import pytest

from helpers import CAPILLARY, read_state

REDEEM = "/capillary/v2/customers/109943742/redemptions"
REVERSE = "/capillary/v2/points/reverse"
IDENTIFIER = {"type": "ID", "value": "109943742"}

# The API's own rules, checked once; what a backend decides is checked on every backend (marked so below).
pytestmark = pytest.mark.backends("memory")


def applied_twice(client):
    r = client.get("/_sandbox/requests/applied-twice")
    assert r.status_code == 200
    return r.get_json()["appliedTwice"]


def naive(client, path, body, tries=3):
    """Retries whatever failed, with the same request: what many HTTP clients do by default."""
    for _ in range(tries):
        r = client.post(path, json=body, headers=CAPILLARY)
        if r.status_code < 500:
            return r


def careful(client, path, body, reference, tries=3):
    """Sends a reference the vendor refuses to repeat (Capillary's externalReferenceNumber, 903) and, told it was
    already used, takes the first attempt as done."""
    for _ in range(tries):
        r = client.post(path, json={**body, "externalReferenceNumber": reference}, headers=CAPILLARY)
        if r.status_code == 409 and r.get_json()["errors"][0]["code"] == 903:
            return "already applied"
        if r.status_code < 500:
            return r


def balance(client):
    return read_state(client, "cap_customers", "109943742")["points"]


@pytest.mark.backends("memory", "sqlite", "redis")
def test_a_naive_client_redeems_and_reverses_twice_and_the_check_names_both(client):
    assert client.post("/_sandbox/scenarios/retry-safety").status_code == 200
    start = balance(client)
    redeemed = naive(client, REDEEM, {"points": 100})
    assert redeemed.status_code == 200 and balance(client) == start - 200  # the lost answer's redemption, and another
    naive(client, REVERSE, {"redemptionId": redeemed.get_json()["redemptionId"], "pointsToBeReversed": 40,
                            "identifier": IDENTIFIER})
    assert balance(client) == start - 200 + 80  # refunded twice
    found = {(d["operation"], d["times"]) for d in applied_twice(client)}
    assert found == {("redeemPoints", 2), ("reverseRedemption", 2)}


def test_a_careful_client_applies_each_write_once_and_the_check_is_empty(client):
    assert client.post("/_sandbox/scenarios/retry-safety").status_code == 200
    start = balance(client)
    assert careful(client, REDEEM, {"points": 100}, "TXN-SAFE-1") == "already applied"
    assert balance(client) == start - 100
    redemption = next(r for r in read_state(client, "cap_redemptions") if r["externalReferenceNumber"] == "TXN-SAFE-1")
    # A reversal has no reference to repeat: the careful client reads the redemption before it retries.
    first = client.post(REVERSE, json={"redemptionId": redemption["redemptionId"], "pointsToBeReversed": 40,
                                       "identifier": IDENTIFIER}, headers=CAPILLARY)
    assert first.status_code == 502  # the connection was lost after the reversal
    after = read_state(client, "cap_redemptions", redemption["redemptionId"])
    assert after["pointsReversed"] == 40  # done: no retry
    assert balance(client) == start - 60
    assert applied_twice(client) == []


def test_every_money_like_write_of_the_scenario_is_applied_then_fails_once(client):
    """The scenario's rules (scenarios/retry-safety.yaml), each struck once, each journaled applied."""
    assert client.post("/_sandbox/scenarios/retry-safety").status_code == 200
    rules = client.get("/_sandbox/faults").get_json()["rules"]
    assert {(r["vendor"], r["operation"]) for r in rules if r["applied"] and r["count"] == 1} == {
        ("capillary", "redeemPoints"), ("capillary", "reverseRedemption"),
        ("returning-ai", "updateRedemptionTransactionStatus"), ("returning-ai", "updatePurchaseHistory"),
        ("fabric", "updateRedemption")}


def test_returning_ai_refuses_a_second_refund_so_a_blind_retry_after_an_applied_500_refunds_once(client):
    """Seed 002's refundCoins, behind the scenario's applied 500: the coins are refunded by the lost call; the
    retry meets the documented 409 (already refunded), and the coins stay refunded once."""
    assert client.post("/_sandbox/scenarios/retry-safety").status_code == 200
    member = "507f1f77bcf86cd799439014"
    before = read_state(client, "rai_users", member)["coins"]
    body = {"transactionId": "ORD202507013831", "statusId": "695e2f8b3358520a2ecf8604", "refundCoins": True}
    headers = {"Authorization": "Bearer XXXXXX"}
    first = client.put("/returning-ai/v1/redemption-transactions/status", json=body, headers=headers)
    assert first.status_code == 500 and read_state(client, "rai_users", member)["coins"] == before + 500
    retry = client.put("/returning-ai/v1/redemption-transactions/status", json=body, headers=headers)
    assert retry.status_code == 409 and "already refunded" in retry.get_json()["message"]
    assert read_state(client, "rai_users", member)["coins"] == before + 500
    assert applied_twice(client) == []


def test_an_answer_a_fault_made_up_is_not_a_write_applied(client):
    """Found by the adversarial pass: two malformed-body answers (200, nothing written) were listed as applied
    twice."""
    for _ in range(2):
        r = client.post(REDEEM, json={"points": 7}, headers={**CAPILLARY, "X-Sandbox-Fault": "malformed-body"})
        assert r.status_code == 200
    assert applied_twice(client) == []
