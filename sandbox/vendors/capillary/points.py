"""Points redemptions (seed 004 and Capillary's sibling points APIs): a ledger per customer. No HTTP here.

Redeeming deducts from the customer's balance (never below zero: 818); reversing returns points, never more than
were redeemed and not yet reversed (810), never again once fully reversed (3802). "Update redeem points" changes
only bill id, bill number, purpose and custom fields of a redemption of the identified customer.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sandbox.core.clock import epoch_ms
from sandbox.core.events import record_event
from sandbox.core.faults import VendorFault
from sandbox.core.validation import ascii_integer

from .errors import Conflict, NotFound, Unauthorized, customer_not_found, entity_type_not_supported, \
    identifier_not_found, redemption_update_failed
from .records import CUSTOMERS, OAUTH_CLIENTS, OAUTH_TOKENS, ORGS, REDEMPTIONS, REVERSALS

# entity.identifierType (v2) -> the customer field it names.
_ENTITY_IDENTIFIERS = {"mobile": "mobile", "email": "email", "externalId": "externalId", "cardnumber": "cardnumber"}
# reverse's identifier.type -> customer field.
_REVERSE_IDENTIFIERS = {"MOBILE": "mobile", "EMAIL": "email", "EXTERNAL_ID": "externalId"}
# v1.1 query parameters -> customer field, in the order they are tried.
V11_IDENTIFIERS = {"id": "customerId", "mobile": "mobile", "email": "email", "external_id": "externalId"}


class Points:
    def __init__(self, store, ids, till, now: datetime):
        self.store = store
        self.ids = ids
        self.till = till
        self.now = now  # the world's time of the request (core/clock.py)

    # -- customers -----------------------------------------------------------------------------------------
    def customer(self, field: str, value) -> dict | None:
        """The org's customer whose `field` equals `value` (the customer ID compares as a number)."""
        if field == "customerId":
            number = value if isinstance(value, int) else ascii_integer(str(value))
            if number is None:
                return None
            found = self.store.get(CUSTOMERS, str(number))
            return found if found is not None and found["orgId"] == self.till.org_id else None
        return next((c for c in self.store.find(CUSTOMERS, **{field: value}) if c["orgId"] == self.till.org_id), None)

    def customer_by_query(self, params: dict) -> dict:
        for name, field in V11_IDENTIFIERS.items():
            if name in params:
                customer = self.customer(field, params[name])
                if customer is None:
                    raise customer_not_found()
                return customer
        raise customer_not_found("pass one of id, mobile, email, external_id")

    # -- redemptions ---------------------------------------------------------------------------------------
    def redemption(self, redemption_id: str | None, reference: str | None, missing: Exception) -> dict:
        if redemption_id is not None:
            found = self.store.get(REDEMPTIONS, redemption_id)
        else:
            found = next(iter(self.store.find(REDEMPTIONS, externalReferenceNumber=reference)), None)
        if found is None or found["orgId"] != self.till.org_id:
            raise missing
        return found

    def history(self, customer: dict) -> list[dict]:
        found = self.store.find(REDEMPTIONS, customerId=customer["customerId"])
        return sorted(found, key=lambda r: (r["redemptionTime"], r["id"]), reverse=True)

    def redeem(self, customer_id: int, body: dict) -> dict:
        customer = self.customer("customerId", customer_id)
        if customer is None:
            raise customer_not_found()
        points = float(body["points"])
        if points > customer["points"]:
            raise Conflict(f"Current points are less than points requested for redemption. Balance "
                           f"{customer['points']:g}, requested {points:g}.", code=818)
        reference = body.get("externalReferenceNumber")
        if reference is not None and self.store.find(REDEMPTIONS, externalReferenceNumber=reference):
            raise Conflict(f"Unable to redeem points. externalReferenceNumber {reference} is already used in "
                           "this org; send a new one.", code=903)
        org = self.store.get(ORGS, str(self.till.org_id))
        now = self.now
        millis = epoch_ms(now)
        redemption = {
            "redemptionId": self._new_redemption_id(), "id": self.ids.number(24_000_000, 99_999_999),
            "orgId": self.till.org_id, "customerId": customer["customerId"], "programId": org["programId"],
            "pointsRedeemed": points, "pointsReversed": 0.0, "billId": -1,
            "billNumber": body.get("billNumber", ""), "validationCode": body.get("validationCode", ""),
            "notes": body.get("notes", ""), "redemptionTime": millis, "pointsRedemptionTime": millis,
            "tillId": self.till.till_id, "tillName": self.till.till_name,
            "pointDeductionList": [{"programId": org["programId"], "pointsDeducted": points}],
            "redemptionPurpose": body.get("purpose", ""), "redemptionDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "externalReferenceNumber": reference, "customFields": {},
        }
        customer["points"] -= points
        self.store.put(CUSTOMERS, str(customer["customerId"]), customer)
        self.store.put(REDEMPTIONS, redemption["redemptionId"], redemption)
        record_event(self.store, "capillary:points.redeemed", {
            "redemptionId": redemption["redemptionId"], "customerId": customer["customerId"],
            "points": points, "balance": customer["points"]}, self.now)
        return redemption

    def update(self, body: dict, fault: VendorFault | None = None) -> dict:
        entity = body["entity"]
        if entity["type"] != "CUSTOMER":
            raise entity_type_not_supported(entity["type"])
        redemption = self._plan_update(body)
        # The documented refusals come first; the injected 750 is the points engine refusing what passed them.
        if fault is not None and fault.strike() == "redemption-update-failed":
            raise redemption_update_failed("the points engine did not accept the change (injected fault)")
        # Only the requested fields change; purpose is stored as redemptionPurpose.
        if "billId" in body:
            redemption["billId"] = body["billId"]
        if "billNumber" in body:
            redemption["billNumber"] = body["billNumber"]
        if "purpose" in body:
            redemption["redemptionPurpose"] = body["purpose"]
        redemption["customFields"].update(body.get("customFields", {}))
        self.store.put(REDEMPTIONS, redemption["redemptionId"], redemption)
        record_event(self.store, "capillary:redemption.updated", {
            "redemptionId": redemption["redemptionId"],
            "changes": {k: body[k] for k in ("billId", "billNumber", "purpose", "customFields") if k in body}},
            self.now)
        return redemption

    def _plan_update(self, body: dict) -> dict:
        """The redemption an update changes, or the documented refusal (8015, 750)."""
        entity = body["entity"]
        redemption = self.redemption(body.get("redemptionId"), body.get("externalReferenceNumber"),
                                     identifier_not_found())
        field = _ENTITY_IDENTIFIERS.get(entity["identifierType"], "customerId")
        customer = self.customer(field, entity["identifierValue"])
        if customer is None:
            raise customer_not_found()
        if redemption["customerId"] != customer["customerId"]:
            raise redemption_update_failed(
                f"redemption {redemption['redemptionId']} does not belong to the identified customer")
        if redemption["pointsReversed"] >= redemption["pointsRedeemed"]:
            raise redemption_update_failed(f"redemption {redemption['redemptionId']} was reversed")
        configured = self.store.get(ORGS, str(self.till.org_id))["customFields"]
        for name in body.get("customFields", {}):
            if name not in configured:
                raise redemption_update_failed(
                    f"custom field {name} is not configured for this org (configured: {', '.join(configured)})")
        return redemption

    def reverse(self, body: dict) -> tuple[dict, dict, dict]:
        """Returns (redemption, customer, reversal)."""
        redemption = self.redemption(body.get("redemptionId"), body.get("externalReferenceNumber"),
                                     NotFound("Redemption ID does not exist.", code=902))
        identifier = body["identifier"]
        field = _REVERSE_IDENTIFIERS.get(identifier["type"], "customerId")
        customer = self.customer(field, identifier["value"])
        if customer is None:
            raise customer_not_found()
        if customer["customerId"] != redemption["customerId"]:
            raise Conflict(f"Invalid customer details passed. Redemption {redemption['redemptionId']} is not "
                           "this customer's.", code=904)
        remaining = redemption["pointsRedeemed"] - redemption["pointsReversed"]
        if remaining <= 0:
            raise Conflict("Points reversal redeemed points already reversed.", code=3802)
        points = float(body["pointsToBeReversed"])
        if points > remaining:
            raise Conflict(f"Mismatch in points for revert API call. At most {remaining:g} of "
                           f"{redemption['pointsRedeemed']:g} points can still be reversed.", code=810)
        redemption["pointsReversed"] += points
        customer["points"] += points
        reversal = {"reversalId": self.ids.number(1_000, 9_999_999), "redemptionId": redemption["redemptionId"],
                    "orgId": self.till.org_id, "points": points, "at": epoch_ms(self.now)}
        self.store.put(REDEMPTIONS, redemption["redemptionId"], redemption)
        self.store.put(CUSTOMERS, str(customer["customerId"]), customer)
        self.store.put(REVERSALS, str(reversal["reversalId"]), reversal)
        record_event(self.store, "capillary:points.reversed", {
            "redemptionId": redemption["redemptionId"], "customerId": customer["customerId"],
            "points": points, "balance": customer["points"]}, self.now)
        return redemption, customer, reversal

    def _new_redemption_id(self) -> str:
        while True:
            candidate = self.ids.token(6)
            if self.store.get(REDEMPTIONS, candidate) is None:
                return candidate


def issue_oauth_token(store, ids, key: str, secret: str, ttl_seconds: int, now: datetime, suffix: str = "") -> str:
    """A token for the client, living `ttl_seconds` on the world's clock from `now`; `suffix` is the world's
    credential suffix, so the token names its world. Drawn from the world's seeded generator, so a replayed run
    gets the same tokens (byte-identical answers): in the default world anyone may have a token anyway (its OAuth
    clients are the documents' demo ones), and a workspace's token ends with the workspace's secret suffix (128
    bits from the OS), so it cannot be guessed from the seed."""
    client = store.get(OAUTH_CLIENTS, key)
    if client is None or client["secret"] != secret:
        raise Unauthorized("Unknown OAuth key or secret (demo clients: GET /_sandbox/credentials)")
    token = "cap_oauth_" + ids.hex(32) + suffix
    store.put(OAUTH_TOKENS, token, {"token": token, "username": client["username"],
                                    "expiresAt": now.timestamp() + ttl_seconds})
    return token


def redemption_json(redemption: dict) -> dict:
    """Seed 004's response parameters, plus customFields as name/value pairs when any are set."""
    body = {k: redemption[k] for k in (
        "id", "programId", "pointsRedeemed", "billId", "billNumber", "validationCode", "notes", "redemptionTime",
        "pointsRedemptionTime", "tillId", "tillName", "pointDeductionList", "redemptionId", "customerId",
        "redemptionPurpose", "redemptionDate")}
    if redemption["customFields"]:
        body["customFields"] = [{"name": k, "value": v} for k, v in redemption["customFields"].items()]
    body["warnings"] = []
    return body


def v11_redemption_json(redemption: dict) -> dict:
    moment = datetime.fromtimestamp(redemption["redemptionTime"] / 1000, timezone.utc)
    return {
        "id": redemption["id"], "redemption_id": redemption["redemptionId"], "program_id": redemption["programId"],
        "points_redeemed": redemption["pointsRedeemed"], "points_reversed": redemption["pointsReversed"],
        "bill_id": redemption["billId"], "bill_number": redemption["billNumber"],
        "external_reference_number": redemption["externalReferenceNumber"] or "", "notes": redemption["notes"],
        "purpose": redemption["redemptionPurpose"], "validation_code": redemption["validationCode"],
        "redeemed_time": moment.strftime("%Y-%m-%d %H:%M:%S"), "redeemed_till": redemption["tillId"],
        "custom_fields": [{"name": k, "value": v} for k, v in redemption["customFields"].items()],
    }
