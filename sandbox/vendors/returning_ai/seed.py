"""Returning.AI's world: the documents' records from fixtures/returning-ai.yaml, then Faker data.

`size` is the number of generated purchase histories; communities, members, products and vouchers scale
with it. Every purchase history is also a redemption order (same _id and order ID, same member): one world.
The same seed always gives the same world.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox.core.clock import iso_millis

from .records import API_KEYS, COMMUNITIES, PRODUCTS, PURCHASE_HISTORIES, STATUSES, TRANSACTIONS, USERS, VOUCHERS

_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 6, 30, tzinfo=timezone.utc)


def seed(store, fake, size: int, fixtures: dict, suffix: str = "") -> None:
    for api_key in fixtures["api_keys"]:
        api_key["key"] += suffix  # a workspace's keys differ from the default world's
    for collection, key, records in (
        (COMMUNITIES, "_id", fixtures["communities"]),
        (USERS, "_id", fixtures["users"]),
        (PRODUCTS, "_id", fixtures["products"]),
        (VOUCHERS, "_id", fixtures["vouchers"]),
        (API_KEYS, "key", fixtures["api_keys"]),
        (STATUSES, "_id", fixtures["redemption_statuses"]),
        (TRANSACTIONS, "_id", fixtures["redemption_transactions"]),
    ):
        store.put_all(collection, key, records)
    for order in fixtures["purchase_histories"]:
        _put_order(store, dict(order))
        delivered = next(s for s in store.find(STATUSES, communityID=order["communityID"]) if s["name"] == "Delivered")
        _put_transaction(store, order, coins=800, status=delivered)
    _generate(store, fake, size, suffix)


def _put_order(store, order: dict) -> None:
    """Orders keep their own copy of the voucher ("so historical order views stay stable")."""
    snapshot = order.pop("voucherSnapshot", None)
    voucher = store.get(VOUCHERS, order["voucherID"]) if order.get("voucherID") else None
    snapshot = snapshot or (voucher and {k: voucher[k] for k in ("_id", "code", "status", "expiryDate")})
    if snapshot:
        order.update(voucherCode=snapshot["code"], voucherExpiryDate=snapshot["expiryDate"], voucher=snapshot)
    store.put(PURCHASE_HISTORIES, order["_id"], order)


def _put_transaction(store, order: dict, coins: int, status: dict) -> None:
    store.put(TRANSACTIONS, order["_id"], {
        "_id": order["_id"], "transactionId": order["purchaseID"], "communityID": order["communityID"],
        "userID": order["userID"], "product": {k: order["product"][k] for k in ("_id", "name")}, "coins": coins,
        "statusId": status["_id"], "coinsRefunded": status["category"] == "refunded",
        "createdAt": order["createdAt"], "updatedAt": order["createdAt"]})


# One of each category, plus Shipping as in seed 002, for every generated community.
_STATUS_SET = [("Pending", "incomplete", "#9E9E9E"), ("Shipping", "incomplete", "#3EA1FD"),
               ("Delivered", "completed", "#2E7D32"), ("Cancelled", "cancelled", "#C62828"),
               ("Refunded", "refunded", "#6A1B9A")]


def _object_id(fake) -> str:
    # Faker's own seeded generator; hexify() is a hundred times slower for the same result.
    return f"{fake.random.getrandbits(96):024x}"


def _moment(fake) -> str:
    return iso_millis(fake.date_time_between_dates(_START, _END, tzinfo=timezone.utc))


def _generate(store, fake, size: int, suffix: str) -> None:
    communities, statuses = [], {}
    for _ in range(max(1, size // 100)):
        community = {"_id": _object_id(fake), "name": f"{fake.company()} Rewards"}
        store.put(COMMUNITIES, community["_id"], community)
        key = {"key": f"rai_{fake.hexify('^' * 32)}{suffix}", "communityID": community["_id"],
               "permissions": ["purchase-history", "updateRedemptionTransactionStatus", "createRedemptionStatus",
                               "readRedemptions"],
               "purpose": f"Generated key of {community['name']}.", "generated": True}
        store.put(API_KEYS, key["key"], key)
        communities.append(community["_id"])
        statuses[community["_id"]] = []
        for name, category, color in _STATUS_SET:
            status = {"_id": _object_id(fake), "communityID": community["_id"], "name": name, "category": category,
                      "color": color, "createdAt": iso_millis(_START)}
            store.put(STATUSES, status["_id"], status)
            statuses[community["_id"]].append(status)
    members: dict[str, list[dict]] = {c: [] for c in communities}
    products = []
    # Every community gets a first member, so every generated order has a member of its own community.
    for community in communities + [fake.random_element(communities) for _ in range(size // 2)]:
        user = {"_id": _object_id(fake), "communityID": community, "name": fake.name(),
                "email": fake.unique.email(), "coins": fake.random_int(0, 5000)}
        store.put(USERS, user["_id"], user)
        members[user["communityID"]].append(user)
    for _ in range(max(1, size // 5)):
        product = {"_id": _object_id(fake), "communityID": fake.random_element(communities),
                   "name": f"{fake.color_name()} {fake.random_element(['Voucher', 'Gift Card', 'Coupon'])}",
                   "redemptionInstructions": fake.sentence(nb_words=12)}
        store.put(PRODUCTS, product["_id"], product)
        products.append(product)
    for _ in range(size):
        product = fake.random_element(products)
        voucher = {"_id": _object_id(fake), "communityID": product["communityID"], "productID": product["_id"],
                   "code": fake.unique.bothify("???-####-????").upper(),
                   "status": fake.random_element(["active", "redeemed", "expired"]),
                   "expiryDate": iso_millis(fake.date_time_between_dates(_END, datetime(2027, 12, 31,
                                                                                       tzinfo=timezone.utc)))}
        store.put(VOUCHERS, voucher["_id"], voucher)
        created = _moment(fake)
        order = {
            "_id": _object_id(fake),
            "purchaseID": "ORD" + fake.numerify("#" * 18),
            "communityID": product["communityID"],
            "userID": fake.random_element(members[product["communityID"]])["_id"],
            "product": {k: product[k] for k in ("_id", "name", "redemptionInstructions")},
            "voucherID": voucher["_id"],
            "createdAt": created,
            "updatedAt": created,
        }
        _put_order(store, order)
        _put_transaction(store, order, coins=fake.random_int(50, 5000, step=50),
                         status=fake.random_element(statuses[product["communityID"]]))


def credentials(store) -> list[dict]:
    demo = [k for k in store.all(API_KEYS) if not k.get("generated")]
    return [
        {
            "vendor": "returning-ai",
            "tenant": key["communityID"],
            "permissions": key["permissions"],
            "purpose": key["purpose"],
            "headers": {"Authorization": f"Bearer {key['key']}"},
        }
        for key in demo
    ]
