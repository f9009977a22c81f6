"""A community member buys an item in the store: what starts a Returning.AI integration (seed 000's navigation,
Events > Outgoing webhooks > Purchased Store Item; seed 002's PurchasedStoreItemEvent schema). The documents do not
publish the purchase's effects or the event's payload: what is made here is the sandbox's reading, from the records
the documents do show (a purchase history with its product snapshot and voucher, a redemption order in an
incomplete status, the member's coins), so that the documents' calls (PATCH, status PUT, refund) work on it.
State and rules only; the control API's simulate handler calls `purchase`."""
from __future__ import annotations

from datetime import datetime, timedelta

from sandbox.core.clock import iso_millis
from sandbox.core.events import record_event

from .records import PRODUCTS, PURCHASE_HISTORIES, STATUSES, TRANSACTIONS, USERS, VOUCHERS

EVENT = "returning-ai:purchased-store-item"
DEFAULT_COINS = 250  # the sandbox's price of an item: the documents publish none
VOUCHER_LIFE = timedelta(days=365)


class NotEnoughCoins(Exception):
    pass


class NotFound(Exception):
    pass


class StorePurchases:
    def __init__(self, store, ids, now: datetime):
        self.store = store
        self.ids = ids
        self.now = now

    def purchase(self, user: str | None = None, product_id: str | None = None, coins: int = DEFAULT_COINS) -> dict:
        """The purchase history made; NotFound or NotEnoughCoins (nothing written) otherwise. `user` is a user's
        _id or email; without it and `product_id`, the first member (in stored order) of the first product's
        community who can pay: the same choice in every run of a seed."""
        product = self._product(product_id)
        member = self._member(user, product["communityID"], coins)
        status = self._initial_status(product["communityID"])
        now = iso_millis(self.now)
        order_id = self.ids.object_id()
        purchase_id = "ORD" + "".join(str(self.ids.number(0, 9)) for _ in range(18))
        voucher = {"_id": self.ids.object_id(), "communityID": product["communityID"], "productID": product["_id"],
                   "code": f"RAI-{self.ids.token(4).upper()}-{self.ids.token(4).upper()}", "status": "active",
                   "expiryDate": iso_millis(self.now + VOUCHER_LIFE), "updatedAt": now}
        snapshot = {k: voucher[k] for k in ("_id", "code", "status", "expiryDate")}
        order = {"_id": order_id, "purchaseID": purchase_id, "communityID": product["communityID"],
                 "userID": member["_id"], "product": {k: product[k] for k in ("_id", "name", "redemptionInstructions")},
                 "voucherID": voucher["_id"], "voucherCode": voucher["code"], "voucherExpiryDate": voucher["expiryDate"],
                 "voucher": snapshot, "createdAt": now, "updatedAt": now}
        transaction = {"_id": order_id, "transactionId": purchase_id, "communityID": product["communityID"],
                       "userID": member["_id"], "product": {k: product[k] for k in ("_id", "name")}, "coins": coins,
                       "statusId": status["_id"], "coinsRefunded": False, "createdAt": now, "updatedAt": now}
        member["coins"] -= coins
        self.store.put(USERS, member["_id"], member)
        self.store.put(VOUCHERS, voucher["_id"], voucher)
        self.store.put(PURCHASE_HISTORIES, order_id, order)
        self.store.put(TRANSACTIONS, order_id, transaction)
        record_event(self.store, EVENT, {
            "orderID": purchase_id, "purchaseHistoryID": order_id, "communityID": product["communityID"],
            "userID": member["_id"], "product": {k: product[k] for k in ("_id", "name")}, "coins": coins,
            "balance": member["coins"], "voucher": snapshot, "statusId": status["_id"], "purchasedAt": now,
        }, self.now)
        return order

    def _product(self, product_id: str | None) -> dict:
        if product_id is None:
            products = self.store.all(PRODUCTS)
            if not products:
                raise NotFound("This world has no store items to buy (rai_products is empty)")
            return products[0]
        product = self.store.get(PRODUCTS, product_id)
        if product is None:
            raise NotFound(f"No store item {product_id}; GET /_sandbox/state/rai_products lists them")
        return product

    def _member(self, user: str | None, community_id: str, coins: int) -> dict:
        if user is None:
            members = [u for u in self.store.all(USERS) if u["communityID"] == community_id]
            payers = [m for m in members if m["coins"] >= coins]
            if not payers:
                raise NotEnoughCoins(f"No member of community {community_id} has {coins} coins to spend")
            return payers[0]
        member = self.store.get(USERS, user) or self.store.find_one(USERS, email=user)
        if member is None:
            raise NotFound(f"No member {user} (an _id or an email; GET /_sandbox/state/rai_users lists them)")
        if member["communityID"] != community_id:
            raise NotFound(f"Member {user} is not in the store item's community {community_id}")
        if member["coins"] < coins:
            raise NotEnoughCoins(f"Member {user} has {member['coins']} coins, not the {coins} this item costs")
        return member

    def _initial_status(self, community_id: str) -> dict:
        statuses = [s for s in self.store.find(STATUSES, communityID=community_id) if s["category"] == "incomplete"]
        if not statuses:
            raise NotFound(f"Community {community_id} has no incomplete status to start an order in")
        return next((s for s in statuses if s["name"] == "Pending"), statuses[0])
