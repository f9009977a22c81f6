"""Returning.AI's world: the documents' records from fixtures/returning-ai.yaml, then Faker data.

`size` is the number of generated purchase histories; communities, members, products and vouchers scale
with it. The same seed always gives the same world.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox.core.clock import iso_millis

from .auth import API_KEYS
from .models import COMMUNITIES, PRODUCTS, PURCHASE_HISTORIES, USERS, VOUCHERS

_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 6, 30, tzinfo=timezone.utc)


def seed(store, fake, size: int, fixtures: dict) -> None:
    for collection, key, records in (
        (COMMUNITIES, "_id", fixtures["communities"]),
        (USERS, "_id", fixtures["users"]),
        (PRODUCTS, "_id", fixtures["products"]),
        (VOUCHERS, "_id", fixtures["vouchers"]),
        (API_KEYS, "key", fixtures["api_keys"]),
    ):
        for record in records:
            store.put(collection, record[key], record)
    for order in fixtures["purchase_histories"]:
        _put_order(store, dict(order))
    _generate(store, fake, size)


def _put_order(store, order: dict) -> None:
    """Orders keep their own copy of the voucher ("so historical order views stay stable")."""
    snapshot = order.pop("voucherSnapshot", None)
    voucher = store.get(VOUCHERS, order["voucherID"]) if order.get("voucherID") else None
    snapshot = snapshot or (voucher and {k: voucher[k] for k in ("_id", "code", "status", "expiryDate")})
    if snapshot:
        order.update(voucherCode=snapshot["code"], voucherExpiryDate=snapshot["expiryDate"], voucher=snapshot)
    store.put(PURCHASE_HISTORIES, order["_id"], order)


def _object_id(fake) -> str:
    # Faker's own seeded generator; hexify() is a hundred times slower for the same result.
    return f"{fake.random.getrandbits(96):024x}"


def _moment(fake) -> str:
    return iso_millis(fake.date_time_between_dates(_START, _END, tzinfo=timezone.utc))


def _generate(store, fake, size: int) -> None:
    communities = []
    for _ in range(max(1, size // 100)):
        community = {"_id": _object_id(fake), "name": f"{fake.company()} Rewards"}
        store.put(COMMUNITIES, community["_id"], community)
        key = {"key": f"rai_{fake.hexify('^' * 32)}", "communityID": community["_id"],
               "permissions": ["purchase-history"], "purpose": f"Generated key of {community['name']}.",
               "generated": True}
        store.put(API_KEYS, key["key"], key)
        communities.append(community["_id"])
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
        _put_order(store, {
            "_id": _object_id(fake),
            "purchaseID": "ORD" + fake.numerify("#" * 18),
            "communityID": product["communityID"],
            "userID": fake.random_element(members[product["communityID"]])["_id"],
            "product": {k: product[k] for k in ("_id", "name", "redemptionInstructions")},
            "voucherID": voucher["_id"],
            "createdAt": created,
            "updatedAt": created,
        })


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
