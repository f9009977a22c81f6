"""Rewards & Redemptions (seed 002; vendors.md 4(b), 4(e)). One test per rule."""
import pytest

from helpers import assert_rai_error as assert_error, DOC_COMMUNITY, bearer, read_state

PREFIX = "/returning-ai/v1"
PUT_STATUS = PREFIX + "/redemption-transactions/status"
PROCESSING = "695dcc370ab8622381f27918"
SHIPPING = "695e2f8b3358520a2ecf86e4"
PENDING = "695e2f8b3358520a2ecf8601"
DELIVERED = "695e2f8b3358520a2ecf8602"
CANCELLED = "695e2f8b3358520a2ecf8603"
REFUNDED = "695e2f8b3358520a2ecf8604"
MEMBER = "507f1f77bcf86cd799439014"
DOC_TX = "ORD202507013831"
DOC_TX_ID = "686352a0b1c2d3e4f5a63831"


def put_status(client, body, key="XXXXXX"):
    return client.put(PUT_STATUS, json=body, headers=bearer(key))


def post(client, path, body=None, key="XXXXXX"):
    return client.post(PREFIX + path, json=body, headers=bearer(key))


def coins(sandbox, user=MEMBER):
    return sandbox.store.get("rai_users", user)["coins"]


def history(client, tx=DOC_TX):
    r = post(client, "/redemption-transactions/status-history", {"transactionId": tx})
    assert r.status_code == 200
    return r.get_json()["data"]["history"]


def status_of(client, tx=DOC_TX):
    """The order's stored status, as the status-history read answers it."""
    r = post(client, "/redemption-transactions/status-history", {"transactionId": tx})
    assert r.status_code == 200
    return r.get_json()["data"]["statusId"]


def written(client):
    """Orders, statuses and balances as the control API reads them: what a refused request leaves as it was."""
    return tuple(read_state(client, name) for name in
                 ("rai_redemption_transactions", "rai_redemption_statuses", "rai_users"))




# -- the PUT, as documented ------------------------------------------------------------------------------------
def test_seed_002_curl_example_succeeds_as_printed_with_statusID_alias(client):
    r = put_status(client, {"transactionId": DOC_TX, "statusID": PROCESSING, "refundCoins": False})
    assert r.status_code == 200
    assert r.get_json() == {
        "status": "success", "message": "Transaction status updated successfully",
        "data": {"transactionId": DOC_TX, "statusId": PROCESSING,
                 "status": {"_id": PROCESSING, "name": "Processing", "category": "incomplete", "color": "#F5A623"}}}
    assert status_of(client) == PROCESSING
    assert [(e["fromStatusId"], e["toStatusId"]) for e in history(client)] == [(PENDING, PROCESSING)]


def test_seed_002_response_example_order_moves_to_shipping(client):
    r = put_status(client, {"transactionId": "ORD20260102ffc6", "statusId": SHIPPING})
    assert r.status_code == 200
    assert r.get_json()["data"] == {
        "transactionId": "ORD20260102ffc6", "statusId": SHIPPING,
        "status": {"_id": SHIPPING, "name": "Shipping", "category": "incomplete", "color": "#3EA1FD"}}
    assert status_of(client, "ORD20260102ffc6") == SHIPPING


def test_rule_statusId_and_statusID_together_is_400(client):
    before = written(client)
    r = put_status(client, {"transactionId": DOC_TX, "statusId": PROCESSING, "statusID": PROCESSING})
    assert_error(r, 400, "never both")
    assert written(client) == before and history(client) == []


@pytest.mark.parametrize("body,field,fragment", [
    ({"statusId": PROCESSING}, "transactionId", "transactionId is required"),
    ({"transactionId": DOC_TX}, "", "send the target status as statusId"),
    ({"transactionId": DOC_TX, "statusId": "not-an-id"}, "statusId", "24-character hex ObjectId"),
    ({"transactionId": "TX-1", "statusId": PROCESSING}, "transactionId", "order ID such as"),
    ({"transactionId": DOC_TX, "statusId": PROCESSING, "refundCoins": "yes"}, "refundCoins", "type boolean"),
    ({"transactionId": DOC_TX, "statusId": PROCESSING, "note": 1}, "", "Unknown field(s) note"),
])
def test_rule_put_validation_400(client, sandbox, body, field, fragment):
    before = sandbox.store.get("rai_redemption_transactions", "686352a0b1c2d3e4f5a63831")
    errors = assert_error(put_status(client, body), 400, fragment)["errors"]
    assert errors[0]["field"] == field
    assert sandbox.store.get("rai_redemption_transactions", "686352a0b1c2d3e4f5a63831") == before


def test_rule_unknown_transaction_or_status_is_404(client):
    before = written(client)
    assert_error(put_status(client, {"transactionId": "ORD000000000000", "statusId": PROCESSING}), 404,
                 "ORD000000000000")
    assert_error(put_status(client, {"transactionId": DOC_TX, "statusId": "aaaaaaaaaaaaaaaaaaaaaaaa"}), 404,
                 "aaaaaaaaaaaaaaaaaaaaaaaa")
    assert written(client) == before and history(client) == []


def test_rule_other_communitys_orders_and_statuses_are_404(client):
    second_community_status = "695e2f8b3358520a2ecf8612"
    before = written(client)
    assert_error(put_status(client, {"transactionId": DOC_TX, "statusId": second_community_status}), 404,
                 f"Redemption status {second_community_status} was not found in this community")
    assert_error(put_status(client, {"transactionId": DOC_TX, "statusId": PROCESSING},
                            key="rai_test_second_community"), 404,
                 f"Redemption transaction {DOC_TX} was not found in this community")
    r = post(client, "/redemption-statuses/get", {"statusId": PROCESSING}, key="rai_test_second_community")
    assert_error(r, 404, f"Redemption status {PROCESSING} was not found in this community")
    assert written(client) == before and history(client) == []


# -- permissions -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key,call", [
    ("rai_test_no_status_update", lambda c, k: put_status(c, {"transactionId": DOC_TX, "statusId": PROCESSING}, k)),
    ("rai_test_no_status_create", lambda c, k: post(c, "/redemption-statuses/create", {"name": "X", "category": "incomplete"}, k)),
    ("rai_test_no_read", lambda c, k: post(c, "/redemption-statuses/list", {}, k)),
    ("rai_test_no_read", lambda c, k: post(c, "/redemption-transactions/by-community", {}, k)),
    ("rai_test_no_read", lambda c, k: post(c, "/redemption-transactions/status-history", {"transactionId": DOC_TX}, k)),
])
def test_rule_403_without_the_operations_permission(client, key, call):
    before = written(client)
    assert_error(call(client, key), 403, "lacks the")
    assert written(client) == before


@pytest.mark.parametrize("key,fragment", [("rai_test_expired", "expired"), ("rai_test_inactive", "inactive"),
                                          ("nope", "Invalid API key")])
def test_rule_401_expired_inactive_or_unknown_key(client, key, fragment):
    before = written(client)
    assert_error(put_status(client, {"transactionId": DOC_TX, "statusId": PROCESSING}, key), 401, fragment)
    assert written(client) == before and history(client) == []


# -- transitions and history -----------------------------------------------------------------------------------
def test_rule_status_change_appends_history_entry_in_order(client):
    assert put_status(client, {"transactionId": DOC_TX, "statusId": PROCESSING}).status_code == 200
    assert put_status(client, {"transactionId": DOC_TX, "statusId": SHIPPING}).status_code == 200
    entries = history(client)
    assert [(e["fromStatusId"], e["toStatusId"]) for e in entries] == [(PENDING, PROCESSING), (PROCESSING, SHIPPING)]
    assert all(e["changedBy"] == "‹secret 5ad4c4›" and e["refundCoins"] is False and e["coinsRefunded"] == 0 for e in entries)
    assert entries[0]["changedAt"] <= entries[1]["changedAt"]
    assert status_of(client) == SHIPPING


def test_rule_same_status_again_is_idempotent_200_without_history(client):
    # Unless the first move is accepted, the second is a first move, and the single entry proves nothing.
    assert put_status(client, {"transactionId": DOC_TX, "statusId": PROCESSING}).status_code == 200
    before = read_state(client, "rai_redemption_transactions", DOC_TX_ID)
    r = put_status(client, {"transactionId": DOC_TX, "statusId": PROCESSING})
    assert r.status_code == 200 and r.get_json()["data"]["statusId"] == PROCESSING
    assert len(history(client)) == 1 and status_of(client) == PROCESSING
    assert read_state(client, "rai_redemption_transactions", DOC_TX_ID) == before


def test_rule_refund_credits_member_once_when_moving_to_refunded(client, sandbox):
    before = coins(sandbox)
    r = put_status(client, {"transactionId": DOC_TX, "statusId": REFUNDED, "refundCoins": True})
    assert r.status_code == 200
    assert coins(sandbox) == before + 500
    entry = history(client)[-1]
    assert entry["refundCoins"] is True and entry["coinsRefunded"] == 500
    # The balance is visible in the list responses and through the control API.
    listed = post(client, "/redemption-transactions/by-user-email", {"email": "member@example.com"}).get_json()
    assert listed["data"]["user"]["coins"] == before + 500
    state = client.get(f"/_sandbox/state/rai_users?id={MEMBER}").get_json()
    assert state["records"][0]["coins"] == before + 500


def test_rule_second_refund_of_same_order_is_409_and_changes_nothing(client, sandbox):
    assert put_status(client, {"transactionId": DOC_TX, "statusId": REFUNDED, "refundCoins": True}).status_code == 200
    balance = coins(sandbox)
    before = written(client)
    r = put_status(client, {"transactionId": DOC_TX, "statusId": REFUNDED, "refundCoins": True})
    assert_error(r, 409, "already refunded")
    assert coins(sandbox) == balance and len(history(client)) == 1
    assert written(client) == before


def test_rule_demo_order_already_refunded_cannot_be_refunded_again(client, sandbox):
    balance = coins(sandbox)
    before = written(client)
    r = put_status(client, {"transactionId": "ORD20260105REFUND", "statusId": REFUNDED, "refundCoins": True})
    assert_error(r, 409, "already refunded")
    assert coins(sandbox) == balance
    assert written(client) == before and history(client, "ORD20260105REFUND") == []


def test_rule_refund_with_non_refund_status_is_409(client, sandbox):
    balance = coins(sandbox)
    before = written(client)
    r = put_status(client, {"transactionId": DOC_TX, "statusId": DELIVERED, "refundCoins": True})
    body = assert_error(r, 409, "refundCoins needs a status of category refunded")
    assert body["errors"][0]["field"] == "refundCoins"
    assert coins(sandbox) == balance and history(client) == []
    assert written(client) == before and status_of(client) == PENDING


def test_rule_leaving_a_refunded_status_is_409(client):
    before = written(client)
    r = put_status(client, {"transactionId": "ORD20260105REFUND", "statusId": SHIPPING})
    assert_error(r, 409, "final")
    assert history(client, "ORD20260105REFUND") == []
    assert written(client) == before and status_of(client, "ORD20260105REFUND") == REFUNDED


def test_rule_moving_to_refunded_without_refund_then_refunding_later(client, sandbox):
    before = coins(sandbox)
    assert put_status(client, {"transactionId": DOC_TX, "statusId": REFUNDED}).status_code == 200
    assert coins(sandbox) == before
    assert put_status(client, {"transactionId": DOC_TX, "statusId": REFUNDED, "refundCoins": True}).status_code == 200
    assert coins(sandbox) == before + 500
    assert [e["coinsRefunded"] for e in history(client)] == [0, 500]


def test_events_status_change_and_refund(client):
    put_status(client, {"transactionId": DOC_TX, "statusId": REFUNDED, "refundCoins": True})
    events = client.get("/_sandbox/events").get_json()["events"]
    assert [e["name"] for e in events] == ["update:redemption-transaction-status", "refund:coins"]
    assert events[0]["payload"]["toStatusId"] == REFUNDED
    assert events[1]["payload"]["coins"] == 500 and events[1]["payload"]["userID"] == MEMBER


# -- statuses --------------------------------------------------------------------------------------------------
def test_create_status_then_move_an_order_to_it(client):
    r = post(client, "/redemption-statuses/create", {"name": "  Out for delivery ", "category": "incomplete",
                                              "color": "#3ea1fd"})
    assert r.status_code == 201
    status = r.get_json()["data"]
    assert status["name"] == "Out for delivery" and status["color"] == "#3EA1FD"
    assert post(client, "/redemption-statuses/get", {"statusId": status["_id"]}).get_json()["data"] == status
    assert put_status(client, {"transactionId": DOC_TX, "statusId": status["_id"]}).status_code == 200
    assert status_of(client) == status["_id"]


def test_rule_duplicate_status_name_is_409(client):
    before = written(client)
    r = post(client, "/redemption-statuses/create", {"name": "shipping", "category": "incomplete"})
    assert_error(r, 409, "already exists")
    assert written(client) == before


@pytest.mark.parametrize("body,fragment", [
    ({"name": "", "category": "incomplete"}, "name must be a non-empty string of at most 50"),
    ({"name": "   ", "category": "incomplete"}, "name must be a non-empty string"),
    ({"name": "x" * 51, "category": "incomplete"}, "at most 50"),
    ({"name": "X", "category": "lost"}, "category must be one of"),
    ({"name": "X", "category": "incomplete", "color": "blue"}, "color must be #RRGGBB"),
    ({"name": "X", "category": "incomplete", "color": "#12345"}, "color must be #RRGGBB"),
    ({"category": "incomplete"}, "name is required"),
])
def test_rule_create_status_validation_400(client, body, fragment):
    before = written(client)
    assert_error(post(client, "/redemption-statuses/create", body), 400, fragment)
    assert written(client) == before


def test_list_statuses_by_category_with_pagination(client):
    data = post(client, "/redemption-statuses/list", {"category": "incomplete"}).get_json()["data"]
    assert {s["name"] for s in data["items"]} == {"Processing", "Shipping", "Pending"}
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 3, "totalPages": 1}
    page2 = post(client, "/redemption-statuses/list", {"page": 2, "limit": 4}).get_json()["data"]
    assert len(page2["items"]) == 2 and page2["pagination"]["total"] == 6


@pytest.mark.parametrize("body,fragment", [({"page": 0}, "page must be"), ({"limit": 101}, "limit must be"),
                                           ({"limit": "ten"}, "limit must be")])
def test_rule_bad_pagination_is_400(client, body, fragment):
    assert_error(post(client, "/redemption-transactions/by-community", body), 400, fragment)


# -- orders ----------------------------------------------------------------------------------------------------
def test_list_orders_by_community_only_this_community_newest_first(client, sandbox):
    data = post(client, "/redemption-transactions/by-community", {"limit": 100}).get_json()["data"]
    assert data["items"] and all(o["communityID"] == DOC_COMMUNITY for o in data["items"])
    created = [o["createdAt"] for o in data["items"]]
    assert created == sorted(created, reverse=True)
    expected = len(sandbox.store.find("rai_redemption_transactions", communityID=DOC_COMMUNITY))
    assert data["pagination"]["total"] == expected == len(data["items"])


def test_list_orders_by_community_filtered_by_status(client):
    data = post(client, "/redemption-transactions/by-community", {"statusId": REFUNDED}).get_json()["data"]
    assert [o["transactionId"] for o in data["items"]] == ["ORD20260105REFUND"]
    assert_error(post(client, "/redemption-transactions/by-community", {"statusId": "a" * 24}), 404)


def test_list_orders_by_user_email(client):
    data = post(client, "/redemption-transactions/by-user-email", {"email": "member@example.com"}).get_json()["data"]
    ids = {o["transactionId"] for o in data["items"]}
    assert {DOC_TX, "ORD20260102ffc6", "ORD202641612055614747"} <= ids
    assert all(o["user"]["_id"] == MEMBER for o in data["items"])
    assert_error(post(client, "/redemption-transactions/by-user-email", {"email": "nobody@example.com"}), 404,
                 "nobody@example.com")
    assert_error(post(client, "/redemption-transactions/by-user-email", {"email": "not-an-email"}), 400, "email")


def test_one_world_purchase_histories_are_redemption_orders(sandbox):
    orders = sandbox.store.all("rai_purchase_histories")
    assert orders  # or the loop checks nothing
    for order in orders:
        tx = sandbox.store.get("rai_redemption_transactions", order["_id"])
        assert tx["transactionId"] == order["purchaseID"] and tx["userID"] == order["userID"]


def test_seeded_statuses_cover_every_category_and_orders_spread_across_them(sandbox):
    statuses = sandbox.store.all("rai_redemption_statuses")
    assert {s["category"] for s in statuses} == {"incomplete", "completed", "cancelled", "refunded"}
    by_id = {s["_id"]: s["category"] for s in statuses}
    assert {by_id[o["statusId"]] for o in sandbox.store.all("rai_redemption_transactions")} == set(by_id.values())
