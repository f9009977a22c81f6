"""Correct under concurrency (issue 8): real concurrent clients against `run.py` serving with several worker
processes, on each shared backend. Every race is released at once by a barrier and repeated, and ends with the
state read back through the API."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from services import REDIS_MISSING, drop_prefix, free_port, unique_prefix
from helpers import CAPILLARY

ROOT = Path(__file__).parent.parent
RAI = {"Authorization": "Bearer XXXXXX"}
ORDER_A = "ORD202641612055614747"  # voucher GOLD-2026-0001
ORDER_B = "ORD202641612055614748"  # voucher GOLD-TAKEN-0001, same product and community
DOC_TX = "ORD202507013831"  # 500 coins, status Pending
PROCESSING, SHIPPING, DELIVERED, CANCELLED, REFUNDED = (
    "695dcc370ab8622381f27918", "695e2f8b3358520a2ecf86e4", "695e2f8b3358520a2ecf8602",
    "695e2f8b3358520a2ecf8603", "695e2f8b3358520a2ecf8604")
MEMBER = "507f1f77bcf86cd799439014"
POOR_CUSTOMER = 109943743  # 100 points
WORKERS = 2


# backend-server: run.py's default is gunicorn with uvicorn workers (one request at a time per process, in its event
# loop); granian runs requests in threads (--threads 4 here).
@pytest.fixture(scope="module", params=["sqlite", "redis", "sqlite-granian"])
def server(request):
    """`python run.py` as a user starts it: several worker processes (gunicorn, or granian), seeded data."""
    env = dict(os.environ)
    backend, _, server_name = request.param.partition("-")
    args = ["--backend", backend]
    if server_name == "granian":
        args += ["--server", "granian", "--threads", "4"]
    prefix = None
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        if url is None:
            pytest.skip(REDIS_MISSING)
        prefix = unique_prefix()
        env["SANDBOX_REDIS_PREFIX"] = prefix
        args += ["--redis-url", url]
    port = free_port()
    process = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--workers", str(WORKERS),
                                "--size", "20", *args],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(base + "/_sandbox/health", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("run.py did not start:\n" + process.stdout.read())
            time.sleep(0.1)
    yield base
    process.terminate()
    process.wait(15)
    if prefix:
        drop_prefix(request.getfixturevalue("redis_url"), prefix)


@pytest.fixture
def base(server):
    assert requests.post(server + "/_sandbox/reset", json={}).status_code == 200
    return server


def race(*calls):
    """Run the calls at the same moment, each on its own connection; their responses, in call order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def rai_patch(base, order, body):
    return lambda: requests.patch(f"{base}/returning-ai/v1/purchase-histories/{order}", json=body, headers=RAI)


def rai_status(base, status, refund=False):
    return lambda: requests.put(f"{base}/returning-ai/v1/redemption-transactions/status", headers=RAI,
                                json={"transactionId": DOC_TX, "statusId": status, "refundCoins": refund})


def state(base, collection, key):
    return requests.get(f"{base}/_sandbox/state/{collection}?id={key}").json()["records"][0]


def test_rule_two_vouchers_racing_for_one_code_one_200_one_409(base):
    for round_ in range(10):
        code = f"RACE-{round_:04d}"
        body = {"voucherCode": code, "voucherExpiryDate": "31/12/2027"}
        responses = race(rai_patch(base, ORDER_A, body), rai_patch(base, ORDER_B, body))
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        loser = next(r for r in responses if r.status_code == 409).json()
        assert loser["errors"][0]["field"] == "voucherCode"
        # The code is held by exactly one voucher of the product: the winner's.
        vouchers = requests.get(f"{base}/_sandbox/state/rai_vouchers").json()["records"]
        assert [v["_id"] for v in vouchers if v["code"] == code] == [
            responses[[r.status_code for r in responses].index(200)].json()["data"]["voucher"]["_id"]]


def test_rule_concurrent_status_changes_all_recorded_and_refunded_once(base):
    history_url = f"{base}/returning-ai/v1/redemption-transactions/status-history"
    coins_before = state(base, "rai_users", MEMBER)["coins"]
    # N changes to N different statuses: each is a real change whatever order they land in.
    changes = [PROCESSING, SHIPPING, DELIVERED, CANCELLED]
    responses = race(*(rai_status(base, s) for s in changes))
    assert [r.status_code for r in responses] == [200] * len(changes)
    history = requests.post(history_url, json={"transactionId": DOC_TX}, headers=RAI).json()["data"]["history"]
    assert len(history) == len(changes) and {h["toStatusId"] for h in history} == set(changes)
    # Three refunds and two more real changes at once: one refund wins; whatever lands after it is refused (final).
    others = [s for s in changes if s != history[-1]["toStatusId"]][:2]
    responses = race(*(rai_status(base, REFUNDED, refund=True) for _ in range(3)),
                     *(rai_status(base, s) for s in others))
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 409}, [r.text for r in responses]
    assert codes[:3].count(200) == 1
    history = requests.post(history_url, json={"transactionId": DOC_TX}, headers=RAI).json()["data"]["history"]
    assert len(history) == len(changes) + codes.count(200)  # every 200 left one entry; no 409 left any
    assert sum(1 for h in history if h["refundCoins"]) == 1 and history[-1]["toStatusId"] == REFUNDED
    assert state(base, "rai_users", MEMBER)["coins"] == coins_before + 500
    events = requests.get(f"{base}/_sandbox/events").json()["events"]
    assert sum(1 for e in events if e["name"] == "refund:coins") == 1


def test_rule_concurrent_capillary_redemptions_never_take_a_balance_below_zero(base):
    url = f"{base}/capillary/v2/customers/{POOR_CUSTOMER}/redemptions"
    responses = race(*(lambda n=n: requests.post(url, headers=CAPILLARY, json={
        "points": 30, "externalReferenceNumber": f"RACE-{n}"}) for n in range(10)))
    codes = [r.status_code for r in responses]
    assert sorted(codes) == [200] * 3 + [409] * 7, [r.text for r in responses]
    assert all(r.json()["errors"][0]["code"] == 818 for r in responses if r.status_code == 409)
    assert state(base, "cap_customers", str(POOR_CUSTOMER))["points"] == 10


def test_every_worker_shares_journal_fault_rules_and_workspaces(base):
    # A fault rule set through one worker fires exactly `count` times, whichever workers serve the calls.
    rule = requests.post(f"{base}/_sandbox/faults", json={
        "vendor": "returning-ai", "operation": "updatePurchaseHistory", "fault": "server-error", "count": 3}).json()
    body = {"redemptionInstructions": "Shared rule"}
    responses = race(*(rai_patch(base, ORDER_A, body) for _ in range(12)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [500] * 3
    assert requests.get(f"{base}/_sandbox/faults").json()["rules"][0] == {**rule, "count": 0, "fired": 3}
    # Every request is in the one journal, with one id each.
    entries = requests.get(f"{base}/_sandbox/requests?operation=updatePurchaseHistory").json()["requests"]
    assert len(entries) == 12 and len({e["id"] for e in entries}) == 12
    # A workspace made through one worker is served by all of them.
    workspace = requests.post(f"{base}/_sandbox/workspaces", json={"size": 5}).json()
    key = next(c["headers"] for c in workspace["credentials"] if c["vendor"] == "returning-ai"
               and "every permission" in c["purpose"])
    responses = race(*(lambda: requests.patch(f"{base}/returning-ai/v1/purchase-histories/{ORDER_A}", json=body,
                                              headers=key) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8, [r.text for r in responses]
    assert requests.delete(f"{base}/_sandbox/workspaces/{workspace['id']}").status_code == 200
