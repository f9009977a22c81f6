"""The Redis backend under faults (issue 17): several sandbox instances (`run.py`, gunicorn workers) on one Redis,
real concurrent clients, and (a) a stale or stuck lock planted, (b) an instance paused (SIGSTOP) in the middle of
a write and resumed, (c) redis-server killed and restarted under load. Whatever happens, no acknowledged write is
lost and no write stands behind an error answer; the races keep their rules (one code, one refund, no balance
below zero); an outage is a 503 with Retry-After in the vendor's envelope, logged once down and once back.

The Redis here is the tests' own, persisted like the README asks for the durability promise (appendonly, fsync
every second: a killed server loses nothing it acknowledged)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from helpers import CAPILLARY, strict_app
from sandbox.storage.redis.lock import LOCK_SECONDS
from services import REDIS_MISSING, free_port
from test_concurrency import DOC_TX, MEMBER, ORDER_A, ORDER_B, POOR_CUSTOMER, RAI, REFUNDED, race, rai_patch, rai_status

ROOT = Path(__file__).parent.parent
PREFIX = "faults"
LOCK = f"{PREFIX}:default#lock"
LOAD_CUSTOMER = 109943742  # 5,000 points: the load never runs out of them
LOAD_POINTS = 1
TIMEOUT = 30  # a client's patience: longer than any pause below, so every request gets its answer

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason=REDIS_MISSING)


class PersistentRedis:
    def __init__(self, directory: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.client = redis.Redis(port=self.port, socket_timeout=2)
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                # Its own server, not another test process's that took the port first (which this test would kill)
                if self.client.info("server")["process_id"] == self.process.pid:
                    return
                raise RuntimeError(f"port {self.port} is another redis-server's")
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)


class Instance:
    """`python run.py --backend redis` as a user starts it, its output kept in a file for the log checks."""

    def __init__(self, url: str, workers: int, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = dict(os.environ, SANDBOX_REDIS_PREFIX=PREFIX)
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--backend", "redis", "--redis-url", url, "--port", str(self.port),
             "--workers", str(workers), "--size", "20"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(self.base + "/_sandbox/health", timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError("run.py did not start:\n" + log.read_text())
                time.sleep(0.1)

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One Redis, two instances: `paused` (one worker, so that the one process to pause is known) and `other`."""
    directory = tmp_path_factory.mktemp("redis")
    server = PersistentRedis(directory)
    server.start()
    paused = Instance(server.url, 1, directory / "paused.log")
    other = Instance(server.url, 2, directory / "other.log")
    yield server, paused, other
    for instance in (paused, other):
        for pid in instance.workers():
            os.kill(pid, signal.SIGCONT)
        instance.stop()
    server.kill()


@pytest.fixture
def world(cluster):
    server, paused, other = cluster
    server.client.delete(LOCK)
    assert requests.post(other.base + "/_sandbox/reset", json={}, timeout=TIMEOUT).status_code == 200
    return cluster


def state(base, collection):
    return requests.get(f"{base}/_sandbox/state/{collection}", timeout=TIMEOUT).json()["records"]


def redeem(base, reference, points, customer=POOR_CUSTOMER):
    return requests.post(f"{base}/capillary/v2/customers/{customer}/redemptions", headers=CAPILLARY, timeout=TIMEOUT,
                         json={"points": points, "externalReferenceNumber": reference})


def balance(base, customer=POOR_CUSTOMER) -> float:
    return next(c for c in state(base, "cap_customers") if c["customerId"] == customer)["points"]


def assert_redemptions_match_answers(base, answers: dict[str, int], points: float, before: float = 100,
                                     customer=POOR_CUSTOMER):
    """Every acknowledged redemption is stored, no refused one is, and the balance is what the 200s took."""
    assert set(answers.values()) <= {200, 409, 503}, answers
    stored = {r["externalReferenceNumber"] for r in state(base, "cap_redemptions")
              if r["customerId"] == customer and r["externalReferenceNumber"] in answers}
    acknowledged = {ref for ref, status in answers.items() if status == 200}
    assert stored == acknowledged
    assert balance(base, customer) == before - points * len(acknowledged) >= 0


def assert_races_keep_their_rules(first: str, second: str, allow_503: bool):
    """The voucher-code race, the single refund and a balance raced below zero, with clients on both instances."""
    statuses = {200, 409, 503} if allow_503 else {200, 409}
    body = {"voucherCode": "RACE-CODE", "voucherExpiryDate": "31/12/2027"}
    answers = race(rai_patch(first, ORDER_A, body), rai_patch(second, ORDER_B, body))
    codes = [r.status_code for r in answers]
    assert set(codes) <= statuses and codes.count(200) <= 1 and (allow_503 or sorted(codes) == [200, 409])
    holders = [v["_id"] for v in state(first, "rai_vouchers") if v["code"] == "RACE-CODE"]
    assert holders == [r.json()["data"]["voucher"]["_id"] for r in answers if r.status_code == 200]

    coins = next(u for u in state(first, "rai_users") if u["_id"] == MEMBER)["coins"]
    answers = race(*(rai_status(base, REFUNDED, refund=True) for base in (first, second, first)))
    codes = [r.status_code for r in answers]
    assert set(codes) <= statuses and codes.count(200) <= 1 and (allow_503 or codes.count(200) == 1), [r.text for r in answers]
    history = requests.post(first + "/returning-ai/v1/redemption-transactions/status-history", timeout=TIMEOUT,
                            json={"transactionId": DOC_TX}, headers={"Authorization": "Bearer XXXXXX"}).json()
    assert sum(1 for h in history["data"]["history"] if h["refundCoins"]) == codes.count(200)
    assert next(u for u in state(first, "rai_users") if u["_id"] == MEMBER)["coins"] == coins + 500 * codes.count(200)

    references, before = [f"RACE-{n}" for n in range(10)], balance(first)
    answers = race(*(lambda n=n: redeem((first, second)[n % 2], references[n], 30) for n in range(10)))
    assert_redemptions_match_answers(first, {ref: r.status_code for ref, r in zip(references, answers)}, 30, before)
    assert sum(r.status_code == 200 for r in answers) == min(3, int(before // 30)) or allow_503


def test_a_stale_lock_only_delays_writers_and_a_stuck_one_is_a_503_that_writes_nothing(world):
    server, paused, other = world
    # A lock left by a crashed instance expires by itself: the races wait for it, then keep their rules.
    server.client.set(LOCK, "crashed-host:1:0", px=1500)
    started = time.monotonic()
    assert_races_keep_their_rules(paused.base, other.base, allow_503=False)
    assert time.monotonic() - started >= 1.4
    # A lock held beyond the writers' patience (a live holder stuck): a retryable 503 in Capillary's envelope.
    server.client.set(LOCK, "stuck-host:1:0", px=10_000)
    answer = redeem(other.base, "WHILE-STUCK", 1)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    error = answer.json()["errors"][0]
    assert error["code"] == 503 and "write lock" in error["message"] and "nothing was written" in error["message"]
    journal = requests.get(other.base + "/_sandbox/requests", timeout=TIMEOUT).json()["requests"]
    assert journal[-1]["status"] == 503 and "write lock" in journal[-1]["response"]  # journaled, lock or not
    # A caller that never wrote does not wait on the lock (pipeline.lock_ahead): its 401 comes at once.
    started = time.monotonic()
    stranger = requests.patch(f"{other.base}/returning-ai/v1/purchase-histories/{ORDER_A}", timeout=TIMEOUT,
                              json={"voucherCode": "X-2", "voucherExpiryDate": "31/12/2027"},
                              headers={"Authorization": "Bearer nope"})
    assert stranger.status_code == 401 and time.monotonic() - started < 1
    server.client.delete(LOCK)
    assert_redemptions_match_answers(other.base, {"WHILE-STUCK": 503}, 1, before=10)
    assert redeem(other.base, "AFTER-STUCK", 1).status_code == 200


CONNECTING = ("HELLO", "AUTH", "SELECT", "CLIENT")  # a pooled connection's handshake, once per connection


def round_trips(server: PersistentRedis, call) -> int:
    """The commands clients sent Redis while `call` ran, as MONITOR shows them (a script's own commands are shown
    as the script's, and not counted): one round trip each."""
    with server.client.monitor() as monitor:
        call()
        server.client.echo("end-of-call")
        sent = []
        while (command := monitor.next_command())["command"] != "ECHO end-of-call":
            name = command["command"].split(" ", 1)[0]
            if command["client_type"] != "lua" and name not in CONNECTING:
                sent.append(name)
    return len(sent)


def test_a_write_costs_two_round_trips_its_lookups_included(world):
    """Issue 17 point 3, `pipeline.lock_ahead`: a PATCH on the default world by a caller that wrote lately takes
    the world's lock with the read cache's catch-up (which its lookups then read), then commits: two round trips. A
    refusal too: a 400 is refused before the lock (the lookups' catch-up, then its journal entry), and so is a 401
    of a caller that never wrote (it does not wait on the lock). What they did is in the journal all the same."""
    server, paused, other = world
    url = f"{paused.base}/returning-ai/v1/purchase-histories/{ORDER_A}"
    answers = []
    for body, headers in [({"voucherCode": "TRIPS-1", "voucherExpiryDate": "31/12/2027"}, {}),
                          ({"voucherCode": 5}, {}), ({"voucherCode": "TRIPS-2"}, {"Authorization": "Bearer nope"})]:
        def send():
            answers.append(requests.patch(url, json=body, headers={**RAI, **headers}, timeout=TIMEOUT).status_code)

        send()  # the first time, the worker's cache learns what it needs (that "nope" is no key, say)
        answers.append(round_trips(server, send))
    assert answers == [200, 200, 2, 400, 400, 2, 401, 401, 2]
    journal = requests.get(paused.base + "/_sandbox/requests", timeout=TIMEOUT).json()["requests"]
    assert [e["status"] for e in journal[-6:]] == [200, 200, 400, 400, 401, 401]


def test_a_fault_rule_rolls_its_dice_once_a_request_whatever_the_answer(world):
    """A write takes the lock ahead of its lookups, but a rule that may fire is decided in its own transaction: a
    roll that did not fire is kept even when the answer is a 404. So run.py on Redis answers the same sequence as
    the usual path does (an in-process app on memory), the rule's dice seeded alike."""
    server, paused, other = world
    rule = {"vendor": "returning-ai", "operation": "updatePurchaseHistory", "fault": "server-error",
            "probability": 0.5, "seed": 7}
    body = {"voucherCode": "X-1", "voucherExpiryDate": "31/12/2027"}
    path = "/returning-ai/v1/purchase-histories/ORD000000000000000001"  # well formed, and no such order: a 404
    usual = strict_app(backend="memory", size=5).test_client()
    assert usual.post("/_sandbox/faults", json=rule).status_code == 201
    expected = [usual.patch(path, json=body, headers=RAI).status_code for _ in range(12)]
    assert set(expected) == {404, 500}
    assert requests.post(paused.base + "/_sandbox/faults", json=rule, timeout=TIMEOUT).status_code == 201
    try:
        statuses = [requests.patch(paused.base + path, json=body, headers=RAI, timeout=TIMEOUT).status_code
                    for _ in range(12)]
        assert statuses == expected
        fired = [r["fired"] for r in requests.get(paused.base + "/_sandbox/faults", timeout=TIMEOUT).json()["rules"]]
        assert fired == [expected.count(500)]
    finally:
        requests.delete(paused.base + "/_sandbox/faults", timeout=TIMEOUT)


def load(bases: list[str], stop: threading.Event, answers: dict, threads: int = 6):
    """Clients redeeming a point each from LOAD_CUSTOMER, with a unique reference per request, until `stop`;
    answers[ref] = (status, when it came, its body)."""

    def client(n):
        count = 0
        while not stop.is_set():
            reference = f"LOAD-{n}-{count}"
            count += 1
            response = redeem(bases[n % len(bases)], reference, LOAD_POINTS, LOAD_CUSTOMER)
            answers[reference] = (response.status_code, time.monotonic(), response.text)

    pool = ThreadPoolExecutor(threads)
    futures = [pool.submit(client, n) for n in range(threads)]
    return pool, futures


def test_an_instance_paused_in_the_middle_of_a_write_writes_nothing_when_it_resumes(world):
    server, paused, other = world
    worker = paused.workers()[0]
    stop, answers = threading.Event(), {}
    pool, futures = load([paused.base, other.base], stop, answers)
    try:
        # Pause the worker while it holds the lock: mid-transaction, its reads done and its writes not yet sent.
        deadline = time.monotonic() + 10
        while True:
            holder = server.client.get(LOCK)
            if holder and holder.decode().split(":")[1] == str(worker):
                os.kill(worker, signal.SIGSTOP)
                if server.client.get(LOCK) == holder:
                    break
                os.kill(worker, signal.SIGCONT)
            assert time.monotonic() < deadline, "never caught the worker holding the lock"
        paused_at = time.monotonic()
        # Meanwhile the other instance's writers wait for the lock to expire, then keep the races' rules.
        assert_races_keep_their_rules(other.base, other.base, allow_503=False)
        time.sleep(max(0.0, paused_at + 3 - time.monotonic()))  # past the lock's life
        served_meanwhile = [a for a in answers.values() if a[1] > paused_at + 2.2 and a[0] == 200]
        os.kill(worker, signal.SIGCONT)
        time.sleep(1)
    finally:
        stop.set()
        for future in futures:
            future.result()
        pool.shutdown()
    assert served_meanwhile, "the other instance stopped serving while the paused one held the lock"
    # The paused request found its lock gone and wrote nothing; any other 503 (a writer that waited past its patience
    # on a machine this busy) wrote nothing either, which the accounting below checks.
    refused = [a[2] for a in answers.values() if a[0] == 503]
    assert any("lost the world's write lock" in text for text in refused)
    assert all("nothing was written" in text for text in refused)
    assert_redemptions_match_answers(other.base, {ref: a[0] for ref, a in answers.items()}, LOAD_POINTS,
                                     5000, LOAD_CUSTOMER)


def test_redis_killed_and_restarted_under_load_loses_no_acknowledged_write(world):
    server, paused, other = world
    stop, answers = threading.Event(), {}
    pool, futures = load([paused.base, other.base], stop, answers)
    try:
        time.sleep(1)
        server.kill()
        killed_at = time.monotonic()
        time.sleep(1)
        restarting_at = time.monotonic()
        server.start()
        back_at = time.monotonic()
        time.sleep(2)
    finally:
        stop.set()
        for future in futures:
            future.result()
        pool.shutdown()
    during = [a for a in answers.values() if killed_at + 0.5 < a[1] < restarting_at]
    assert during and {a[0] for a in during} == {503}  # not a 500, not a hang
    first_after = min(a[1] for a in answers.values() if a[1] > back_at and a[0] == 200)
    # Within a second of the restart; or, when a writer held the world's lock as Redis died, once that lock (kept in
    # the append-only file with its expiry) has lived out its LOCK_SECONDS, which may end just past that second.
    assert first_after < max(back_at + 1.0, killed_at + LOCK_SECONDS + 0.5)
    assert_redemptions_match_answers(other.base, {ref: a[0] for ref, a in answers.items()}, LOAD_POINTS,
                                     5000, LOAD_CUSTOMER)
    assert_races_keep_their_rules(paused.base, other.base, allow_503=False)
    # Calm: one line when Redis went away and one when it came back, whatever the workers; no traceback.
    for instance in (paused, other):
        log = instance.log.read_text()
        assert "Traceback" not in log
        assert log.count("is unreachable") == 1 and log.count("is back") == 1


def test_health_says_the_backend_is_down_and_then_that_the_data_vanished(world):
    server, paused, other = world
    server.kill()
    try:
        answer = requests.get(other.base + "/_sandbox/health", timeout=TIMEOUT)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert "unreachable" in answer.json()["error"]["message"]
    finally:
        server.start()
    server.client.flushall()  # what a restart without persistence leaves
    answer = requests.get(other.base + "/_sandbox/health", timeout=TIMEOUT)
    assert answer.status_code == 503 and "POST /_sandbox/reset" in answer.json()["error"]["message"]
    # Issue 26: a vendor call says the same (it was a 401 "Invalid API key": the credentials went too).
    vendor = requests.patch(paused.base + "/returning-ai/v1/purchase-histories/" + ORDER_A,
                            json={"redemptionInstructions": "x"}, headers=RAI, timeout=TIMEOUT)
    assert vendor.status_code == 503 and vendor.json()["message"] == answer.json()["error"]["message"]
    assert requests.post(other.base + "/_sandbox/reset", json={}, timeout=TIMEOUT).status_code == 200
    assert requests.get(paused.base + "/_sandbox/health", timeout=TIMEOUT).json()["backend"] == {
        "kind": "redis", "state": "up"}


def test_a_rate_limit_costs_one_round_trip_and_none_when_off(world):
    """Issue 30 point 1: counting a request against its credential's window is one atomic increment (HINCRBY), in a
    round trip of its own; a world without limits pays none. Measured on the same read in two workspaces."""
    server, paused, other = world
    costs = {}
    for name, limits in (("off", None), ("on", {"returning-ai": {"requests": 1000, "windowSeconds": 3600}})):
        made = requests.post(paused.base + "/_sandbox/workspaces", timeout=TIMEOUT,
                             json={"size": 2, **({"rateLimits": limits} if limits else {})}).json()
        key = next(c["headers"] for c in made["credentials"] if c["name"] == "XXXXXX")
        url = paused.base + "/returning-ai/v1/redemption-statuses/list"

        def send():
            assert requests.post(url, json={"page": 1, "limit": 1}, headers=key, timeout=TIMEOUT).status_code == 200

        send()
        send()  # the window's first request also forgets the last window's counter: not this one
        costs[name] = round_trips(server, send)
        requests.delete(f"{paused.base}/_sandbox/workspaces/{made['id']}", timeout=TIMEOUT)
    assert costs["on"] == costs["off"] + 1, costs
