"""HTTP handlers, one per operationId of specs/returning-ai.yaml. They translate; the backends decide."""
from .purchase_histories import PurchaseHistories, PurchaseHistoryChanges, purchase_history_json
from .redemptions import RewardsAndRedemptions, history_json, member_json, paginate, status_json


def _success(message: str, data) -> dict:
    """The Rewards & Redemptions envelope (seed 002): {status, message, data}."""
    return {"status": "success", "message": message, "data": data}


# -- Purchase History (seeds 000, 001) -------------------------------------------------------------------------
def update_purchase_history(call):
    order = PurchaseHistories(call.store, call.settings, call.now).update_purchase_history(
        call.principal.community_id,
        call.params["purchaseHistoryID"],
        PurchaseHistoryChanges.from_body(call.body),
        call.fault,
    )
    return {
        "meta": {"status": "success", "statusCode": 200},
        "message": "Update purchase history success.",
        "data": purchase_history_json(order, call.now),
    }


# -- Rewards & Redemptions (seed 002) -------------------------------------------------------------------------
def update_redemption_transaction_status(call):
    body = call.body
    order, status = RewardsAndRedemptions(call.store, call.ids, call.now).update_status(
        call.principal,
        body["transactionId"],
        body.get("statusId", body.get("statusID")),  # statusID: seed 002's curl spelling
        body["refundCoins"],
    )
    return _success("Transaction status updated successfully", {
        "transactionId": order["transactionId"], "statusId": status["_id"], "status": status_json(status)})


def list_redemption_transactions_by_user_email(call):
    body = call.body
    redemptions = RewardsAndRedemptions(call.store, call.ids, call.now)
    member = redemptions.member_by_email(call.principal.community_id, body["email"])
    items, pagination = paginate(redemptions.transactions_of(member), body["page"], body["limit"])
    return _success("Redemption transactions fetched successfully", {
        "user": member_json(member), "items": [redemptions.transaction_json(o) for o in items], "pagination": pagination})


def list_redemption_transactions_by_community(call):
    body = call.body or {}
    redemptions = RewardsAndRedemptions(call.store, call.ids, call.now)
    orders = redemptions.transactions(call.principal.community_id, body.get("statusId"))
    items, pagination = paginate(orders, body["page"], body["limit"])
    return _success("Redemption transactions fetched successfully", {
        "items": [redemptions.transaction_json(o) for o in items], "pagination": pagination})


def get_redemption_transaction_status_history(call):
    order, history = RewardsAndRedemptions(call.store, call.ids, call.now).history(call.principal.community_id,
                                                               call.body["transactionId"])
    return _success("Redemption transaction status history fetched successfully", {
        "transactionId": order["transactionId"], "statusId": order["statusId"],
        "history": [history_json(e) for e in history]})


def create_redemption_status(call):
    body = call.body
    status = RewardsAndRedemptions(call.store, call.ids, call.now).create_status(
        call.principal.community_id, body["name"], body["category"], body["color"])
    return 201, _success("Redemption status created successfully", status_json(status))


def list_redemption_statuses(call):
    body = call.body or {}
    statuses = RewardsAndRedemptions(call.store, call.ids, call.now).statuses(call.principal.community_id, body.get("category"))
    items, pagination = paginate(statuses, body["page"], body["limit"])
    return _success("Redemption statuses fetched successfully", {
        "items": [status_json(s) for s in items], "pagination": pagination})


def get_redemption_status_by_id(call):
    status = RewardsAndRedemptions(call.store, call.ids, call.now).status(call.principal.community_id, call.body["statusId"])
    return _success("Redemption status fetched successfully", status_json(status))
