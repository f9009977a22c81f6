"""PATCH /purchase-histories/{purchaseHistoryID} (seeds 000, 001; vendors.md 4(a)). One test per rule."""
import time

import pytest

from helpers import assert_rai_error as assert_error, DOC_COMMUNITY, DOC_ORDER, DOC_ORDER_ID, bearer, read_state

INSTRUCTIONS = "Collect at the main counter between 10am and 6pm. Present your order ID and a valid photo ID."
URL = "/returning-ai/v1/purchase-histories/{}"
URL_NO_V1 = "/returning-ai/purchase-histories/{}"
DOC_VOUCHER = "507f1f77bcf86cd799439016"


def patch(client, ident=DOC_ORDER, body=None, key="XXXXXX", url=URL, **kw):
    headers = {**bearer(key), **kw.pop("headers", {})} if key else kw.pop("headers", {})
    return client.patch(url.format(ident), json=body, headers=headers, **kw)


def order(sandbox, ident=DOC_ORDER_ID):
    return sandbox.store.get("rai_purchase_histories", ident)


def stored(client, collection="rai_purchase_histories", ident=DOC_ORDER_ID):
    return read_state(client, collection, ident)


def written(client):
    """Every purchase history and voucher, as the control API reads them: what a refused PATCH leaves as it was."""
    return read_state(client, "rai_purchase_histories"), read_state(client, "rai_vouchers")




# -- seed 000 curl example and seed 001 curl example, as printed ---------------------------------------------
def test_seed_000_curl_example_updates_instructions(client):
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS})
    assert r.status_code == 200
    body = r.get_json()
    assert body["meta"] == {"status": "success", "statusCode": 200}
    assert body["message"] == "Update purchase history success."
    data = body["data"]
    assert data["_id"] == DOC_ORDER_ID and data["purchaseID"] == DOC_ORDER and data["orderID"] == DOC_ORDER
    assert data["communityID"] == DOC_COMMUNITY and data["userID"] == "507f1f77bcf86cd799439014"
    assert data["product"] == {"_id": "507f1f77bcf86cd799439015", "name": "Gold Voucher",
                               "redemptionInstructions": INSTRUCTIONS}
    assert data["createdAt"] == "2026-04-01T00:00:00.000Z"
    assert stored(client)["product"]["redemptionInstructions"] == INSTRUCTIONS


def test_seed_001_curl_example_updates_voucher_without_v1(client):
    r = patch(client, body={"voucherCode": "UPDATED-VOUCHER-2026", "voucherExpiryDate": "31/12/2026"}, url=URL_NO_V1)
    assert r.status_code == 200
    data = r.get_json()["data"]
    assert data["voucherCode"] == "UPDATED-VOUCHER-2026"
    assert data["voucherExpiryDate"] == "2026-12-31T00:00:00.000Z"
    assert data["voucher"] == {"_id": "507f1f77bcf86cd799439016", "code": "UPDATED-VOUCHER-2026",
                               "status": "redeemed", "expiryDate": "2026-12-31T00:00:00.000Z"}
    voucher = stored(client, "rai_vouchers", DOC_VOUCHER)
    assert (voucher["code"], voucher["expiryDate"]) == ("UPDATED-VOUCHER-2026", "2026-12-31T00:00:00.000Z")
    assert stored(client)["voucherCode"] == "UPDATED-VOUCHER-2026"


def test_all_three_fields_together_are_accepted(client, sandbox):
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS, "voucherCode": "NEW-1",
                            "voucherExpiryDate": "01/01/2027"})
    assert r.status_code == 200
    stored = order(sandbox)
    assert stored["product"]["redemptionInstructions"] == INSTRUCTIONS and stored["voucherCode"] == "NEW-1"
    assert stored["voucherExpiryDate"] == "2027-01-01T00:00:00.000Z"


# -- authentication and tenancy -------------------------------------------------------------------------------
@pytest.mark.parametrize("headers,fragment", [
    ({}, "Missing API key"),
    ({"Authorization": "Bearer"}, "Malformed"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Malformed"),
    ({"Authorization": "Bearer not-a-key"}, "Invalid API key"),
    ({"Authorization": "Bearer rai_test_expired"}, "expired"),
])
def test_rule_401_when_key_missing_malformed_unknown_or_expired(client, sandbox, headers, fragment):
    before = order(sandbox)
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS}, key=None, headers=headers)
    assert_error(r, 401, fragment)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="Returning.AI"'  # RFC 9110: a 401 names its scheme
    assert order(sandbox) == before


def test_rule_403_when_key_lacks_purchase_history_permission(client, sandbox):
    before = order(sandbox)
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS}, key="rai_test_no_purchase_history")
    assert_error(r, 403, "purchase-history")
    assert order(sandbox) == before


def test_rule_community_comes_from_key_other_communitys_record_is_404(client):
    before = written(client)
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS}, key="rai_test_second_community")
    assert_error(r, 404, DOC_ORDER)
    r = patch(client, ident="ORD202641612055614760", body={"redemptionInstructions": INSTRUCTIONS})
    assert_error(r, 404, "ORD202641612055614760")
    assert written(client) == before
    # The second community's own key sees its own order.
    r = patch(client, ident="ORD202641612055614760", body={"redemptionInstructions": INSTRUCTIONS},
              key="rai_test_second_community")
    assert r.status_code == 200
    assert stored(client, ident=r.get_json()["data"]["_id"])["product"]["redemptionInstructions"] == INSTRUCTIONS


# -- identifiers -----------------------------------------------------------------------------------------------
def test_rule_id_accepts_mongo_id_or_order_id(client):
    assert patch(client, ident=DOC_ORDER_ID, body={"redemptionInstructions": "A"}).get_json()["data"]["purchaseID"] == DOC_ORDER
    assert stored(client)["product"]["redemptionInstructions"] == "A"
    assert patch(client, ident=DOC_ORDER, body={"redemptionInstructions": "B"}).get_json()["data"]["_id"] == DOC_ORDER_ID
    assert stored(client)["product"]["redemptionInstructions"] == "B"


def test_rule_malformed_id_is_400_naming_the_accepted_forms(client):
    before = written(client)
    r = patch(client, ident="not-an-id", body={"redemptionInstructions": "A"})
    body = assert_error(r, 400, "24-character hex _id")
    assert body["errors"][0]["field"] == "purchaseHistoryID"
    assert written(client) == before


def test_rule_unknown_id_is_404(client):
    before = written(client)
    assert_error(patch(client, ident="ORD000000000000000000", body={"redemptionInstructions": "A"}), 404,
                 "ORD000000000000000000")
    assert_error(patch(client, ident="aaaaaaaaaaaaaaaaaaaaaaaa", body={"redemptionInstructions": "A"}), 404,
                 "aaaaaaaaaaaaaaaaaaaaaaaa")
    assert written(client) == before


# -- allowed bodies --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,field,fragment", [
    ({"voucherCode": "X-1"}, "voucherExpiryDate", "send both together"),
    ({"voucherExpiryDate": "31/12/2026"}, "voucherCode", "send both together"),
    ({"redemptionInstructions": "A", "voucherCode": "X-1"}, "voucherExpiryDate", "send both together"),
    ({}, "", "send at least one of"),
    ({"communityID": DOC_COMMUNITY}, "", "Unknown field(s) communityID"),
    ({"redemptionInstructions": "A", "note": "x"}, "", "Unknown field(s) note"),
    ([{"redemptionInstructions": "A"}], "", "must be of type object"),
    ("just text", "", "must be of type object"),
    ({"redemptionInstructions": 5}, "redemptionInstructions", "must be a non-empty string"),
])
def test_rule_allowed_field_combinations(client, sandbox, body, field, fragment):
    before = order(sandbox)
    r = patch(client, body=body)
    errors = assert_error(r, 400, fragment)["errors"]
    assert errors[0]["field"] == field
    assert order(sandbox) == before


def test_rule_malformed_json_is_400(client):
    before = written(client)
    r = client.patch(URL.format(DOC_ORDER), data='{"redemptionInstructions": ', headers={
        **bearer(), "Content-Type": "application/json"})
    assert_error(r, 400, "not valid JSON")
    assert written(client) == before


@pytest.mark.parametrize("depth", [900, 1100, 100_000])
def test_rule_deeply_nested_json_is_400_never_a_crash(client, sandbox, depth):
    """"Bad input gets a clear error, never a crash": nesting is limited far below orjson's and Python's limits
    (issue 14), so every depth gets the same 400 that says what to change, and nothing is written."""
    before = order(sandbox)
    r = client.patch(URL.format(DOC_ORDER), data="[" * depth + "]" * depth, headers={
        **bearer(), "Content-Type": "application/json"})
    assert_error(r, 400, "levels deep")
    assert order(sandbox) == before


def test_rule_non_json_content_type_is_400(client):
    before = written(client)
    r = client.patch(URL.format(DOC_ORDER), data="redemptionInstructions=A", headers={
        **bearer(), "Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, "Content-Type: application/json")
    assert written(client) == before


def test_rule_missing_body_is_400(client):
    before = written(client)
    assert_error(client.patch(URL.format(DOC_ORDER), headers=bearer()), 400, "JSON request body is required")
    assert written(client) == before


# -- values: trimmed, lengths, dates ---------------------------------------------------------------------------
def test_rule_values_are_trimmed_before_storing(client, sandbox):
    r = patch(client, body={"redemptionInstructions": "  Bring ID.  ", "voucherCode": " TRIM-1 ",
                            "voucherExpiryDate": " 31/12/2026 "})
    assert r.status_code == 200
    stored = order(sandbox)
    assert stored["product"]["redemptionInstructions"] == "Bring ID."
    assert stored["voucherCode"] == "TRIM-1"
    assert sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "TRIM-1"


@pytest.mark.parametrize("value,ok", [("   ", False), ("", False), ("x" * 10000, True), ("x" * 10001, False),
                                      ("  " + "x" * 10000 + "  ", True)])
def test_rule_redemption_instructions_non_empty_max_10000_after_trim(client, value, ok):
    before = written(client)
    r = patch(client, body={"redemptionInstructions": value})
    if ok:
        assert r.status_code == 200
        assert stored(client)["product"]["redemptionInstructions"] == value.strip()
    else:
        assert assert_error(r, 400, "at most 10000")["errors"][0]["field"] == "redemptionInstructions"
        assert written(client) == before


@pytest.mark.parametrize("value,ok", [(" ", False), ("C" * 512, True), ("C" * 513, False), (" " + "C" * 512 + " ", True)])
def test_rule_voucher_code_non_empty_max_512_after_trim(client, value, ok):
    before = written(client)
    r = patch(client, body={"voucherCode": value, "voucherExpiryDate": "31/12/2026"})
    if ok:
        assert r.status_code == 200
        assert stored(client, "rai_vouchers", DOC_VOUCHER)["code"] == value.strip()
        assert stored(client)["voucherCode"] == value.strip()
    else:
        assert_error(r, 400, "voucherCode must be a non-empty string of at most 512")
        assert written(client) == before


@pytest.mark.parametrize("value,iso", [
    ("31/12/2026", "2026-12-31T00:00:00.000Z"),
    ("29/02/2028", "2028-02-29T00:00:00.000Z"),
    ("29/02/2000", "2000-02-29T00:00:00.000Z"),
    ("01/01/2027", "2027-01-01T00:00:00.000Z"),
    ("31/02/2026", None),
    ("29/02/2027", None),
    ("29/02/1900", None),
    ("31/04/2026", None),
    ("2026-12-31", None),
    ("12/31/2026", None),
    ("1/1/2027", None),
])
def test_rule_voucher_expiry_date_real_calendar_date_ddmmyyyy_stored_as_utc_midnight(client, value, iso):
    before = written(client)
    r = patch(client, body={"voucherCode": "DATE-1", "voucherExpiryDate": value})
    if iso:
        assert r.status_code == 200
        assert r.get_json()["data"]["voucherExpiryDate"] == iso
        assert r.get_json()["data"]["voucher"]["expiryDate"] == iso
        assert stored(client, "rai_vouchers", DOC_VOUCHER)["expiryDate"] == iso
        assert stored(client)["voucherExpiryDate"] == iso
    else:
        assert_error(r, 400, "real calendar date in DD/MM/YYYY")
        assert written(client) == before


# -- 409 -------------------------------------------------------------------------------------------------------
def test_rule_409_code_of_another_voucher_same_product_and_community(client, sandbox):
    before = order(sandbox)
    r = patch(client, body={"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2026"})
    body = assert_error(r, 409, "GOLD-TAKEN-0001")
    assert body["errors"][0]["field"] == "voucherCode"
    assert order(sandbox) == before
    assert sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "GOLD-2026-0001"


def test_rule_voucher_keeping_its_own_code_is_not_a_conflict(client):
    r = patch(client, body={"voucherCode": "GOLD-2026-0001", "voucherExpiryDate": "01/01/2027"})
    assert r.status_code == 200
    assert r.get_json()["data"]["voucherExpiryDate"] == "2027-01-01T00:00:00.000Z"
    voucher = stored(client, "rai_vouchers", DOC_VOUCHER)
    assert (voucher["code"], voucher["expiryDate"]) == ("GOLD-2026-0001", "2027-01-01T00:00:00.000Z")


def test_rule_same_code_in_another_product_is_not_a_conflict(client):
    # SILVER-2026-0001 belongs to a voucher of another product of the same community.
    silver = [v for v in read_state(client, "rai_vouchers") if v["code"] == "SILVER-2026-0001"]
    assert len(silver) == 1 and silver[0]["_id"] != DOC_VOUCHER
    r = patch(client, body={"voucherCode": "SILVER-2026-0001", "voucherExpiryDate": "01/01/2027"})
    assert r.status_code == 200
    assert stored(client, "rai_vouchers", DOC_VOUCHER)["code"] == "SILVER-2026-0001"
    assert stored(client, "rai_vouchers", silver[0]["_id"]) == silver[0]


# -- 404 targets -----------------------------------------------------------------------------------------------
def test_rule_404_when_voucher_target_no_longer_exists(client, sandbox):
    before = order(sandbox, "507f1f77bcf86cd799439032")
    r = patch(client, ident="ORD202641612055614749", body={"voucherCode": "N-1", "voucherExpiryDate": "31/12/2026"})
    assert_error(r, 404, "has no voucher")
    assert order(sandbox, "507f1f77bcf86cd799439032") == before


def test_rule_404_when_product_snapshot_target_no_longer_exists(client, sandbox):
    before = order(sandbox, "507f1f77bcf86cd799439042")
    r = patch(client, ident="ORD202641612055614750", body={"redemptionInstructions": INSTRUCTIONS})
    assert_error(r, 404, "507f1f77bcf86cd799439045")
    assert order(sandbox, "507f1f77bcf86cd799439042") == before


# -- 502 faults ------------------------------------------------------------------------------------------------
def test_rule_502_store_unavailable_writes_nothing(client, sandbox):
    before = order(sandbox)
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS}, headers={"X-Sandbox-Fault": "store-unavailable"})
    assert_error(r, 502, "store service is unreachable")
    assert order(sandbox) == before
    assert client.get("/_sandbox/events").get_json()["events"] == []


def test_rule_502_publisher_timeout_waits_then_writes_nothing(client, sandbox):
    before = order(sandbox)
    started = time.monotonic()
    r = patch(client, body={"voucherCode": "T-1", "voucherExpiryDate": "31/12/2026"},
              headers={"X-Sandbox-Fault": "publisher-timeout"})
    waited = time.monotonic() - started
    assert_error(r, 502, "publisher timed out")
    assert waited >= sandbox.settings.publisher_timeout
    assert order(sandbox) == before
    assert sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")["code"] == "GOLD-2026-0001"


def test_rule_unknown_fault_name_is_400(client):
    before = written(client)
    r = patch(client, body={"redemptionInstructions": "A"}, headers={"X-Sandbox-Fault": "meteor"})
    assert_error(r, 400, "X-Sandbox-Fault must be")
    assert written(client) == before


def test_rule_404_and_409_come_before_the_fault(client):
    before = written(client)
    r = patch(client, body={"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2026"},
              headers={"X-Sandbox-Fault": "store-unavailable"})
    assert_error(r, 409, "GOLD-TAKEN-0001")
    r = patch(client, ident="ORD000000000000000000", body={"redemptionInstructions": "A"},
              headers={"X-Sandbox-Fault": "store-unavailable"})
    assert_error(r, 404, "ORD000000000000000000")
    assert written(client) == before


# -- 500 -------------------------------------------------------------------------------------------------------
def test_rule_500_unexpected_failure_uses_envelope_without_stack_trace(client, sandbox, monkeypatch):
    def explode(*a, **k):
        raise RuntimeError("secret internals")
    monkeypatch.setattr("sandbox.vendors.returning_ai.purchase_histories.PurchaseHistories.update_purchase_history", explode)
    r = patch(client, body={"redemptionInstructions": "A"})
    body = assert_error(r, 500)
    assert "secret internals" not in r.get_data(as_text=True) and "Traceback" not in r.get_data(as_text=True)
    assert body["errors"] == []


def test_unknown_route_and_method_answer_in_vendor_envelope(client):
    assert_error(client.get("/returning-ai/v1/nothing-here", headers=bearer()), 404, "No route")
    r = client.get(URL.format(DOC_ORDER), headers=bearer())
    assert_error(r, 405, "allowed: PATCH")
    assert "PATCH" in r.headers["Allow"]


# -- side effects ----------------------------------------------------------------------------------------------
def test_side_effect_instructions_change_only_the_order_snapshot_not_the_product(client, sandbox):
    product_before = sandbox.store.get("rai_products", "507f1f77bcf86cd799439015")
    other_order_before = order(sandbox, "507f1f77bcf86cd799439022")
    r = patch(client, body={"redemptionInstructions": INSTRUCTIONS})
    assert r.status_code == 200
    assert order(sandbox)["product"]["redemptionInstructions"] == INSTRUCTIONS
    assert sandbox.store.get("rai_products", "507f1f77bcf86cd799439015") == product_before
    assert order(sandbox, "507f1f77bcf86cd799439022") == other_order_before


def test_side_effect_voucher_fields_update_source_voucher_and_order_copies(client, sandbox):
    before = order(sandbox)
    r = patch(client, body={"voucherCode": "NEW-CODE-9", "voucherExpiryDate": "15/08/2027"})
    assert r.status_code == 200
    voucher = sandbox.store.get("rai_vouchers", "507f1f77bcf86cd799439016")
    assert (voucher["code"], voucher["expiryDate"]) == ("NEW-CODE-9", "2027-08-15T00:00:00.000Z")
    after = order(sandbox)
    assert after["voucherCode"] == "NEW-CODE-9" and after["voucher"]["code"] == "NEW-CODE-9"
    assert after["product"] == before["product"]
    assert after["updatedAt"] > before["updatedAt"]


def test_side_effect_events_recorded_with_payloads(client):
    patch(client, body={"redemptionInstructions": INSTRUCTIONS, "voucherCode": "EV-1", "voucherExpiryDate": "31/12/2026"})
    events = client.get("/_sandbox/events").get_json()["events"]
    assert [e["name"] for e in events] == ["update:purchase-history", "voucher:update"]
    assert events[0]["payload"] == {
        "purchaseHistoryID": DOC_ORDER_ID, "purchaseID": DOC_ORDER, "communityID": DOC_COMMUNITY,
        "changes": {"redemptionInstructions": INSTRUCTIONS, "voucherCode": "EV-1",
                    "voucherExpiryDate": "2026-12-31T00:00:00.000Z"}}
    assert events[1]["payload"]["voucherID"] == "507f1f77bcf86cd799439016"
    assert events[1]["payload"]["code"] == "EV-1"


def test_side_effect_rejected_requests_record_no_event(client):
    before = written(client)
    # Each refused for its own reason: no event would also follow from requests that never reached the handler.
    assert patch(client, body={"voucherCode": "GOLD-TAKEN-0001", "voucherExpiryDate": "31/12/2026"}).status_code == 409
    assert patch(client, body={}).status_code == 400
    assert patch(client, body={"redemptionInstructions": "A"}, key="rai_test_no_purchase_history").status_code == 403
    assert client.get("/_sandbox/events").get_json()["events"] == []
    assert written(client) == before
