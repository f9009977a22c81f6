"""fabric Offers redemptions, v3 (seed 003; vendors.md 2, 4(c)). One test per rule."""
import pytest

from helpers import read_state

TENANT = "61a5f0c2b3d4e5f6a7b8c9d0"
OTHER_TENANT = "61a5f0c2b3d4e5f6a7b8c9d1"
EXAMPLE = "614b58924e92f6861ac9d43b"
SUMMER = "614b58924e92f6861ac91234"
AUTUMN = "65031fa9f92c730009b6d4ea"
BASE = "/fabric/v3"
HEADERS = {"Authorization": "Bearer fabric-demo-token", "x-fabric-tenant-id": TENANT}
UPDATE_EXAMPLE = {"promotionId": AUTUMN, "orderId": "1590-2016-12345-7897", "couponCode": "BESTSUMMER",
                  "userId": "614b58924e92f61234567890", "email": "guest@example.com", "storeId": "A-100001",
                  "redeemedAt": "2020-12-14T12:15:43.646Z", "additionalAttributes": [{"name": "brand", "values": "Nike"}],
                  "status": "ACTIVE"}


def call(client, method, path, body=None, headers=None, **extra):
    return client.open(BASE + path, method=method, json=body, headers={**(HEADERS if headers is None else headers), **extra})


def assert_error(response, status, code, *fragments):
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["errorCode"] == code and body["type"] in ("CLIENT_ERROR", "SERVER_ERROR")
    assert set(body["context"]) == {"service", "endpoint"}
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


def stored(sandbox, ident=EXAMPLE):
    return sandbox.store.get("fab_redemptions", ident)


def fetched(client, ident=EXAMPLE):
    """The redemption as fabric's own GET answers it."""
    r = call(client, "GET", f"/redemptions/{ident}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def written(client):
    """Every redemption, as the control API reads them: what a refused request leaves as it was."""
    return read_state(client, "fab_redemptions")


# -- fabric's examples ------------------------------------------------------------------------------------------
def test_example_redemption_answers_as_printed(client):
    r = call(client, "GET", f"/redemptions/{EXAMPLE}")
    assert r.status_code == 200
    assert r.get_json() == {
        "id": EXAMPLE, "promotionId": SUMMER, "orderId": "1590-2016-12345",
        "createdAt": "2020-12-14T12:15:43.646Z", "updatedAt": "2021-12-14T12:15:43.646Z", "couponCode": "BESTSUMMER",
        "userId": "614b58924e92f61234567890", "email": "guest@example.com", "storeId": "A-100001",
        "redeemedAt": "2020-12-14T12:15:43.646Z", "status": "ACTIVE",
        "additionalAttributes": [{"name": "brand", "values": "Nike"}],
        "promotionAdditionalAttributes": [{"name": "eventName", "values": "Store sale"}],
        "promotionName": "Summer promotion"}


def test_seed_003_update_example_replaces_fields_and_fills_promotion(client, sandbox):
    before = stored(sandbox)
    r = call(client, "PUT", f"/redemptions/{EXAMPLE}", UPDATE_EXAMPLE)
    assert r.status_code == 200
    body = r.get_json()
    assert body["id"] == EXAMPLE and body["createdAt"] == before["createdAt"]
    assert body["updatedAt"] > before["updatedAt"]
    assert body["orderId"] == "1590-2016-12345-7897" and body["promotionId"] == AUTUMN
    assert body["promotionName"] == "Autumn promotion"
    assert body["promotionAdditionalAttributes"] == [{"name": "eventName", "values": "Autumn clearance"},
                                                     {"name": "region", "values": "US"}]
    assert stored(sandbox)["orderId"] == "1590-2016-12345-7897"
    assert fetched(client) == body


# -- headers ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers,fragment", [
    ({"x-fabric-tenant-id": TENANT}, "Missing bearer token"),
    ({"x-fabric-tenant-id": TENANT, "Authorization": "Token abc"}, "Malformed"),
    ({"x-fabric-tenant-id": TENANT, "Authorization": "Bearer nope"}, "Unknown bearer token"),
])
def test_rule_401_without_or_with_unknown_bearer(client, headers, fragment):
    r = call(client, "GET", f"/redemptions/{EXAMPLE}", headers=headers)
    assert_error(r, 401, "UNAUTHORIZED", fragment)
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="fabric"'  # RFC 9110: a 401 names its scheme


@pytest.mark.parametrize("tenant", [None, "short", TENANT + "0"])
def test_rule_tenant_header_required_exactly_24_characters(client, tenant):
    headers = {"Authorization": "Bearer fabric-demo-token"}
    if tenant is not None:
        headers["x-fabric-tenant-id"] = tenant
    body = assert_error(call(client, "GET", "/redemptions", headers=headers), 400,
                        "SERVICE-4003" if tenant is None else "SERVICE-4002", "x-fabric-tenant-id")
    assert body["context"]["endpoint"] == "GET /v3/redemptions"


def test_rule_token_of_another_tenant_is_403(client):
    headers = {"Authorization": "Bearer fabric-second-tenant-token", "x-fabric-tenant-id": TENANT}
    assert_error(call(client, "GET", "/redemptions", headers=headers), 403, "FORBIDDEN", "another tenant")


def test_rule_other_tenants_redemption_is_404(client):
    assert_error(call(client, "GET", "/redemptions/614b58924e92f6861ac9d43d"), 404, "SERVICE-4004")
    own = {"Authorization": "Bearer fabric-second-tenant-token", "x-fabric-tenant-id": OTHER_TENANT}
    assert call(client, "GET", "/redemptions/614b58924e92f6861ac9d43d", headers=own).status_code == 200
    assert_error(call(client, "GET", f"/redemptions/{EXAMPLE}", headers=own), 404, "SERVICE-4004")


def test_rule_channel_id_12_or_13_default_12_stored(client, sandbox):
    body = {"promotionId": SUMMER, "orderId": "CH-1"}
    created = call(client, "POST", "/redemptions", body).get_json()
    assert stored(sandbox, created["id"])["channelId"] == "12"
    created = call(client, "POST", "/redemptions", body, **{"x-fabric-channel-id": "13"}).get_json()
    assert stored(sandbox, created["id"])["channelId"] == "13"
    before = written(client)
    assert_error(call(client, "POST", "/redemptions", body, **{"x-fabric-channel-id": "14"}), 400, "SERVICE-4002",
                 "12 (US) or 13 (Canada)")
    assert written(client) == before


def test_rule_request_id_echoed_on_success_and_error(client):
    r = call(client, "GET", f"/redemptions/{EXAMPLE}", **{"x-fabric-request-id": "req-42"})
    assert r.headers["x-fabric-request-id"] == "req-42"
    r = call(client, "GET", "/redemptions/nope", **{"x-fabric-request-id": "req-43"})
    assert r.status_code == 404 and r.headers["x-fabric-request-id"] == "req-43"


# -- update semantics ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body,code,fragment", [
    ({"orderId": "A"}, "SERVICE-4003", "Mandatory parameters: promotionId is/are missing."),
    ({"promotionId": SUMMER}, "SERVICE-4003", "Mandatory parameters: orderId is/are missing."),
    ({"promotionId": SUMMER, "orderId": "A", "status": "DONE"}, "SERVICE-4002", "status must be ACTIVE or INACTIVE"),
    ({"promotionId": SUMMER, "orderId": "A", "email": "not-an-email"}, "SERVICE-4002", "email"),
    ({"promotionId": SUMMER, "orderId": "A", "redeemedAt": "yesterday"}, "SERVICE-4002", "redeemedAt"),
    ({"promotionId": SUMMER, "orderId": "A", "additionalAttributes": [{"name": "x"}]}, "SERVICE-4003", "values"),
    ({"promotionId": SUMMER, "orderId": "A", "id": "x"}, "SERVICE-4002", "Unknown field(s) id"),
    ({}, "SERVICE-4007", "Multiple fields are invalid/missing."),
])
def test_rule_update_validation(client, sandbox, body, code, fragment):
    before = stored(sandbox)
    response = assert_error(call(client, "PUT", f"/redemptions/{EXAMPLE}", body), 400, code, fragment)
    if code == "SERVICE-4007":
        assert {e["field"] for e in response["errors"]} == {"promotionId", "orderId"}
    assert stored(sandbox) == before


def test_rule_put_is_full_replacement_left_out_fields_cleared_status_defaults_active(client, sandbox):
    # The first PUT fills every field, so that the second has something to clear.
    assert call(client, "PUT", f"/redemptions/{EXAMPLE}", {**UPDATE_EXAMPLE, "status": "INACTIVE"}).status_code == 200
    r = call(client, "PUT", f"/redemptions/{EXAMPLE}", {"promotionId": SUMMER, "orderId": "1590-2016-12345"})
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ACTIVE" and body["userId"] is None and body["email"] is None
    assert "storeId" not in body and "redeemedAt" not in body and "couponCode" not in body
    assert body["additionalAttributes"] == []
    assert fetched(client) == body


def test_rule_email_and_redeemed_at_accept_null(client):
    r = call(client, "PUT", f"/redemptions/{EXAMPLE}", {"promotionId": SUMMER, "orderId": "A", "email": None,
                                                        "redeemedAt": None, "userId": None, "storeId": None})
    assert r.status_code == 200
    after = fetched(client)
    assert after == r.get_json() and after["orderId"] == "A"
    assert after["email"] is None and after["userId"] is None and "redeemedAt" not in after


def test_rule_unknown_promotion_is_404_not_a_silent_blank(client, sandbox):
    before = stored(sandbox)
    r = call(client, "PUT", f"/redemptions/{EXAMPLE}", {"promotionId": "ffffffffffffffffffffffff", "orderId": "A"})
    assert_error(r, 404, "SERVICE-4004", "promotion ffffffffffffffffffffffff")
    assert stored(sandbox) == before


def test_rule_order_cancellation_deactivates(client, sandbox):
    r = call(client, "PUT", f"/redemptions/{EXAMPLE}", {**UPDATE_EXAMPLE, "status": "INACTIVE"})
    assert r.status_code == 200
    assert r.get_json()["status"] == "INACTIVE" and stored(sandbox)["status"] == "INACTIVE"
    assert fetched(client)["status"] == "INACTIVE"


def test_rule_single_use_coupon_second_active_redemption_is_409(client, sandbox):
    body = {"promotionId": SUMMER, "orderId": "ORDER-NEW", "couponCode": "SINGLE-USE-0001"}
    count = len(sandbox.store.all("fab_redemptions"))
    assert_error(call(client, "POST", "/redemptions", body), 409, "CONFLICT", "1590-2016-99999")
    assert len(sandbox.store.all("fab_redemptions")) == count
    # INACTIVE is fine, and once the first is deactivated an ACTIVE one on another order is too.
    assert call(client, "POST", "/redemptions", {**body, "status": "INACTIVE"}).status_code == 201
    assert call(client, "PUT", "/redemptions/614b58924e92f6861ac9d43c", {
        "promotionId": SUMMER, "orderId": "1590-2016-99999", "couponCode": "SINGLE-USE-0001", "status": "INACTIVE",
    }).status_code == 200
    r = call(client, "POST", "/redemptions", body)
    assert r.status_code == 201
    assert fetched(client, r.get_json()["id"])["status"] == "ACTIVE"


def test_rule_multi_use_coupon_allows_many_active_redemptions(client):
    assert fetched(client)["couponCode"] == "BESTSUMMER" and fetched(client)["status"] == "ACTIVE"
    body = {"promotionId": SUMMER, "orderId": "ORDER-X", "couponCode": "BESTSUMMER"}
    r = call(client, "POST", "/redemptions", body)
    assert r.status_code == 201
    # Both stay active: the new one did not take the coupon from the first.
    assert fetched(client, r.get_json()["id"])["status"] == "ACTIVE" and fetched(client)["status"] == "ACTIVE"


# -- the rest of the resource ----------------------------------------------------------------------------------
def test_create_get_list_delete_then_get_is_404(client):
    r = call(client, "POST", "/redemptions", {"promotionId": SUMMER, "orderId": "LIFE-1", "userId": "u-1"})
    assert r.status_code == 201
    created = r.get_json()
    assert created["promotionName"] == "Summer promotion" and created["status"] == "ACTIVE"
    assert call(client, "GET", f"/redemptions/{created['id']}").get_json() == created
    listed = call(client, "GET", "/redemptions?orderId=LIFE-1").get_json()
    assert listed["data"] == [created] and "nextCursor" not in listed["query"]
    r = call(client, "DELETE", f"/redemptions/{created['id']}")
    assert r.status_code == 200 and r.get_json() == {"id": created["id"], "isDeleted": True}
    assert_error(call(client, "GET", f"/redemptions/{created['id']}"), 404, "SERVICE-4004")
    assert_error(call(client, "DELETE", f"/redemptions/{created['id']}"), 404, "SERVICE-4004")


def test_list_pages_with_cursor_through_every_redemption_of_the_tenant(client, sandbox):
    expected = {r["id"] for r in sandbox.store.all("fab_redemptions") if r["tenantId"] == TENANT}
    seen, cursor = [], None
    while True:
        r = call(client, "GET", "/redemptions?size=7" + (f"&startCursor={cursor}" if cursor else ""))
        page = r.get_json()
        assert page["query"]["size"] == 7 and len(page["data"]) <= 7
        seen += [d["id"] for d in page["data"]]
        cursor = page["query"].get("nextCursor")
        if not cursor:
            break
    assert len(seen) > 7  # more than one page, or the cursor went unused
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_list_filters(client):
    data = call(client, "GET", "/redemptions?couponCode=BESTSUMMER&size=100").get_json()["data"]
    assert data and all(d["couponCode"] == "BESTSUMMER" for d in data)
    data = call(client, "GET", "/redemptions?status=INACTIVE&size=100").get_json()["data"]
    inactive = {r["id"] for r in written(client) if r["tenantId"] == TENANT and r["status"] == "INACTIVE"}
    assert inactive and {d["id"] for d in data} == inactive
    assert all(d["status"] == "INACTIVE" for d in data)
    data = call(client, "GET", "/redemptions?userId=614b58924e92f61234567890").get_json()["data"]
    assert [d["id"] for d in data] == [EXAMPLE]


@pytest.mark.parametrize("query,fragment", [("size=0", "size must be"), ("size=101", "size must be"),
                                            ("size=ten", "size must be"), ("startCursor=NOT!", "startCursor")])
def test_rule_list_size_1_to_100_and_cursor(client, query, fragment):
    assert_error(call(client, "GET", f"/redemptions?{query}"), 400, "SERVICE-4002", fragment)


def test_batch_update_applies_good_items_and_reports_bad_ones(client, sandbox):
    r = call(client, "PUT", "/redemptions/batch", {"data": [
        {"id": EXAMPLE, "promotionId": SUMMER, "orderId": "1590-2016-12345", "status": "INACTIVE"},
        {"id": "missing-1", "promotionId": SUMMER, "orderId": "A"},
        {"id": "614b58924e92f6861ac9d43c", "promotionId": "ffffffffffffffffffffffff", "orderId": "B"},
    ]})
    assert r.status_code == 200
    body = r.get_json()
    assert [d["id"] for d in body["data"]] == [EXAMPLE] and body["data"][0]["status"] == "INACTIVE"
    assert [(e["id"], e["errorCode"]) for e in body["errors"]] == [("missing-1", "SERVICE-4004"),
                                                                  ("614b58924e92f6861ac9d43c", "SERVICE-4004")]
    assert stored(sandbox)["status"] == "INACTIVE"
    assert stored(sandbox, "614b58924e92f6861ac9d43c")["orderId"] == "1590-2016-99999"


def test_batch_malformed_item_is_400_and_nothing_changes(client, sandbox):
    before = stored(sandbox)
    r = call(client, "PUT", "/redemptions/batch", {"data": [
        {"id": EXAMPLE, "promotionId": SUMMER, "orderId": "Z"}, {"id": "x", "orderId": "A"}]})
    assert_error(r, 400, "SERVICE-4003", "promotionId")
    assert stored(sandbox) == before
    everything = written(client)
    assert_error(call(client, "PUT", "/redemptions/batch", {"data": []}), 400, "SERVICE-4002", "1 to 100")
    assert written(client) == everything


def test_deprecated_create_on_coupon(client, sandbox):
    body = {"couponCode": "BESTSUMMER", "orderId": "1590-2016-77777", "email": "guest@example.com"}
    r = call(client, "POST", "/coupons/614b58924e92f6861ac9c001/redemptions", body)
    assert r.status_code == 201
    created = r.get_json()
    assert set(created) == {"id", "couponId", "couponCode", "orderId", "userId", "email", "createdAt", "updatedAt"}
    assert created["couponId"] == "614b58924e92f6861ac9c001" and stored(sandbox, created["id"])["promotionId"] == SUMMER
    assert fetched(client, created["id"])["orderId"] == "1590-2016-77777"
    before = written(client)
    assert_error(call(client, "POST", "/coupons/nope/redemptions", body), 404, "SERVICE-4004", "coupon nope")
    assert_error(call(client, "POST", "/coupons/614b58924e92f6861ac9c001/redemptions", {**body, "couponCode": "X"}),
                 404, "SERVICE-4004", "coupon code X")
    assert written(client) == before


def test_method_not_allowed_lists_documented_methods(client):
    r = call(client, "POST", "/redemptions/batch")
    assert r.status_code == 405 and r.headers["Allow"] == "PUT"
    r = call(client, "PATCH", f"/redemptions/{EXAMPLE}")
    assert_error(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["Allow"] == "DELETE, GET, PUT"


def test_events_recorded_for_writes(client):
    call(client, "PUT", f"/redemptions/{EXAMPLE}", {**UPDATE_EXAMPLE, "status": "INACTIVE"})
    events = client.get("/_sandbox/events").get_json()["events"]
    assert events[-1]["name"] == "fabric:redemption.updated" and events[-1]["payload"]["status"] == "INACTIVE"
