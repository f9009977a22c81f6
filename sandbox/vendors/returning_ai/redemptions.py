"""Rewards & Redemptions (seed 002): redemption orders, their statuses, status history and coin refunds.

State and rules only; handlers call these methods. The status PUT follows seed 002; the rules it leaves open
are decided here and stated in specs/returning-ai.yaml (updateRedemptionTransactionStatus).
"""
from __future__ import annotations

import math
from datetime import datetime

from sandbox.core.clock import iso_millis
from sandbox.core.errors import CONFLICT, NOT_FOUND, Problem
from sandbox.core.events import record_event

from .errors import Conflict, NotFound
from .records import STATUS_HISTORY, STATUSES, TRANSACTIONS, USERS

REFUNDED = "refunded"


class RewardsAndRedemptions:
    def __init__(self, store, ids, now: datetime):
        self.store = store
        self.ids = ids
        self.now = now  # the world's time of the request (core/clock.py)

    # -- statuses ------------------------------------------------------------------------------------------
    def status(self, community_id: str, status_id: str) -> dict:
        status = self.store.get(STATUSES, status_id.lower())
        if status is None or status["communityID"] != community_id:
            raise NotFound(f"Redemption status {status_id} was not found in this community",
                           [Problem("body", "statusId", "no such status in this community", kind=NOT_FOUND)])
        return status

    def statuses(self, community_id: str, category: str | None = None) -> list[dict]:
        found = self.store.find(STATUSES, communityID=community_id)
        return [s for s in found if category is None or s["category"] == category]

    def create_status(self, community_id: str, name: str, category: str, color: str) -> dict:
        name = name.strip(" \t\n\v\f\r")
        for existing in self.statuses(community_id):
            if existing["name"].casefold() == name.casefold():
                raise Conflict(f"A redemption status named {existing['name']} already exists in this community; "
                               "choose another name", [Problem("body", "name", "duplicate status name", kind=CONFLICT)])
        status = {"_id": self.ids.object_id(), "communityID": community_id, "name": name, "category": category,
                  "color": color.upper(), "createdAt": iso_millis(self.now)}
        self.store.put(STATUSES, status["_id"], status)
        record_event(self.store, "create:redemption-status", status_json(status) | {"communityID": community_id},
                     self.now)
        return status

    # -- orders --------------------------------------------------------------------------------------------
    def transaction(self, community_id: str, transaction_id: str) -> dict:
        order = self.store.find_one(TRANSACTIONS, transactionId=transaction_id)
        if order is None or order["communityID"] != community_id:
            raise NotFound(f"Redemption transaction {transaction_id} was not found in this community",
                           [Problem("body", "transactionId", "no such order in this community", kind=NOT_FOUND)])
        return order

    def transactions(self, community_id: str, status_id: str | None = None) -> list[dict]:
        if status_id is not None:
            self.status(community_id, status_id)  # an unknown status is a 404, not an empty page
        orders = self.store.find(TRANSACTIONS, communityID=community_id)
        return _newest_first([o for o in orders if status_id is None or o["statusId"] == status_id.lower()])

    def member_by_email(self, community_id: str, email: str) -> dict:
        for user in self.store.find(USERS, email=email.lower()):
            if user["communityID"] == community_id:
                return user
        raise NotFound(f"No member with email {email} in this community",
                       [Problem("body", "email", "no such member in this community", kind=NOT_FOUND)])

    def transactions_of(self, member: dict) -> list[dict]:
        return _newest_first(self.store.find(TRANSACTIONS, userID=member["_id"]))

    def transaction_json(self, order: dict) -> dict:
        """An order as the list operations return it, with its member's balance and its status."""
        return {
            "_id": order["_id"],
            "transactionId": order["transactionId"],
            "communityID": order["communityID"],
            "user": member_json(self.store.get(USERS, order["userID"])),
            "product": order["product"],
            "coins": order["coins"],
            "statusId": order["statusId"],
            "status": status_json(self.store.get(STATUSES, order["statusId"])),
            "coinsRefunded": order["coinsRefunded"],
            "createdAt": order["createdAt"],
            "updatedAt": order["updatedAt"],
        }

    def history(self, community_id: str, transaction_id: str) -> tuple[dict, list[dict]]:
        order = self.transaction(community_id, transaction_id)
        return order, self.store.find(STATUS_HISTORY, transactionId=order["transactionId"])

    def update_status(self, caller, transaction_id: str, status_id: str, refund_coins: bool) -> tuple[dict, dict]:
        """Move an order to a status; with refund_coins, credit the member once. Returns (order, status)."""
        community_id = caller.community_id
        order = self.transaction(community_id, transaction_id)
        target = self.status(community_id, status_id)
        current = self.store.get(STATUSES, order["statusId"])
        _check_transition(order, current, target, refund_coins)
        refund = order["coins"] if refund_coins else 0
        if target["_id"] == order["statusId"] and not refund:
            return order, target  # PUT is idempotent: the same status again changes nothing
        now = iso_millis(self.now)
        entry = {"_id": self.ids.object_id(), "transactionId": order["transactionId"], "communityID": community_id,
                 "fromStatusId": order["statusId"], "toStatusId": target["_id"], "changedAt": now,
                 "changedBy": caller.masked_key, "refundCoins": refund_coins, "coinsRefunded": refund}
        self.store.put(STATUS_HISTORY, entry["_id"], entry)
        order.update(statusId=target["_id"], updatedAt=now, coinsRefunded=order["coinsRefunded"] or bool(refund))
        self.store.put(TRANSACTIONS, order["_id"], order)
        record_event(self.store, "update:redemption-transaction-status", {
            "transactionId": order["transactionId"], "communityID": community_id,
            "fromStatusId": entry["fromStatusId"], "toStatusId": target["_id"], "refundCoins": refund_coins}, self.now)
        if refund:
            member = self.store.get(USERS, order["userID"])
            member["coins"] += refund
            self.store.put(USERS, member["_id"], member)
            record_event(self.store, "refund:coins", {
                "transactionId": order["transactionId"], "communityID": community_id,
                "userID": member["_id"], "coins": refund, "balance": member["coins"]}, self.now)
        return order, target


def _check_transition(order: dict, current: dict | None, target: dict, refund_coins: bool) -> None:
    ident = order["transactionId"]
    if refund_coins and target["category"] != REFUNDED:
        raise Conflict(f"refundCoins needs a status of category refunded; {target['name']} is "
                       f"{target['category']}. Send refundCoins: false or pick a refunded status",
                       [Problem("body", "refundCoins", "only with a refunded status", kind=CONFLICT)])
    if refund_coins and order["coinsRefunded"]:
        raise Conflict(f"Coins of {ident} were already refunded; an order is refunded at most once",
                       [Problem("body", "refundCoins", "already refunded", kind=CONFLICT)])
    if current is not None and current["category"] == REFUNDED and target["_id"] != current["_id"]:
        raise Conflict(f"{ident} is refunded ({current['name']}), which is final; it cannot move to {target['name']}",
                       [Problem("body", "statusId", "a refunded order cannot change status", kind=CONFLICT)])


def _newest_first(orders: list[dict]) -> list[dict]:
    return sorted(orders, key=lambda o: (o["createdAt"], o["_id"]), reverse=True)


def paginate(items: list, page: int, limit: int) -> tuple[list, dict]:
    page, limit = int(page), int(limit)  # JSON Schema's integer admits 2.0
    total = len(items)
    start = (page - 1) * limit
    return items[start:start + limit], {"page": page, "limit": limit, "total": total,
                                         "totalPages": math.ceil(total / limit)}


def status_json(status: dict) -> dict:
    return {k: status[k] for k in ("_id", "name", "category", "color")}


def member_json(member: dict) -> dict:
    return {k: member[k] for k in ("_id", "email", "name", "coins")}


def history_json(entry: dict) -> dict:
    return {k: entry[k] for k in ("_id", "fromStatusId", "toStatusId", "changedAt", "changedBy", "refundCoins",
                                  "coinsRefunded")}
