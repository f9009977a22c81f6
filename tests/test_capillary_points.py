"""Capillary points redemptions (seed 004; vendors.md 1, 4(d)). One test per rule; codes and messages exact."""
import base64
import hashlib
import time

import pytest

from helpers import read_state
from sandbox import Settings, create_app

BASIC = {"Authorization": "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3"}
SECOND_ORG = {"Authorization": "Basic " + base64.b64encode(
    b"till.second:" + hashlib.md5(b"second-password").hexdigest().encode()).decode()}
UPDATE = "/capillary/v2/points/updateRedemption"
REVERSE = "/capillary/v2/points/reverse"
CUSTOMER = 109943742
ENTITY = {"type": "CUSTOMER", "identifierType": "id", "identifierValue": str(CUSTOMER)}
SEED_004_RESPONSE = {
    "id": 24135289, "programId": 772, "pointsRedeemed": 10.0, "billId": 235, "billNumber": "idk",
    "validationCode": "", "notes": "Sample notes", "redemptionTime": 1694608810000,
    "pointsRedemptionTime": 1694594410000, "tillId": 75086856, "tillName": "", "pointDeductionList": [],
    "redemptionId": "sTDVyi", "customerId": 109943742, "redemptionPurpose": "why",
    "redemptionDate": "2023-09-13T12:40:10Z", "warnings": []}


def update(client, body, headers=BASIC):
    return client.put(UPDATE, json=body, headers=headers)


def errors(response, status):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["warnings"] == []
    return [(e["code"], e["message"]) for e in body["errors"]]


def redemption(sandbox, ident="sTDVyi"):
    return sandbox.store.get("cap_redemptions", ident)


def balance(sandbox, customer=CUSTOMER):
    return sandbox.store.get("cap_customers", str(customer))["points"]


def written(client):
    """Redemptions and balances as the control API reads them: what a refused request leaves as it was."""
    return read_state(client, "cap_redemptions"), read_state(client, "cap_customers")


# -- seed 004's example ----------------------------------------------------------------------------------------
def test_seed_004_example_answers_as_printed(client):
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "idk", "entity": ENTITY})
    assert r.status_code == 200 and r.get_json() == SEED_004_RESPONSE


def test_success_changes_only_requested_fields_purpose_stored_as_redemption_purpose(client, sandbox):
    before = redemption(sandbox)
    r = update(client, {"redemptionId": "sTDVyi", "purpose": "loyalty gift", "entity": ENTITY})
    assert r.get_json() == {**SEED_004_RESPONSE, "redemptionPurpose": "loyalty gift"}
    after = redemption(sandbox)
    assert after == {**before, "redemptionPurpose": "loyalty gift"}


def test_update_by_external_reference_number_with_19_digit_bill_id(client, sandbox):
    body = {"externalReferenceNumber": "TXN-882291", "billId": 1234567890123456789, "billNumber": "B-1",
            "entity": {"type": "CUSTOMER", "identifierType": "mobile", "identifierValue": "919999999999"}}
    r = update(client, body)
    assert r.status_code == 200
    assert r.get_json()["billId"] == 1234567890123456789 and redemption(sandbox)["billNumber"] == "B-1"
    assert read_state(client, "cap_redemptions", "sTDVyi")["billId"] == 1234567890123456789


def test_change_is_visible_in_history(client):
    assert update(client, {"redemptionId": "sTDVyi", "billId": 777, "entity": ENTITY}).status_code == 200
    r = client.get(f"/capillary/v1.1/customer/redemptions?id={CUSTOMER}&points_limit=100", headers=BASIC)
    points = r.get_json()["response"]["customer"]["redemptions"]["points"]["point"]
    assert next(p for p in points if p["redemption_id"] == "sTDVyi")["bill_id"] == 777


def test_custom_fields_update_and_response_as_name_value_pairs(client, sandbox):
    r = update(client, {"redemptionId": "sTDVyi", "customFields": {"card_number": "123456"}, "entity": ENTITY})
    assert r.get_json()["customFields"] == [{"name": "card_number", "value": "123456"}]
    assert redemption(sandbox)["customFields"] == {"card_number": "123456"}


# -- the documented codes --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [{}, {"redemptionId": "sTDVyi", "externalReferenceNumber": "TXN-882291"}])
def test_rule_749_neither_or_both_identifiers(client, ids):
    before = written(client)
    r = update(client, {**ids, "billNumber": "x", "entity": ENTITY})
    assert errors(r, 400) == [(749, "Exactly one redemption identifier needed to identify redemption.")]
    assert written(client) == before


def test_rule_748_no_metadata_update_requested(client):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "entity": ENTITY})
    assert errors(r, 400) == [(748, "No metadata update requested.")]
    assert written(client) == before


@pytest.mark.parametrize("entity", [
    None,
    {"identifierType": "id", "identifierValue": "1"},
    {"type": "CUSTOMER", "identifierValue": "1"},
    {"type": "CUSTOMER", "identifierType": "id"},
    {"type": "CUSTOMER", "identifierType": "passport", "identifierValue": "1"},
    {"type": "CUSTOMER", "identifierType": "id", "identifierValue": ""},
    {"type": 5, "identifierType": "id", "identifierValue": "1"},
    "CUSTOMER",
])
def test_rule_1219_entity_missing_or_malformed(client, entity):
    body = {"redemptionId": "sTDVyi", "billNumber": "x"}
    if entity is not None:
        body["entity"] = entity
    before = written(client)
    assert errors(update(client, body), 400) == [(1219, "Entity details not set/invalid.")]
    assert written(client) == before


def test_rule_1212_unknown_entity_type(client):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x",
                        "entity": {"type": "GROUP", "identifierType": "id", "identifierValue": "1"}})
    assert errors(r, 400) == [(1212, "Entity type passed is not valid.")]
    assert written(client) == before


def test_rule_1212_entity_type_not_configured_for_the_org(client):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x",
                        "entity": {"type": "FLEET", "identifierType": "id", "identifierValue": "1"}})
    [(code, message)] = errors(r, 409)
    assert code == 1212 and message.startswith("Entity type passed is not valid.")
    assert written(client) == before


def test_rule_750_redemption_was_reversed(client, sandbox):
    before = redemption(sandbox, "RVRSD1")
    r = update(client, {"redemptionId": "RVRSD1", "billNumber": "x", "entity": ENTITY})
    assert errors(r, 409) == [(750, "Redemption update failed : redemption RVRSD1 was reversed.")]
    assert redemption(sandbox, "RVRSD1") == before


def test_rule_750_redemption_of_another_customer(client):
    before = written(client)
    other = {"type": "CUSTOMER", "identifierType": "mobile", "identifierValue": "919999999998"}
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x", "entity": other})
    assert errors(r, 409) == [
        (750, "Redemption update failed : redemption sTDVyi does not belong to the identified customer.")]
    assert written(client) == before


def test_rule_750_custom_field_not_configured(client):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "customFields": {"colour": "red"}, "entity": ENTITY})
    [(code, message)] = errors(r, 409)
    assert code == 750 and message.startswith("Redemption update failed : custom field colour is not configured")
    assert written(client) == before


@pytest.mark.parametrize("bill_id", ["12345.67", "ABC123", "-12345", -12345, 12345.67, 0, 10**19])
def test_rule_bill_id_positive_whole_number_at_most_19_digits(client, bill_id):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "billId": bill_id, "entity": ENTITY})
    assert errors(r, 400) == [
        (750, "Redemption update failed : billId must be a positive whole number of at most 19 digits.")]
    assert written(client) == before


def test_rule_purpose_at_most_255_characters(client):
    assert update(client, {"redemptionId": "sTDVyi", "purpose": "p" * 255, "entity": ENTITY}).status_code == 200
    assert read_state(client, "cap_redemptions", "sTDVyi")["redemptionPurpose"] == "p" * 255
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "purpose": "p" * 256, "entity": ENTITY})
    assert errors(r, 400) == [
        (750, "Redemption update failed : purpose must be a string of at most 255 characters.")]
    assert written(client) == before


@pytest.mark.parametrize("body", [{"redemptionId": "NOSUCH"}, {"externalReferenceNumber": "TXN-NOSUCH"}])
def test_rule_8015_identifier_does_not_exist(client, body):
    before = written(client)
    r = update(client, {**body, "billNumber": "x", "entity": ENTITY})
    assert errors(r, 404) == [(8015, "Invalid or malformed identifier provided in request body.")]
    assert written(client) == before


def test_rule_8015_customer_not_found(client):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x",
                        "entity": {"type": "CUSTOMER", "identifierType": "email", "identifierValue": "no@x.io"}})
    assert errors(r, 404) == [(8015, "Customer not found for the given identifiers")]
    assert written(client) == before


@pytest.mark.parametrize("body", [{"redemptionId": "x" * 51}, {"externalReferenceNumber": "x" * 101}])
def test_rule_8015_malformed_identifier_is_404_too(client, sandbox, body):
    """8015 is one status everywhere (spec, README): an identifier that cannot name anything names nothing."""
    before = redemption(sandbox)
    r = update(client, {**body, "billNumber": "x", "entity": ENTITY})
    assert errors(r, 404) == [(8015, "Invalid or malformed identifier provided in request body.")]
    assert redemption(sandbox) == before


def test_rule_8015_with_another_problem_is_400(client):
    before = written(client)
    r = update(client, {"redemptionId": "x" * 51, "billNumber": "x"})
    assert errors(r, 400) == [(1219, "Entity details not set/invalid."),
                              (8015, "Invalid or malformed identifier provided in request body.")]
    assert written(client) == before


@pytest.mark.parametrize("query", ["?id=abc", "?id=0", "?id=1.5", "?id=99999999999999999999"])
def test_rule_history_customer_id_not_a_whole_number_is_8015_404(client, query):
    r = client.get(f"/capillary/v1.1/customer/redemptions{query}", headers=BASIC)
    assert r.status_code == 404 and r.get_json()["response"]["status"] == {
        "success": False, "code": 8015, "message": "Customer not found for the given identifiers"}


def test_rule_redeem_customer_id_not_a_whole_number_is_8015_404(client, sandbox):
    before = balance(sandbox)
    everything = written(client)
    r = client.post("/capillary/v2/customers/abc/redemptions", json={"points": 1}, headers=BASIC)
    assert errors(r, 404) == [(8015, "Customer not found for the given identifiers")]
    assert balance(sandbox) == before
    assert written(client) == everything


HINT = "X-Sandbox-Hint"  # specs/capillary.yaml components/headers/SandboxHint


@pytest.mark.parametrize("body, code, hint", [
    ({"billNumber": "x", "entity": ENTITY}, 749,
     "send exactly one of redemptionId and externalReferenceNumber (not both, not neither)"),
    ({"redemptionId": "sTDVyi", "entity": ENTITY}, 748,
     "send at least one of billId, billNumber, purpose and customFields, the fields an update changes"),
    ({"redemptionId": "sTDVyi", "billNumber": "x", "entity": {"type": "CUSTOMER", "identifierType": "id"}}, 1219,
     "entity.identifierValue is required"),
    ({"redemptionId": "sTDVyi", "billId": "12", "entity": ENTITY}, 750, "billId must be of type integer, not string"),
])
def test_a_terse_code_comes_with_a_hint_beside_the_body_naming_the_field_to_fix(client, body, code, hint):
    """Issue 32 point 4: Capillary's faithful messages do not say which field to fix; the X-Sandbox-Hint header does,
    and the body stays Capillary's (the same code and message as without the hint)."""
    r = update(client, body)
    assert [c for c, _ in errors(r, 400)] == [code] and r.headers[HINT] == hint


def test_a_hint_quoting_a_clients_value_is_printable_ascii_and_bounded(client):
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x", "entity": {**ENTITY, "type": "é\r\n" * 400}})
    hint = r.headers[HINT]
    assert errors(r, 400)[0][0] == 1212 and len(hint) <= 500 and all(" " <= c <= "~" for c in hint)
    assert update(client, {"redemptionId": "sTDVyi", "billNumber": "x", "entity": ENTITY}).headers.get(HINT) is None


def test_rule_several_problems_report_several_errors(client):
    before = written(client)
    r = update(client, {"billId": "ABC", "purpose": "p" * 300})
    assert [code for code, _ in errors(r, 400)] == [749, 1219, 750, 750]
    assert written(client) == before


def test_rule_data_scoped_to_the_tills_org(client):
    before = written(client)
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x", "entity": ENTITY}, headers=SECOND_ORG)
    assert errors(r, 404) == [(8015, "Invalid or malformed identifier provided in request body.")]
    assert written(client) == before


# -- authentication --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("header,fragment", [
    (None, "Send Authorization: Basic"),
    ("Basic !!!", "Malformed header"),
    ("Bearer abc", "Malformed header"),
    ("Basic " + base64.b64encode(b"nobody:" + hashlib.md5(b"x").hexdigest().encode()).decode(), "Unknown till"),
    ("Basic " + base64.b64encode(b"store.server:server123").decode(), "must be sent as md5(password)"),
    ("Basic " + base64.b64encode(b"store.server:" + hashlib.md5(b"wrong").hexdigest().encode()).decode(),
     "Authentication failed"),
])
def test_rule_401_basic_auth(client, header, fragment):
    before = written(client)
    headers = {"Authorization": header} if header else {}
    r = update(client, {"redemptionId": "sTDVyi", "billNumber": "x", "entity": ENTITY}, headers)
    [(code, message)] = errors(r, 401)
    assert code == 401 and message.startswith("Authentication failed. Please check username and password.")
    assert fragment in message
    assert r.headers["WWW-Authenticate"] == CHALLENGE
    assert written(client) == before


CHALLENGE = 'Basic realm="Capillary", charset="UTF-8"'  # RFC 9110: every 401 names its scheme


def test_rule_401_in_v11_envelope(client):
    r = client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=1")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == CHALLENGE
    assert r.get_json()["response"]["status"]["success"] is False and r.get_json()["response"]["status"]["code"] == 401


def test_oauth_token_then_header_works():
    app = create_app(Settings(size=5, oauth_token_ttl=1, strict_responses=True))
    client = app.test_client()
    r = client.post("/capillary/v3/oauth/token/generate", json={"key": "cap-demo-client", "secret": "cap-demo-secret"})
    assert r.status_code == 200 and r.get_json()["data"]["ttlSeconds"] == 1 and r.get_json()["errors"] is None
    token = {"X-CAP-API-OAUTH-TOKEN": r.get_json()["data"]["accessToken"]}
    assert client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=1", headers=token).status_code == 200
    time.sleep(1.1)
    r = client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=1", headers=token)
    assert r.status_code == 401 and "expired" in r.get_json()["response"]["status"]["message"]


def test_oauth_wrong_secret_is_401_in_v3_envelope(client):
    r = client.post("/capillary/v3/oauth/token/generate", json={"key": "cap-demo-client", "secret": "nope"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == CHALLENGE
    assert r.get_json() == {"data": None, "errors": [
        {"status": False, "code": 401, "message": "Unknown OAuth key or secret (demo clients: GET /_sandbox/credentials)"}]}


def test_unknown_oauth_token_is_401(client):
    r = client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=1",
                   headers={"X-CAP-API-OAUTH-TOKEN": "cap_oauth_forged"})
    assert r.status_code == 401


# -- the ledger ------------------------------------------------------------------------------------------------
def test_redeem_deducts_and_returns_a_redemption_id(client, sandbox):
    before = balance(sandbox)
    r = client.post(f"/capillary/v2/customers/{CUSTOMER}/redemptions", headers=BASIC,
                    json={"points": 350, "externalReferenceNumber": "TXN-NEW-1", "validationCode": "VC-1"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["pointsRedeemed"] == 350 and body["billId"] == -1 and len(body["redemptionId"]) == 6
    assert body["pointDeductionList"] == [{"programId": 772, "pointsDeducted": 350.0}]
    assert balance(sandbox) == before - 350
    assert update(client, {"redemptionId": body["redemptionId"], "billId": 9, "entity": ENTITY}).status_code == 200


def test_rule_redeem_short_balance_is_refused(client, sandbox):
    before = written(client)
    r = client.post("/capillary/v2/customers/109943743/redemptions", headers=BASIC, json={"points": 101})
    [(code, message)] = errors(r, 409)
    assert code == 818 and message.startswith("Current points are less than points requested for redemption.")
    assert balance(sandbox, 109943743) == 100.0
    assert written(client) == before


def test_rule_redeem_duplicate_reference_is_903(client):
    before = written(client)
    r = client.post(f"/capillary/v2/customers/{CUSTOMER}/redemptions", headers=BASIC,
                    json={"points": 1, "externalReferenceNumber": "TXN-882291"})
    [(code, _)] = errors(r, 409)
    assert code == 903
    assert written(client) == before


def test_rule_redeem_unknown_customer_is_8015(client):
    before = written(client)
    r = client.post("/capillary/v2/customers/1/redemptions", headers=BASIC, json={"points": 1})
    assert errors(r, 404) == [(8015, "Customer not found for the given identifiers")]
    assert written(client) == before


def test_reverse_partly_then_fully_then_3802(client, sandbox):
    created = client.post(f"/capillary/v2/customers/{CUSTOMER}/redemptions", headers=BASIC,
                          json={"points": 100}).get_json()
    after_redeem = balance(sandbox)
    body = {"redemptionId": created["redemptionId"], "identifier": {"type": "ID", "value": str(CUSTOMER)}}
    r = client.post(REVERSE, headers=BASIC, json={**body, "pointsToBeReversed": 40})
    assert r.status_code == 200 and r.get_json()["pointsReversed"] == 40 and r.get_json()["errors"] == []
    assert balance(sandbox) == after_redeem + 40
    [(code, _)] = errors(client.post(REVERSE, headers=BASIC, json={**body, "pointsToBeReversed": 61}), 409)
    assert code == 810 and balance(sandbox) == after_redeem + 40
    assert client.post(REVERSE, headers=BASIC, json={**body, "pointsToBeReversed": 60}).status_code == 200
    assert balance(sandbox) == after_redeem + 100
    before = written(client)
    assert read_state(client, "cap_redemptions", created["redemptionId"])["pointsReversed"] == 100
    assert errors(client.post(REVERSE, headers=BASIC, json={**body, "pointsToBeReversed": 1}), 409) == [
        (3802, "Points reversal redeemed points already reversed.")]
    assert written(client) == before


def test_rule_reverse_unknown_redemption_or_other_customer(client):
    before = written(client)
    body = {"pointsToBeReversed": 1, "identifier": {"type": "ID", "value": str(CUSTOMER)}}
    assert errors(client.post(REVERSE, headers=BASIC, json={**body, "redemptionId": "NOSUCH"}), 404) == [
        (902, "Redemption ID does not exist.")]
    other = {**body, "redemptionId": "sTDVyi", "identifier": {"type": "MOBILE", "value": "919999999998"}}
    assert errors(client.post(REVERSE, headers=BASIC, json=other), 409)[0][0] == 904
    both = {**body, "redemptionId": "sTDVyi", "externalReferenceNumber": "TXN-882291"}
    assert errors(client.post(REVERSE, headers=BASIC, json=both), 400) == [
        (749, "Exactly one redemption identifier needed to identify redemption.")]
    assert written(client) == before


# -- v1.1 reads ------------------------------------------------------------------------------------------------
def test_history_lists_the_customers_redemptions_newest_first(client):
    r = client.get("/capillary/v1.1/customer/redemptions?mobile=919999999999&type=points", headers=BASIC)
    body = r.get_json()["response"]
    assert body["status"] == {"success": True, "code": 200, "message": "Success"}
    points = body["customer"]["redemptions"]["points"]["point"]
    assert [p["redemption_id"] for p in points] == ["RVRSD1", "sTDVyi"]
    assert points[0]["points_reversed"] == 50.0


def test_history_pagination(client):
    r = client.get(f"/capillary/v1.1/customer/redemptions?id={CUSTOMER}&points_limit=1&points_offset=1", headers=BASIC)
    redemptions = r.get_json()["response"]["customer"]["redemptions"]
    assert redemptions["points_count"] == 2 and [p["redemption_id"] for p in redemptions["points"]["point"]] == ["sTDVyi"]


@pytest.mark.parametrize("query", ["", "?mobile=000", "?id=209943742"])
def test_rule_history_customer_not_found_is_8015(client, query):
    r = client.get(f"/capillary/v1.1/customer/redemptions{query}", headers=BASIC)
    assert r.status_code == 404 and r.get_json()["response"]["status"]["code"] == 8015


def test_isredeemable(client):
    ok = client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=5000", headers=BASIC).get_json()
    assert ok["response"]["points"]["redeemable"]["is_redeemable"] is True
    assert ok["response"]["points"]["redeemable"]["item_status"]["code"] == 800
    short = client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=5001", headers=BASIC).get_json()
    assert short["response"]["points"]["redeemable"]["is_redeemable"] is False
    assert short["response"]["points"]["redeemable"]["item_status"]["code"] == 818
    r = client.get(f"/capillary/v1.1/points/isredeemable?id={CUSTOMER}&points=0", headers=BASIC)
    assert r.status_code == 400 and r.get_json()["response"]["status"]["code"] == 901


def test_a_token_whose_till_is_gone_is_a_401_not_a_500(client):
    """Found by the adversarial pass: an imported world may hold a token of a till it does not have."""
    snapshot = client.get("/_sandbox/state/export").get_json()
    snapshot["collections"]["cap_oauth_tokens"] = {"tokA": {"token": "tokA", "username": "nobody", "expiresAt": 1e300}}
    assert client.post("/_sandbox/state/import", json=snapshot).status_code == 200
    r = client.get("/capillary/v1.1/points/isredeemable?mobile=919999999999&points=1",
                   headers={"X-CAP-API-OAUTH-TOKEN": "tokA"})
    assert r.status_code == 401 and "no longer exists" in r.get_data(as_text=True)
