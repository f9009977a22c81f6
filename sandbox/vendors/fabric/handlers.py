"""HTTP handlers, one per operationId of specs/fabric.yaml. They translate; the backend decides."""
from .errors import FabricError
from .redemptions import FILTERS, Redemptions


def _redemptions(call) -> Redemptions:
    return Redemptions(call.store, call.ids, call.principal.tenant_id, call.now)


def _channel(call) -> str:
    return call.params["x-fabric-channel-id"]


def create_redemption(call):
    redemptions = _redemptions(call)
    return 201, redemptions.to_json(redemptions.create(call.body, _channel(call)))


def list_redemptions(call):
    redemptions = _redemptions(call)
    filters = {k: call.params[k] for k in FILTERS if k in call.params}
    size = call.params["size"]
    page, next_cursor = redemptions.list(size, call.params.get("startCursor"), filters)
    query = {"size": size}
    if next_cursor:
        query["nextCursor"] = next_cursor
    return {"query": query, "data": [redemptions.to_json(r) for r in page]}


def get_redemption(call):
    redemptions = _redemptions(call)
    return redemptions.to_json(redemptions.get(call.params["redemptionId"]))


def update_redemption(call):
    redemptions = _redemptions(call)
    return redemptions.to_json(redemptions.replace(call.params["redemptionId"], call.body, _channel(call)))


def batch_update_redemptions(call):
    redemptions = _redemptions(call)
    data, errors = [], []
    for item in call.body["data"]:
        try:
            data.append(redemptions.to_json(redemptions.replace(item["id"], item, _channel(call))))
        except FabricError as error:  # one item's 404 or 409 must not fail the others
            errors.append({"id": item["id"], **error.body(call.context)})
    return {"data": data, "errors": errors}


def delete_redemption(call):
    redemption_id = call.params["redemptionId"]
    _redemptions(call).delete(redemption_id)
    return {"id": redemption_id, "isDeleted": True}


def create_redemption_deprecated(call):
    redemptions = _redemptions(call)
    body = call.body
    coupon = redemptions.coupon(call.params["couponId"], body["couponCode"])
    fields = {"promotionId": coupon["promotionId"], "orderId": body["orderId"], "couponCode": coupon["code"],
              "userId": body.get("userId"), "email": body.get("email")}
    redemption = redemptions.create(fields, _channel(call), coupon_id=coupon["id"])
    return 201, {"id": redemption["id"], "couponId": coupon["id"], "couponCode": coupon["code"],
                 "orderId": redemption["orderId"], "userId": redemption["userId"], "email": redemption["email"],
                 "createdAt": redemption["createdAt"], "updatedAt": redemption["updatedAt"]}
