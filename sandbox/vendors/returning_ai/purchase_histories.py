"""Purchase histories (seeds 000, 001): state and rules, no HTTP. Handlers call these methods."""
from __future__ import annotations

import re
from dataclasses import dataclass

from datetime import datetime

from sandbox.core.clock import iso_millis
from sandbox.core.errors import CONFLICT, Problem
from sandbox.core.events import record_event
from sandbox.core.faults import VendorFault

from .errors import Conflict, NotFound, PublisherTimeout, UpstreamStoreUnreachable
from .records import PRODUCTS, PURCHASE_HISTORIES, VOUCHERS

_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
# The whitespace trimmed from values: the set the request schema's patterns allow around a value.
_TRIMMED = " \t\n\v\f\r"


@dataclass
class PurchaseHistoryChanges:
    """A validated PATCH body, trimmed ("Values are trimmed first")."""

    redemption_instructions: str | None = None
    voucher_code: str | None = None
    voucher_expiry: str | None = None  # ISO-8601 UTC midnight

    @classmethod
    def from_body(cls, body: dict) -> "PurchaseHistoryChanges":
        expiry = body.get("voucherExpiryDate")
        return cls(
            redemption_instructions=_trimmed(body.get("redemptionInstructions")),
            voucher_code=_trimmed(body.get("voucherCode")),
            voucher_expiry=_utc_midnight(expiry) if expiry is not None else None,
        )

    @property
    def touches_voucher(self) -> bool:
        return self.voucher_code is not None


def _trimmed(value: str | None) -> str | None:
    return value.strip(_TRIMMED) if value is not None else None


class PurchaseHistories:
    def __init__(self, store, settings, now: datetime):
        self.store = store
        self.settings = settings
        self.now = now  # the world's time of the request (core/clock.py)

    # -- purchase histories ------------------------------------------------------------------------------
    def find_purchase_history(self, community_id: str, purchase_history_id: str) -> dict:
        """By Mongo _id or by the human-readable order ID, only within the caller's community."""
        order = None
        if _OBJECT_ID.match(purchase_history_id):
            order = self.store.get(PURCHASE_HISTORIES, purchase_history_id.lower())
        if order is None:
            order = self.store.find_one(PURCHASE_HISTORIES, purchaseID=purchase_history_id)
        if order is None or order["communityID"] != community_id:
            raise NotFound(f"Purchase history {purchase_history_id} was not found in this community")
        return order

    def update_purchase_history(self, community_id: str, purchase_history_id: str,
                                changes: PurchaseHistoryChanges, fault: VendorFault | None) -> dict:
        # 404 and 409 are answered before anything is published (under the request's write lock: the uniqueness
        # check and the write cannot race).
        order, voucher = self._plan_update(community_id, purchase_history_id, changes)
        # "Publishes the update:purchase-history pub/sub event; the store service processes it and performs the DB
        # write" (seed 000): a failed hand-off means no write, unless the publisher's timeout came after the message
        # was delivered (an applied fault): then the write happens and the client gets the 502 all the same.
        delivered_anyway = self._publish(fault) if fault is not None else None
        now = iso_millis(self.now)
        if changes.redemption_instructions is not None:
            # Only the per-order snapshot changes; "The Product collection is not modified".
            order["product"]["redemptionInstructions"] = changes.redemption_instructions
        if voucher is not None:
            voucher.update(code=changes.voucher_code, expiryDate=changes.voucher_expiry, updatedAt=now)
            self.store.put(VOUCHERS, voucher["_id"], voucher)
            order["voucherCode"] = changes.voucher_code
            order["voucherExpiryDate"] = changes.voucher_expiry
            order["voucher"] = _voucher_snapshot(voucher)
        order["updatedAt"] = now
        self.store.put(PURCHASE_HISTORIES, order["_id"], order)
        record_event(self.store, "update:purchase-history", {
            "purchaseHistoryID": order["_id"],
            "purchaseID": order["purchaseID"],
            "communityID": community_id,
            "changes": _changed_fields(changes),
        }, self.now)
        if voucher is not None:
            record_event(self.store, "voucher:update", {
                "voucherID": voucher["_id"],
                "communityID": community_id,
                "productID": voucher["productID"],
                "code": voucher["code"],
                "expiryDate": voucher["expiryDate"],
            }, self.now)
        if delivered_anyway is not None:
            raise delivered_anyway
        return order

    def _plan_update(self, community_id, purchase_history_id, changes) -> tuple[dict, dict | None]:
        order = self.find_purchase_history(community_id, purchase_history_id)
        product_id = order["product"]["_id"]
        if changes.redemption_instructions is not None:
            # The product is the snapshot source (seed 000: "Snapshots the product into PurchaseHistory.product").
            product = self.store.get(PRODUCTS, product_id)
            if product is None or product["communityID"] != community_id:
                raise NotFound(f"Product {product_id} of purchase history {order['purchaseID']} "
                               "no longer exists in this community")
        if not changes.touches_voucher:
            return order, None
        voucher = self.store.get(VOUCHERS, order["voucherID"]) if order.get("voucherID") else None
        if voucher is None or voucher["communityID"] != community_id:
            raise NotFound(f"Purchase history {order['purchaseID']} has no voucher in this community to update")
        for other in self.store.find(VOUCHERS, productID=voucher["productID"]):
            if (other["_id"] != voucher["_id"] and other["communityID"] == community_id
                    and other["code"] == changes.voucher_code):
                message = (f"voucherCode {changes.voucher_code} already belongs to another voucher of this "
                           "product; choose another code")
                raise Conflict(message, [Problem("body", "voucherCode", message, kind=CONFLICT)])
        return order, voucher

    def _publish(self, fault: VendorFault) -> PublisherTimeout | None:
        """Raises the hand-off's failure; returns it instead when it comes after the message was delivered."""
        struck = fault.strike()
        if struck == "store-unavailable":
            raise UpstreamStoreUnreachable()
        if struck == "publisher-timeout":
            fault.hold(round(self.settings.publisher_timeout * 1000))  # the client waits out the timeout
            if fault.applied:
                return PublisherTimeout()
            raise PublisherTimeout()
        return None


def _utc_midnight(ddmmyyyy: str) -> str:
    """31/12/2026 -> 2026-12-31T00:00:00.000Z. The spec's pattern admits only real DD/MM/YYYY dates (leap years
    included), so this converts; it does not re-validate."""
    day, month, year = ddmmyyyy.strip(_TRIMMED).split("/")
    return f"{year}-{month}-{day}T00:00:00.000Z"


def _voucher_snapshot(voucher: dict) -> dict:
    return {k: voucher[k] for k in ("_id", "code", "status", "expiryDate")}


def voucher_status(voucher: dict, now: datetime) -> str:
    """The documents say a voucher has an expiryDate and a status, not when the one changes the other: the
    sandbox's reading (specs/returning-ai.yaml, Voucher.status) is that an active voucher reads expired from the
    moment its world's clock reaches its expiryDate. The stored status is left as it is (an export shows it), so
    moving the clock or the expiry date back and forth always reads true; a redeemed voucher stays redeemed."""
    if voucher["status"] == "active" and voucher["expiryDate"] <= iso_millis(now):
        return "expired"
    return voucher["status"]


def _changed_fields(changes: PurchaseHistoryChanges) -> dict:
    fields = {
        "redemptionInstructions": changes.redemption_instructions,
        "voucherCode": changes.voucher_code,
        "voucherExpiryDate": changes.voucher_expiry,
    }
    return {k: v for k, v in fields.items() if v is not None}


def purchase_history_json(order: dict, now: datetime) -> dict:
    """The document as the API returns it (seed 001), plus seed 000's `orderID` name for the same ID. Its voucher
    reads `expired` once the world's clock (`now`) has passed its expiryDate (voucher_status)."""
    data = {
        "_id": order["_id"],
        "purchaseID": order["purchaseID"],
        "orderID": order["purchaseID"],
        "communityID": order["communityID"],
        "userID": order["userID"],
    }
    if order.get("voucherCode") is not None:
        data["voucherCode"] = order["voucherCode"]
        data["voucherExpiryDate"] = order["voucherExpiryDate"]
    data["product"] = order["product"]
    if order.get("voucher") is not None:
        data["voucher"] = {**order["voucher"], "status": voucher_status(order["voucher"], now)}
    data["createdAt"] = order["createdAt"]
    data["updatedAt"] = order["updatedAt"]
    return data
