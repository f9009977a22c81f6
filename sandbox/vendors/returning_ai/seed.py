"""Returning.AI's world: the documents' records from fixtures/returning-ai.yaml, then Faker data.

`size` is the number of generated purchase histories; communities, members, products and vouchers scale
with it. Every purchase history is also a redemption order (same _id and order ID, same member): one world.
The same seed always gives the same world.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox.core.clock import iso_millis
from sandbox.core.fakes import Bulk
from sandbox.core.seeding import put_each, put_fixtures

from .records import API_KEYS, COMMUNITIES, PRODUCTS, PURCHASE_HISTORIES, STATUSES, TRANSACTIONS, USERS, VOUCHERS

_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 6, 30, tzinfo=timezone.utc)
_VOUCHERS_END = datetime(2027, 12, 31, tzinfo=timezone.utc)


def seed(store, fake, size: int, fixtures: dict, suffix: str = "") -> None:
    put_fixtures(store, fixtures, [
        (COMMUNITIES, "_id", "communities"),
        (USERS, "_id", "users"),
        (PRODUCTS, "_id", "products"),
        (VOUCHERS, "_id", "vouchers"),
        (API_KEYS, "key", "api_keys"),
        (STATUSES, "_id", "redemption_statuses"),
        (TRANSACTIONS, "_id", "redemption_transactions"),
    ], suffix, credentials={"api_keys": ("key",)})
    for order in fixtures["purchase_histories"]:
        _put_order(store, dict(order))
        delivered = next(s for s in store.find(STATUSES, communityID=order["communityID"]) if s["name"] == "Delivered")
        transaction = _transaction(order, coins=800, status=delivered)
        store.put(TRANSACTIONS, transaction["_id"], transaction)
    _generate(store, fake, size, suffix)


def _put_order(store, order: dict) -> None:
    """Orders keep their own copy of the voucher ("so historical order views stay stable")."""
    snapshot = order.pop("voucherSnapshot", None)
    voucher = store.get(VOUCHERS, order["voucherID"]) if order.get("voucherID") else None
    snapshot = snapshot or (voucher and {k: voucher[k] for k in ("_id", "code", "status", "expiryDate")})
    if snapshot:
        order.update(voucherCode=snapshot["code"], voucherExpiryDate=snapshot["expiryDate"], voucher=snapshot)
    store.put(PURCHASE_HISTORIES, order["_id"], order)


def _transaction(order: dict, coins: int, status: dict) -> dict:
    """The redemption order of a purchase history: same _id and order ID, same member."""
    return {
        "_id": order["_id"], "transactionId": order["purchaseID"], "communityID": order["communityID"],
        "userID": order["userID"], "product": {k: order["product"][k] for k in ("_id", "name")}, "coins": coins,
        "statusId": status["_id"], "coinsRefunded": status["category"] == "refunded",
        "createdAt": order["createdAt"], "updatedAt": order["createdAt"]}


# One of each category, plus Shipping as in seed 002, for every generated community.
_STATUS_SET = [("Pending", "incomplete", "#9E9E9E"), ("Shipping", "incomplete", "#3EA1FD"),
               ("Delivered", "completed", "#2E7D32"), ("Cancelled", "cancelled", "#C62828"),
               ("Refunded", "refunded", "#6A1B9A")]


def _generate(store, fake, size: int, suffix: str) -> None:
    bulk = Bulk(fake)
    communities, keys, statuses = [], [], {}
    for _ in range(max(1, size // 100)):
        community = {"_id": bulk.object_id(), "name": f"{bulk.word('company')} Rewards"}
        communities.append(community)
        keys.append({"key": f"rai_{bulk.random.getrandbits(128):032x}{suffix}", "communityID": community["_id"],
                     "permissions": ["purchase-history", "updateRedemptionTransactionStatus",
                                     "createRedemptionStatus", "readRedemptions"],
                     "purpose": f"Generated key of {community['name']}.", "generated": True})
        statuses[community["_id"]] = [
            {"_id": bulk.object_id(), "communityID": community["_id"], "name": name, "category": category,
             "color": color, "createdAt": iso_millis(_START)} for name, category, color in _STATUS_SET]
    community_ids = [c["_id"] for c in communities]
    members: dict[str, list[dict]] = {c: [] for c in community_ids}
    users = []
    # Every community gets a first member, so every generated order has a member of its own community.
    for community in community_ids + [bulk.pick(community_ids) for _ in range(size // 2)]:
        first, last = bulk.word("first_name"), bulk.word("last_name")
        user = {"_id": bulk.object_id(), "communityID": community, "name": f"{first} {last}",
                "email": bulk.email(first, last), "coins": bulk.integer(0, 5000)}
        users.append(user)
        members[community].append(user)
    products = []
    for _ in range(max(1, size // 5)):
        products.append({"_id": bulk.object_id(), "communityID": bulk.pick(community_ids),
                         "name": f"{bulk.word('color_name')} {bulk.pick(['Voucher', 'Gift Card', 'Coupon'])}",
                         "redemptionInstructions": bulk.word("sentence", nb_words=12)})
    vouchers, orders, transactions = [], [], []
    for _ in range(size):
        product = bulk.pick(products)
        voucher = {"_id": bulk.object_id(), "communityID": product["communityID"], "productID": product["_id"],
                   "code": bulk.unique("voucher", lambda: f"{bulk.letters(3)}-{bulk.digits(4)}-{bulk.letters(4)}"),
                   "status": bulk.pick(["active", "redeemed", "expired"]),
                   "expiryDate": iso_millis(bulk.moment(_END, _VOUCHERS_END))}
        vouchers.append(voucher)
        created = iso_millis(bulk.moment(_START, _END))
        snapshot = {k: voucher[k] for k in ("_id", "code", "status", "expiryDate")}
        order = {
            "_id": bulk.object_id(),
            "purchaseID": "ORD" + bulk.digits(18),
            "communityID": product["communityID"],
            "userID": bulk.pick(members[product["communityID"]])["_id"],
            "product": {k: product[k] for k in ("_id", "name", "redemptionInstructions")},
            "voucherID": voucher["_id"],
            "createdAt": created,
            "updatedAt": created,
            # Orders keep their own copy of the voucher, as _put_order does.
            "voucherCode": snapshot["code"], "voucherExpiryDate": snapshot["expiryDate"], "voucher": snapshot,
        }
        orders.append(order)
        transactions.append(_transaction(order, coins=50 * bulk.integer(1, 100),
                                         status=bulk.pick(statuses[product["communityID"]])))
    put_each(store, [
        (COMMUNITIES, "_id", communities), (API_KEYS, "key", keys),
        (STATUSES, "_id", [s for group in statuses.values() for s in group]), (USERS, "_id", users),
        (PRODUCTS, "_id", products), (VOUCHERS, "_id", vouchers), (PURCHASE_HISTORIES, "_id", orders),
        (TRANSACTIONS, "_id", transactions),
    ])


def credentials(store) -> list[dict]:
    demo = [k for k in store.all(API_KEYS) if not k.get("generated")]
    return [
        {
            "name": key["key"],
            "vendor": "returning-ai",
            "tenant": key["communityID"],
            "permissions": key["permissions"],
            "purpose": key["purpose"],
            "headers": {"Authorization": f"Bearer {key['key']}"},
        }
        for key in demo
    ]
