"""Capillary's world: fixtures/capillary.yaml, then Faker customers with balances and past redemptions.

`size` is the number of generated customers, spread over the fixture orgs, each with up to three redemptions.
The same seed always gives the same world.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone

from sandbox.core.fakes import Bulk
from sandbox.core.seeding import put_each, put_fixtures

from .records import CUSTOMERS, OAUTH_CLIENTS, ORGS, REDEMPTIONS, TILLS

_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 6, 30, tzinfo=timezone.utc)


def seed(store, fake, size: int, fixtures: dict, suffix: str = "") -> None:
    put_fixtures(store, fixtures, [
        (ORGS, "orgId", "orgs"),
        (TILLS, "username", "tills"),
        (OAUTH_CLIENTS, "key", "oauth_clients"),
        (CUSTOMERS, "customerId", "customers"),
        (REDEMPTIONS, "redemptionId", "redemptions"),
    ], suffix, credentials={"tills": ("username",), "oauth_clients": ("key", "username")})
    _generate(store, fake, size, fixtures)


_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz"


def _generate(store, fake, size: int, fixtures: dict) -> None:
    bulk = Bulk(fake)
    orgs = fixtures["orgs"]
    tills = {t["orgId"]: t for t in fixtures["tills"]}
    customers, redemptions = [], []
    for n in range(size):
        org = bulk.pick(orgs)
        first, last = bulk.word("first_name"), bulk.word("last_name")
        customer = {"customerId": 300_000_000 + n, "orgId": org["orgId"], "firstname": first, "lastname": last,
                    "mobile": "91" + bulk.digits(10), "email": bulk.email(first, last),
                    "externalId": f"EXT-{bulk.digits(5)}-{bulk.letters(2)}", "cardnumber": f"CARD-{bulk.digits(8)}",
                    "points": float(bulk.integer(0, 20000))}
        for _ in range(bulk.integer(0, 3)):
            moment = bulk.moment(_START, _END)
            points = float(bulk.integer(10, 500))
            till = tills[org["orgId"]]
            redemptions.append({
                "redemptionId": bulk.unique("redemptionId", lambda: bulk.letters(6, _CODE_LETTERS)),
                "id": bulk.unique("id", lambda: bulk.integer(30_000_000, 99_999_999)), "orgId": org["orgId"],
                "customerId": customer["customerId"], "programId": org["programId"], "pointsRedeemed": points,
                "pointsReversed": 0.0, "billId": bulk.integer(1, 10**9), "billNumber": f"BILL-{bulk.digits(4)}",
                "validationCode": "", "notes": bulk.word("sentence", nb_words=5),
                "redemptionTime": int(moment.timestamp() * 1000), "pointsRedemptionTime": int(moment.timestamp() * 1000),
                "tillId": till["tillId"], "tillName": till["tillName"],
                "pointDeductionList": [{"programId": org["programId"], "pointsDeducted": points}],
                "redemptionPurpose": bulk.pick(["gift", "discount", "voucher", ""]),
                "redemptionDate": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "externalReferenceNumber": bulk.unique("reference", lambda: f"TXN-{bulk.digits(7)}"),
                "customFields": {},
            })
        customers.append(customer)
    put_each(store, [(REDEMPTIONS, "redemptionId", redemptions), (CUSTOMERS, "customerId", customers)])


def credentials(store) -> list[dict]:
    tills = [
        {"name": t["username"], "vendor": "capillary", "tenant": str(t["orgId"]), "permissions": ["points"],
         "purpose": t["purpose"],
         "headers": {"Authorization": "Basic " + base64.b64encode(
             f"{t['username']}:{t['passwordMd5']}".encode()).decode()}}
        for t in store.all(TILLS)
    ]
    # A client acts as its till: one whose till is gone (a world imported without it) can get no token, so none.
    clients = [
        {"name": c["key"], "vendor": "capillary", "tenant": str(till["orgId"]), "permissions": ["points"],
         "purpose": c["purpose"] + f" Body: {{\"key\": \"{c['key']}\", \"secret\": \"{c['secret']}\"}}.",
         "headers": {"X-CAP-API-OAUTH-TOKEN": "<accessToken from POST /capillary/v3/oauth/token/generate>"}}
        for c in store.all(OAUTH_CLIENTS) for till in [store.get(TILLS, c["username"])] if till is not None
    ]
    return tills + clients
