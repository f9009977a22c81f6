"""Hostile input (issue 14): each case an adversarial run found, by name. Every refusal is the vendor's 400 in its
own envelope, saying what to change, and leaves the state exactly as it was (compared through the export)."""
import pytest

from conftest import CAPILLARY, PATCH_URL, bearer

REDEEM = "/capillary/v2/customers/109943743/redemptions"
REVERSE = "/capillary/v2/points/reverse"


def export(client) -> dict:
    r = client.get("/_sandbox/state/export")
    assert r.status_code == 200
    return r.get_json()


def send(client, method, url, raw: bytes, headers):
    return client.open(url, method=method, data=raw, headers={**headers, "Content-Type": "application/json"})


def assert_refused_and_unchanged(client, response, before, *fragments):
    assert response.status_code == 400, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert all(f in text for f in fragments), text
    assert export(client) == before


# -- strict JSON at the door -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,fragment", [
    (b'{"points": NaN}', "NaN"),
    (b'{"points": Infinity}', "Infinity"),
    (b'{"points": -Infinity}', "-Infinity"),
    (b'{"points": 1e400}', "finite"),
    (b'{"points": 123456789012345678901}', "points"),  # beyond the schema's maximum, which NaN never is
])
def test_rule_capillary_redeem_refuses_numbers_no_field_can_hold(client, raw, fragment):
    before = export(client)
    r = send(client, "POST", REDEEM, raw, CAPILLARY)
    assert_refused_and_unchanged(client, r, before, fragment)
    assert r.get_json()["errors"][0]["code"] in (400, 901)  # Capillary's own envelope and codes
    # The customer still redeems normally afterwards (the NaN once stored a null balance: every later call a 500).
    assert client.post(REDEEM, json={"points": 1}, headers=CAPILLARY).status_code == 200


def test_rule_capillary_reverse_refuses_nan(client):
    before = export(client)
    r = send(client, "POST", REVERSE, b'{"identifier": {"type": "MOBILE", "value": "919999999999"}, '
                                      b'"redemptionId": "sTDVyi", "pointsToBeReversed": NaN}', CAPILLARY)
    assert_refused_and_unchanged(client, r, before, "NaN")


@pytest.mark.parametrize("raw", [
    b'{"redemptionInstructions": "Show \\ud800 at the till"}',  # an escaped lone surrogate
    b'{"redemptionInstructions": "Show \xed\xa0\x80 at the till"}',  # the same, encoded as (invalid) UTF-8
    b'{"redemptionInstructions": "A", "\\udfff": 1}',  # in a key
])
def test_rule_lone_surrogates_are_refused_before_anything_is_written(client, raw):
    before = export(client)
    r = send(client, "PATCH", PATCH_URL, raw, bearer())
    assert_refused_and_unchanged(client, r, before)
    assert r.get_json()["meta"]["statusCode"] == 400
    assert client.get("/_sandbox/events").status_code == 200


def test_rule_a_valid_surrogate_pair_is_ordinary_unicode(client):
    r = send(client, "PATCH", PATCH_URL, b'{"redemptionInstructions": "Smile \\ud83d\\ude00"}', bearer())
    assert r.status_code == 200 and r.get_json()["data"]["product"]["redemptionInstructions"] == "Smile \U0001F600"


@pytest.mark.parametrize("depth", [33, 1_000, 1_023, 5_000])
def test_rule_nesting_is_limited_below_every_parser(client, depth):
    before = export(client)
    raw = b'{"redemptionInstructions": "A", "x": ' + b"[" * depth + b"]" * depth + b"}"
    r = send(client, "PATCH", PATCH_URL, raw, bearer())
    assert_refused_and_unchanged(client, r, before, "levels deep")


def test_rule_float_bodies_are_checked_as_strictly(client):
    """A body with a fraction is read by the standard library: the same refusals hold there."""
    before = export(client)
    raw = b'{"points": 1.5, "notes": "\\ud800"}'
    assert_refused_and_unchanged(client, send(client, "POST", REDEEM, raw, CAPILLARY), before, "surrogate")


# -- numbers in paths, queries and headers are ASCII digits --------------------------------------------------------
def test_rule_unicode_digits_in_a_path_are_not_a_customer_id(client):
    before = export(client)
    r = client.post("/capillary/v2/customers/\uff11\uff10\uff19\uff19\uff14\uff13\uff17\uff14\uff12/redemptions",
                    json={"points": 1}, headers=CAPILLARY)
    assert r.status_code in (400, 404) and export(client) == before


def test_rule_unicode_digits_in_an_identifier_are_not_a_customer_id(client):
    body = {"redemptionId": "sTDVyi", "billNumber": "x", "entity": {
        "type": "CUSTOMER", "identifierType": "id", "identifierValue": "\uff11\uff10\uff19\uff19\uff14\uff13\uff17\uff14\uff12"}}
    before = export(client)
    r = client.put("/capillary/v2/points/updateRedemption", json=body, headers=CAPILLARY)
    assert r.status_code == 404 and r.get_json()["errors"][0]["code"] == 8015 and export(client) == before


@pytest.mark.parametrize("delay", ["1_000", " 5", "+5", "\u0665"])
def test_rule_delay_header_is_ascii_digits(client, delay):
    r = client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers={**bearer(), "X-Sandbox-Delay": delay})
    assert r.status_code == 400 and "X-Sandbox-Delay" in r.get_json()["message"]
