"""fabric's world: fixtures/fabric.yaml, then Faker promotions, coupons and redemptions.

`size` is the number of generated redemptions, spread over the fixture tenants; promotions and coupons scale with
it. The same seed always gives the same world.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox.core.clock import iso_millis

from .records import COUPONS, PROMOTIONS, REDEMPTIONS, TENANTS, TOKENS

_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 6, 30, tzinfo=timezone.utc)


def seed(store, fake, size: int, fixtures: dict, suffix: str = "") -> None:
    for token in fixtures["tokens"]:
        token["token"] += suffix  # a workspace's tokens differ from the default world's
    for collection, key, records in (
        (TENANTS, "id", fixtures["tenants"]),
        (TOKENS, "token", fixtures["tokens"]),
        (PROMOTIONS, "id", fixtures["promotions"]),
        (COUPONS, "id", fixtures["coupons"]),
        (REDEMPTIONS, "id", fixtures["redemptions"]),
    ):
        store.put_all(collection, key, records)
    _generate(store, fake, size, [t["id"] for t in fixtures["tenants"]])


def _object_id(fake) -> str:
    return f"{fake.random.getrandbits(96):024x}"


def _generate(store, fake, size: int, tenants: list[str]) -> None:
    coupons_by_tenant: dict[str, list[dict]] = {t: [] for t in tenants}
    for _ in range(max(1, size // 10)):
        tenant = fake.random_element(tenants)
        promotion = {"id": _object_id(fake), "tenantId": tenant,
                     "name": f"{fake.month_name()} {fake.random_element(['sale', 'promotion', 'deal'])}",
                     "additionalAttributes": [{"name": "eventName", "values": fake.catch_phrase()}]}
        store.put(PROMOTIONS, promotion["id"], promotion)
        for _ in range(3):
            # Generated coupons are multi-use, so generated redemptions never conflict.
            coupon = {"id": _object_id(fake), "tenantId": tenant, "promotionId": promotion["id"],
                      "code": fake.unique.bothify("????-####").upper(), "singleUse": False}
            store.put(COUPONS, coupon["id"], coupon)
            coupons_by_tenant[tenant].append(coupon)
    for _ in range(size):
        tenant = fake.random_element([t for t in tenants if coupons_by_tenant[t]])
        coupon = fake.random_element(coupons_by_tenant[tenant])
        created = fake.date_time_between_dates(_START, _END, tzinfo=timezone.utc)
        redemption = {
            "id": _object_id(fake), "tenantId": tenant, "channelId": fake.random_element(["12", "13"]),
            "couponId": coupon["id"], "promotionId": coupon["promotionId"],
            "orderId": fake.numerify("####-####-#####"), "couponCode": coupon["code"],
            "userId": _object_id(fake), "email": fake.email(), "storeId": fake.bothify("?-######").upper(),
            "redeemedAt": iso_millis(created), "status": fake.random_element(["ACTIVE", "ACTIVE", "INACTIVE"]),
            "additionalAttributes": [{"name": "brand", "values": fake.company()}],
            "createdAt": iso_millis(created), "updatedAt": iso_millis(created),
        }
        store.put(REDEMPTIONS, redemption["id"], redemption)


def credentials(store) -> list[dict]:
    return [
        {
            "vendor": "fabric",
            "tenant": token["tenantId"],
            "permissions": ["redemptions:read", "redemptions:write"],
            "purpose": token["purpose"],
            "headers": {"Authorization": f"Bearer {token['token']}", "x-fabric-tenant-id": token["tenantId"]},
        }
        for token in store.all(TOKENS)
    ]
