"""Issue 30 point 2: writes that land behind an error (faults.APPLIED_FAULTS; X-Sandbox-Applied, a rule's
`applied`). Seed 000: the PATCH "Publishes the update:purchase-history pub/sub event; the store service processes
it and performs the DB write", and "Returns 502 if ... the publisher times out": a message that timed out may still
have been delivered."""
import pytest

from helpers import CAPILLARY, PATCH_URL, bearer, read_state

DOC_ORDER_ID = "507f1f77bcf86cd799439012"
REDEEM = "/capillary/v2/customers/109943742/redemptions"
APPLIED = {"X-Sandbox-Applied": "true"}

# The API's own rules, checked once; what a backend decides is checked on every backend (marked so below).
pytestmark = pytest.mark.backends("memory")


def instructions(client):
    return read_state(client, "rai_purchase_histories", DOC_ORDER_ID)["product"]["redemptionInstructions"]


def last_entry(client):
    return client.get("/_sandbox/requests").get_json()["requests"][-1]


def points(client):
    return read_state(client, "cap_customers", "109943742")["points"]


@pytest.mark.backends("memory", "sqlite", "redis")
def test_a_publisher_timeout_after_delivery_applies_the_update_and_answers_the_same_502(client):
    """Rule (seed 000, 502): with X-Sandbox-Applied the update, its events and its journal entry all happen, and
    the client gets the very 502 it gets when nothing happened: it cannot tell."""
    plain = client.patch(PATCH_URL, json={"redemptionInstructions": "Not delivered."},
                         headers={**bearer(), "X-Sandbox-Fault": "publisher-timeout"})
    assert plain.status_code == 502 and instructions(client) != "Not delivered."
    assert "applied" not in last_entry(client)
    events = len(client.get("/_sandbox/events").get_json()["events"])
    applied = client.patch(PATCH_URL, json={"redemptionInstructions": "Delivered anyway."},
                           headers={**bearer(), "X-Sandbox-Fault": "publisher-timeout", **APPLIED})
    assert applied.status_code == 502 and applied.get_json() == plain.get_json()
    assert instructions(client) == "Delivered anyway."
    assert [e["name"] for e in client.get("/_sandbox/events").get_json()["events"][events:]] == ["update:purchase-history"]
    entry = last_entry(client)
    assert (entry["status"], entry["rule"], entry["applied"]) == (502, "fault:publisher-timeout", True)


@pytest.mark.parametrize("fault, status", [("server-error", 500), ("connection-reset", 502), ("empty-response", 502)])
def test_an_applied_rule_writes_then_fails_every_operation_that_writes(client, fault, status):
    """Capillary's redeem as a fault rule with applied: the points are deducted, the answer is the fault."""
    rule = client.post("/_sandbox/faults", json={"vendor": "capillary", "operation": "redeemPoints", "fault": fault,
                                                  "applied": True, "count": 1})
    assert rule.status_code == 201 and rule.get_json()["applied"] is True
    before = points(client)
    r = client.post(REDEEM, json={"points": 7}, headers=CAPILLARY)
    assert r.status_code == status
    assert points(client) == before - 7
    entry = last_entry(client)
    assert entry["applied"] is True and entry["rule"] == f"fault:{fault}"
    assert client.get("/_sandbox/faults").get_json()["rules"][0]["fired"] == 1
    again = client.post(REDEEM, json={"points": 7}, headers=CAPILLARY)  # the rule is spent: a normal answer
    assert again.status_code == 200 and points(client) == before - 14


def test_the_500_reads_the_same_whether_or_not_the_write_was_applied(client):
    headers = {**CAPILLARY, "X-Sandbox-Fault": "server-error"}
    before = points(client)
    plain = client.post(REDEEM, json={"points": 3}, headers=headers)
    assert plain.status_code == 500 and points(client) == before
    applied = client.post(REDEEM, json={"points": 3}, headers={**headers, **APPLIED})
    assert applied.status_code == 500 and applied.get_json() == plain.get_json() and points(client) == before - 3


def test_applied_only_where_a_write_can_come_first(client):
    """A rule asking applied of a fault that cannot come after a write is a 400, and no rule is made; on an
    operation that only reads, applied changes nothing; a refusal of the operation itself is answered as such."""
    r = client.post("/_sandbox/faults", json={"vendor": "returning-ai", "fault": "rate-limit", "applied": True})
    assert r.status_code == 400 and "rate-limit cannot" in r.get_json()["error"]["message"]
    assert client.get("/_sandbox/faults").get_json()["rules"] == []
    read = client.get("/capillary/v1.1/points/isredeemable?mobile=919999999999&points=1",
                      headers={**CAPILLARY, "X-Sandbox-Fault": "server-error", **APPLIED})
    assert read.status_code == 500 and "applied" not in last_entry(client)
    before = points(client)
    refused = client.post(REDEEM, json={"points": 6000}, headers={**CAPILLARY, "X-Sandbox-Fault": "server-error",
                                                                     **APPLIED})
    assert refused.status_code == 409 and points(client) == before  # 818: not enough points, nothing to apply
    assert "applied" not in last_entry(client)


def test_the_applied_header_alone_does_nothing_and_a_bad_one_is_the_vendors_400(client):
    assert client.post(REDEEM, json={"points": 1}, headers={**CAPILLARY, **APPLIED}).status_code == 200
    bad = client.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers={**bearer(), "X-Sandbox-Applied": "yes"})
    assert bad.status_code == 400 and "X-Sandbox-Applied must be true" in bad.get_json()["message"]
    assert instructions(client) != "x"


@pytest.mark.parametrize("fault", ["rate-limit", "malformed-body", "latency"])
def test_the_applied_header_with_a_fault_that_cannot_come_after_a_write_is_the_vendors_400(client, fault):
    """Found by the adversarial pass: the header form skipped the check the rule form makes."""
    before = points(client)
    r = client.post(REDEEM, json={"points": 5}, headers={**CAPILLARY, "X-Sandbox-Fault": fault, **APPLIED})
    assert r.status_code == 400 and "cannot" in r.get_data(as_text=True)
    assert points(client) == before
