"""Hostile input (issue 14): each case an adversarial run found, by name. Every refusal is the vendor's 400 in its
own envelope, saying what to change, and leaves the state exactly as it was (compared through the export)."""
import json
import socket

import pytest

from helpers import CAPILLARY, FABRIC, PATCH_URL, bearer, served, strict_app

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
    assert r.status_code == 404 and r.get_json()["errors"][0]["code"] == 8015 and export(client) == before


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


# -- size limits, in the API's own envelope, before the body is read ------------------------------------------
def test_rule_body_over_the_limit_is_413_and_unread(client):
    before = export(client)
    r = send(client, "PATCH", PATCH_URL, b'{"redemptionInstructions": "' + b"a" * (1024 * 1024) + b'"}', bearer())
    assert r.status_code == 413 and r.get_json()["meta"]["statusCode"] == 413 and "1,048,576" in r.get_json()["message"]
    assert export(client) == before
    [entry] = [e for e in client.get("/_sandbox/requests").get_json()["requests"] if e["status"] == 413]
    assert entry["body"] == ""  # never read, so never held


def test_rule_chunked_body_over_the_limit_is_413(app):
    """No Content-Length: the body is read up to the limit and no further."""
    with served(app) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"PATCH " + PATCH_URL.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer XXXXXX\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        chunk = b"a" * 65536
        try:
            for _ in range(17):  # just over 1 MiB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may answer and close before the rest is sent
        answer = receive_all(sock)
    assert answer.startswith(b"HTTP/1.1 413") and b'"statusCode":413' in answer


def test_rule_bad_chunk_framing_is_400_in_the_envelope(app):
    with served(app) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST " + REDEEM.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                     + CAPILLARY["Authorization"].encode() + b"\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n")
        answer = receive_all(sock)
    assert answer.startswith(b"HTTP/1.1 400") and b'"errors"' in answer


@pytest.mark.parametrize("url,headers,envelope", [
    (PATCH_URL, bearer(), lambda body: body["meta"]["statusCode"]),
    ("/fabric/v3/redemptions", FABRIC, lambda body: body["errorCode"]),
    ("/capillary/v1.1/points/isredeemable", CAPILLARY, lambda body: body["response"]["status"]["code"]),
])
def test_rule_long_urls_and_headers_are_414_and_431_in_each_vendors_envelope(client, url, headers, envelope):
    r = client.get(url + "?q=" + "a" * 5000, headers=headers)
    assert r.status_code == 414 and envelope(r.get_json()) in (414, "URI_TOO_LONG")
    r = client.get(url, headers={**headers, "X-Padding": "a" * 20000})
    assert r.status_code == 431 and envelope(r.get_json()) in (431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
    r = client.get(url, headers={**headers, **{f"X-Many-{i}": "1" for i in range(70)}})
    assert r.status_code == 431 and "headers" in r.get_data(as_text=True)


def test_rule_import_takes_its_own_larger_limit(client):
    body = export(client)
    assert client.post("/_sandbox/state/import", json=body).status_code == 200
    r = client.post("/_sandbox/state/import", data=b"{" + b" " * (65 * 1024 * 1024) + b"}",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.get_json()["error"]["code"] == 413


# -- the journal: bounded, nothing cut without saying so, secrets masked ------------------------------------------
def test_rule_journal_keeps_an_accepted_10k_body_whole_and_marks_what_it_cuts(client):
    accepted = json.dumps({"redemptionInstructions": "b" * 9_990}).encode()
    assert send(client, "PATCH", PATCH_URL, accepted, bearer()).status_code == 200
    send(client, "PATCH", PATCH_URL, json.dumps({"redemptionInstructions": "c" * 30_000}).encode(), bearer())
    whole, cut = client.get("/_sandbox/requests").get_json()["requests"]
    assert whole["body"] == accepted.decode() and "truncated" not in whole
    assert cut["truncated"] is True and len(cut["body"]) == 16_384


def test_rule_secrets_never_reach_the_journal(client):
    client.post("/capillary/v3/oauth/token/generate?access_token=query-secret-1",
                json={"key": "cap-demo-client", "secret": "cap-demo-secret"},
                headers={"Proxy-Authorization": "Basic cHJveHk6c2VjcmV0", "X-Api-Key": "api-key-secret-2",
                         "Cookie": "session=cookie-secret-3"})
    token = client.post("/capillary/v3/oauth/token/generate", json={"key": "cap-demo-client",
                                                                    "secret": "cap-demo-secret"}).get_json()
    token = token["data"]["accessToken"]
    client.get("/capillary/v1.1/points/isredeemable?id=109943742&points=1", headers={"X-CAP-API-OAUTH-TOKEN": token})
    client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer())
    journal = json.dumps(client.get("/_sandbox/requests").get_json(), ensure_ascii=False)
    for secret in ("cap-demo-secret", "query-secret-1", "cHJveHk6c2VjcmV0", "api-key-secret-2", "cookie-secret-3",
                   token, token[:12], "XXXXXX", "c3RvcmUuc2Vy"):
        assert secret not in journal, secret
    assert "Bearer ‹secret " in journal and "‹secret " in journal


# -- bounded logs and rules ----------------------------------------------------------------------------------------
def test_rule_events_keep_the_newest_only(client, monkeypatch):
    import sandbox.core.events as events

    monkeypatch.setattr(events, "EVENTS_KEPT", 3)
    for n in range(5):
        client.patch(PATCH_URL, json={"redemptionInstructions": f"n{n}"}, headers=bearer())
    kept = client.get("/_sandbox/events").get_json()["events"]
    assert [e["payload"]["changes"]["redemptionInstructions"] for e in kept][-3:] == ["n2", "n3", "n4"]
    assert len(kept) <= 3 + 64  # SQLite trims every 64 appends; what is read is always the newest 3
    assert len(client.get("/_sandbox/events").get_json()["events"]) >= 3


def test_rule_at_most_100_fault_rules_a_world(client):
    for _ in range(100):
        assert client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "latency"}).status_code == 201
    r = client.post("/_sandbox/faults", json={"vendor": "fabric", "fault": "latency"})
    assert r.status_code == 409 and "100 fault rules" in r.get_json()["error"]["message"]
    assert len(client.get("/_sandbox/faults").get_json()["rules"]) == 100


@pytest.mark.parametrize("probability", [b"NaN", b"Infinity", b"-0.1", b"1.5"])
def test_rule_fault_probability_is_a_finite_number_in_0_1(client, probability):
    r = client.post("/_sandbox/faults", data=b'{"vendor": "fabric", "fault": "server-error", "probability": '
                    + probability + b"}", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and client.get("/_sandbox/faults").get_json()["rules"] == []
    assert client.get("/fabric/v3/redemptions?size=1", headers=FABRIC).status_code == 200


# -- the state import: every record checked, all or nothing -------------------------------------------------------
@pytest.mark.parametrize("damage", [
    lambda s: s["collections"].update({"_world": {"settings": {"seed": 1}}}),
    lambda s: s["collections"].update({"_fault_rules": {"1": {"id": 1, "vendor": "fabric", "nope": True}}}),
    lambda s: s["collections"]["cap_customers"]["109943742"].update(points="lots"),
    lambda s: s["collections"]["rai_purchase_histories"]["507f1f77bcf86cd799439012"].pop("product"),
    lambda s: s["collections"]["fab_redemptions"].update({"x": "not a record"}),
    lambda s: s["logs"].update({"_journal": []}),
])
def test_rule_import_refuses_damaged_snapshots_whole(client, damage):
    snapshot = export(client)
    client.patch(PATCH_URL, json={"redemptionInstructions": "changed after the export"}, headers=bearer())
    before = export(client)
    damage(snapshot)
    r = client.post("/_sandbox/state/import", json=snapshot)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == 400
    assert export(client) == before
    assert client.get("/_sandbox/health").status_code == 200
    assert client.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=bearer()).status_code == 200


def test_rule_a_damaged_stored_world_starts_and_reset_repairs_it(tmp_path):
    db = str(tmp_path / "damaged.db")
    first = strict_app(backend="sqlite", db=db, size=5).extensions["sandbox"]
    first.store.put("_world", "settings", {"seed": 1})  # no size, no suffix: once a KeyError at start-up
    first.store.put("_fault_rules", "999", {"id": 999, "vendor": "fabric", "unknown": 1})
    client = strict_app(backend="sqlite", db=db, size=5).test_client()
    assert client.get("/_sandbox/health").status_code == 200
    assert client.get("/_sandbox/faults").get_json() == {"rules": []}
    assert client.get("/fabric/v3/redemptions?size=1", headers=FABRIC).status_code == 200
    assert client.post("/_sandbox/reset").status_code == 200
    assert client.get("/_sandbox/health").get_json()["size"] == 5


def receive_all(sock) -> bytes:
    """What the server sent until it closed, or went quiet for a second (the answer comes at once)."""
    received = b""
    sock.settimeout(1)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def test_rule_a_secret_body_nested_past_the_limit_is_a_400_journaled_without_the_secret(client):
    """Masking walked the body recursively: 600 levels under an OAuth `secret` turned the 400 into a 500."""
    raw = b'{"key": "cap-demo-client", "secret": "deep-secret-1", "a": ' + b"[" * 600 + b"]" * 600 + b"}"
    r = client.post("/capillary/v3/oauth/token/generate", data=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    journal = json.dumps(client.get("/_sandbox/requests").get_json(), ensure_ascii=False)
    assert "deep-secret-1" not in journal and '"status": 400' in journal


def test_rule_secrets_hidden_behind_escapes_or_encodings_are_masked_too(client):
    client.post("/capillary/v3/oauth/token/generate?access%5Ftoken=query-secret-2",
                data=b'{"key": "cap-demo-client", "\\u0073ecret": "escaped-secret-3"}',
                headers={"Content-Type": "application/json"})
    journal = json.dumps(client.get("/_sandbox/requests").get_json(), ensure_ascii=False)
    assert "query-secret-2" not in journal and "escaped-secret-3" not in journal


def test_rule_credential_like_query_parameters_are_masked_in_journal_and_log(client, caplog):
    """Issue 26: `admin_token` and `X-Sandbox-Admin-Token` in a query were journaled and logged in clear. Any
    parameter whose name holds token, secret, key, password, ... is a credential (core/masking.py)."""
    names = ["admin_token", "X-Sandbox-Admin-Token", "refreshToken", "client-secret", "myApiKey", "PASSWORD"]
    query = "&".join(f"{name}=hidden-{number}" for number, name in enumerate(names))
    with caplog.at_level("INFO", logger="sandbox.requests"):
        client.patch(f"{PATCH_URL}?{query}&size=kept-in-clear", json={"redemptionInstructions": "A"},
                     headers=bearer())
    entry = client.get("/_sandbox/requests").get_json()["requests"][-1]
    logged = " ".join(str(record.request) for record in caplog.records if hasattr(record, "request"))
    for shown in (entry["path"], logged):
        assert "hidden-" not in shown, shown
        assert shown.count("‹secret ") == len(names) and "size=kept-in-clear" in shown
