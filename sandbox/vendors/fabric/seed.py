"""fabric's world: fixtures/fabric.yaml, then Faker promotions, coupons and redemptions.

`size` is the number of generated redemptions, spread over the fixture tenants; promotions and coupons scale with
it. The same seed always gives the same world.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox.core.clock import iso_millis
from sandbox.core.fakes import Bulk
from sandbox.core.seeding import put_each, put_fixtures

from .records import COUPONS, PROMOTIONS, REDEMPTIONS, TENANTS, TOKENS

_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 6, 30, tzinfo=timezone.utc)


def seed(store, fake, size: int, fixtures: dict, suffix: str = "") -> None:
    put_fixtures(store, fixtures, [
        (TENANTS, "id", "tenants"),
        (TOKENS, "token", "tokens"),
        (PROMOTIONS, "id", "promotions"),
        (COUPONS, "id", "coupons"),
        (REDEMPTIONS, "id", "redemptions"),
    ], suffix, credentials={"tokens": ("token",)})
    _generate(store, fake, size, [t["id"] for t in fixtures["tenants"]])


def _generate(store, fake, size: int, tenants: list[str]) -> None:
    bulk = Bulk(fake)
    promotions, coupons, redemptions = [], [], []
    coupons_by_tenant: dict[str, list[dict]] = {t: [] for t in tenants}
    for _ in range(max(1, size // 10)):
        tenant = bulk.pick(tenants)
        promotion = {"id": bulk.object_id(), "tenantId": tenant,
                     "name": f"{bulk.word('month_name')} {bulk.pick(['sale', 'promotion', 'deal'])}",
                     "additionalAttributes": [{"name": "eventName", "values": bulk.word("catch_phrase")}]}
        promotions.append(promotion)
        for _ in range(3):
            # Generated coupons are multi-use, so generated redemptions never conflict.
            coupon = {"id": bulk.object_id(), "tenantId": tenant, "promotionId": promotion["id"],
                      "code": bulk.unique("coupon", lambda: f"{bulk.letters(4)}-{bulk.digits(4)}"), "singleUse": False}
            coupons.append(coupon)
            coupons_by_tenant[tenant].append(coupon)
    with_coupons = [t for t in tenants if coupons_by_tenant[t]]
    for _ in range(size):
        tenant = bulk.pick(with_coupons)
        coupon = bulk.pick(coupons_by_tenant[tenant])
        created = iso_millis(bulk.moment(_START, _END))
        first, last = bulk.word("first_name"), bulk.word("last_name")
        redemptions.append({
            "id": bulk.object_id(), "tenantId": tenant, "channelId": bulk.pick(["12", "13"]),
            "couponId": coupon["id"], "promotionId": coupon["promotionId"],
            "orderId": f"{bulk.digits(4)}-{bulk.digits(4)}-{bulk.digits(5)}", "couponCode": coupon["code"],
            "userId": bulk.object_id(), "email": bulk.email(first, last), "storeId": f"{bulk.letters(1)}-{bulk.digits(6)}",
            "redeemedAt": created, "status": bulk.pick(["ACTIVE", "ACTIVE", "INACTIVE"]),
            "additionalAttributes": [{"name": "brand", "values": bulk.word("company")}],
            "createdAt": created, "updatedAt": created,
        })
    put_each(store, [(PROMOTIONS, "id", promotions), (COUPONS, "id", coupons), (REDEMPTIONS, "id", redemptions)])


def credentials(store) -> list[dict]:
    return [
        {
            "name": token["token"],
            "vendor": "fabric",
            "tenant": token["tenantId"],
            "permissions": ["redemptions:read", "redemptions:write"],
            "purpose": token["purpose"],
            "headers": {"Authorization": f"Bearer {token['token']}", "x-fabric-tenant-id": token["tenantId"]},
        }
        for token in store.all(TOKENS)
    ]
