"""Offers redemptions (seed 003 and fabric's v3 reference): state and rules, no HTTP.

Rules the seed leaves open, decided here and stated in specs/fabric.yaml:
- PUT is a full replacement: optional fields left out are cleared and `status` defaults to ACTIVE.
- An unknown promotion is a 404 (it fills promotionName and promotionAdditionalAttributes).
- A single-use coupon may have one ACTIVE redemption; a second on another order is a 409.
"""
from __future__ import annotations

from datetime import datetime

from sandbox.core.clock import iso_millis
from sandbox.core.errors import NOT_FOUND, Problem
from sandbox.core.events import record_event

from .errors import Conflict, NotFound
from .records import COUPONS, PROMOTIONS, REDEMPTIONS

MUTABLE_FIELDS = ("promotionId", "orderId", "couponCode", "userId", "email", "storeId", "redeemedAt",
                  "additionalAttributes", "status")
FILTERS = ("promotionId", "couponCode", "userId", "orderId", "status")


class Redemptions:
    def __init__(self, store, ids, tenant_id: str, now: datetime):
        self.store = store
        self.ids = ids
        self.tenant_id = tenant_id
        self.now = now  # the world's time of the request (core/clock.py)

    def get(self, redemption_id: str) -> dict:
        redemption = self.store.get(REDEMPTIONS, redemption_id)
        if redemption is None or redemption["tenantId"] != self.tenant_id:
            raise NotFound(f"Specified redemption {redemption_id} doesn't exist.")
        return redemption

    def list(self, size: int, start_cursor: str | None, filters: dict) -> tuple[list[dict], str | None]:
        offset = _offset(start_cursor)
        found = [r for r in self.store.find(REDEMPTIONS, tenantId=self.tenant_id)
                 if all(r.get(k) == v for k, v in filters.items())]
        page = found[offset:offset + size]
        more = offset + size < len(found)
        return page, _cursor(offset + size) if more else None

    def create(self, fields: dict, channel_id: str, coupon_id: str | None = None) -> dict:
        now = iso_millis(self.now)
        redemption = {"id": self.ids.object_id(), "tenantId": self.tenant_id, "channelId": channel_id,
                      "couponId": coupon_id, "createdAt": now, "updatedAt": now, **_replacement(fields)}
        self._check(redemption)
        self.store.put(REDEMPTIONS, redemption["id"], redemption)
        record_event(self.store, "fabric:redemption.created", _event(redemption), self.now)
        return redemption

    def replace(self, redemption_id: str, fields: dict, channel_id: str) -> dict:
        redemption = self.get(redemption_id)
        redemption.update(_replacement(fields), channelId=channel_id, updatedAt=iso_millis(self.now))
        self._check(redemption)
        self.store.put(REDEMPTIONS, redemption["id"], redemption)
        record_event(self.store, "fabric:redemption.updated", _event(redemption), self.now)
        return redemption

    def delete(self, redemption_id: str) -> None:
        redemption = self.get(redemption_id)
        self.store.delete(REDEMPTIONS, redemption_id)
        record_event(self.store, "fabric:redemption.deleted", _event(redemption), self.now)

    def coupon(self, coupon_id: str, code: str | None = None) -> dict:
        """The tenant's coupon; with `code`, the path and the body name it together: a code that is not this
        coupon's is not found."""
        coupon = self.store.get(COUPONS, coupon_id)
        if coupon is None or coupon["tenantId"] != self.tenant_id:
            raise NotFound(f"Specified coupon {coupon_id} doesn't exist.")
        if code is not None and code != coupon["code"]:
            raise NotFound(f"Specified coupon code {code} doesn't exist for coupon {coupon['id']}.")
        return coupon

    def promotion(self, promotion_id: str) -> dict:
        promotion = self.store.get(PROMOTIONS, promotion_id)
        if promotion is None or promotion["tenantId"] != self.tenant_id:
            raise NotFound(f"Specified promotion {promotion_id} doesn't exist.",
                           [Problem("body", "promotionId", "no such promotion in this tenant", kind=NOT_FOUND)])
        return promotion

    def _check(self, redemption: dict) -> None:
        self.promotion(redemption["promotionId"])
        if redemption["status"] != "ACTIVE" or not redemption.get("couponCode"):
            return
        for coupon in self.store.find(COUPONS, code=redemption["couponCode"]):
            if coupon["tenantId"] != self.tenant_id or not coupon["singleUse"]:
                continue
            for other in self.store.find(REDEMPTIONS, couponCode=coupon["code"]):
                if (other["tenantId"] == self.tenant_id and other["id"] != redemption["id"]
                        and other["status"] == "ACTIVE" and other["orderId"] != redemption["orderId"]):
                    raise Conflict(f"Coupon {coupon['code']} is single-use and already redeemed on order "
                                   f"{other['orderId']}; deactivate that redemption first")

    def to_json(self, redemption: dict) -> dict:
        """Seed 003's response: the stored fields plus what the promotion fills in."""
        promotion = self.store.get(PROMOTIONS, redemption["promotionId"]) or {}
        body = {k: redemption[k] for k in ("id", "promotionId", "orderId", "createdAt", "updatedAt")}
        for key in ("couponCode", "userId", "email", "storeId", "redeemedAt", "status", "additionalAttributes"):
            value = redemption.get(key)
            # storeId and redeemedAt are plain strings in the response: absent rather than null.
            if value is not None or key in ("userId", "email"):
                body[key] = value
        body["promotionAdditionalAttributes"] = promotion.get("additionalAttributes", [])
        body["promotionName"] = promotion.get("name", "")
        return body


def _replacement(fields: dict) -> dict:
    """PUT semantics: every mutable field takes the request's value; left out means cleared."""
    replaced = {key: fields.get(key) for key in MUTABLE_FIELDS}
    replaced["status"] = fields.get("status") or "ACTIVE"
    replaced["additionalAttributes"] = fields.get("additionalAttributes") or []
    return replaced


def _cursor(offset: int) -> str:
    """The offset of the next page in base 36; the spec's pattern admits exactly these tokens."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    token = ""
    while True:
        offset, rest = divmod(offset, 36)
        token = digits[rest] + token
        if not offset:
            return token


def _offset(cursor: str | None) -> int:
    return int(cursor, 36) if cursor else 0


def _event(redemption: dict) -> dict:
    return {k: redemption.get(k) for k in ("id", "tenantId", "orderId", "couponCode", "status")}
