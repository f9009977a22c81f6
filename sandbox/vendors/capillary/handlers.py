"""HTTP handlers, one per operationId of specs/capillary.yaml. They translate; the backend decides."""
from .points import Points, issue_oauth_token, redemption_json, v11_redemption_json


def _points(call) -> Points:
    return Points(call.store, call.ids, call.principal, call.now)


def _v11_success() -> dict:
    return {"success": True, "code": 200, "message": "Success"}


def _customer_ids(customer: dict) -> dict:
    return {"mobile": customer["mobile"], "email": customer["email"], "external_id": customer["externalId"]}


def update_redeem_points(call):
    return redemption_json(_points(call).update(call.body, call.fault))


def redeem_points(call):
    return redemption_json(_points(call).redeem(call.params["id"], call.body))


def reverse_redemption(call):
    redemption, customer, reversal = _points(call).reverse(call.body)
    points = reversal["points"]
    return {
        "orgId": call.principal.org_id,
        "identifier": call.body["identifier"],
        "customerId": customer["customerId"],
        "redemptionId": redemption["redemptionId"],
        "reversalId": reversal["reversalId"],
        "pointsToBeReversed": call.body["pointsToBeReversed"],
        "pointsReversed": points,
        # The sandbox's points do not expire: everything reversed is available again.
        "pointsReversedDetails": {"available": points, "expired": 0},
        "warnings": [],
        "errors": [],
    }


def get_customer_redemptions(call):
    points = _points(call)
    customer = points.customer_by_query(call.params)
    offset, limit = call.params["points_offset"], call.params["points_limit"]
    history = points.history(customer) if call.params["type"] != "coupons" else []
    return {"response": {"status": _v11_success(), "customer": {
        "id": customer["customerId"], **_customer_ids(customer),
        "redemptions": {
            "points_count": len(history),
            "points": {"point": [v11_redemption_json(r) for r in history[offset:offset + limit]]},
            "coupons": {"coupon": []},  # coupon redemptions are not modelled
        }}}}


def is_points_redeemable(call):
    customer = _points(call).customer_by_query(call.params)
    asked = call.params["points"]
    redeemable = asked <= customer["points"]
    item_status = ({"success": True, "code": 800, "message": "Points can be redeemed"} if redeemable else
                   {"success": False, "code": 818, "message": "Current points are less than points requested for redemption."})
    return {"response": {"status": _v11_success(), "points": {"redeemable": {
        **_customer_ids(customer), "points": asked, "is_redeemable": redeemable,
        "points_balance": customer["points"], "item_status": item_status}}}}


def generate_o_auth_token(call):
    ttl = call.settings.oauth_token_ttl
    token = issue_oauth_token(call.store, call.ids, call.body["key"], call.body["secret"], ttl, call.now,
                              call.world.suffix)
    return {"data": {"accessToken": token, "ttlSeconds": ttl}, "errors": None}
