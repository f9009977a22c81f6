"""Issue 28: a clock per world (core/clock.py, specs/sandbox.yaml /clock). Freeze it, move it forward; every stamp
and expiry of the world obeys it; the same seed, size, clock and requests give byte-identical answers."""
import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from helpers import CAPILLARY, FABRIC, PATCH_URL, bearer, strict_app
from services import drop_prefix, unique_prefix

ROOT = Path(__file__).resolve().parent.parent
T = "2027-03-01T09:00:00.000Z"
T_MS = int(datetime(2027, 3, 1, 9, tzinfo=timezone.utc).timestamp() * 1000)
WORKSPACE = "X-Sandbox-Workspace"

# The API's own rules, checked once; what a backend decides is checked on every backend (marked so below).
pytestmark = pytest.mark.backends("memory")
ACTIVE_VOUCHER_ORDER = "/returning-ai/v1/purchase-histories/ORD202641612055614748"  # GOLD-TAKEN-0001, active


def clock(client, headers=None):
    return client.get("/_sandbox/clock", headers=headers or {}).get_json()


def held(client, headers=None):
    """The clock without its offset from the wall clock (which a frozen clock's changes as the wall clock runs)."""
    return {k: v for k, v in clock(client, headers).items() if k != "offsetSeconds"}


def set_clock(client, body, headers=None):
    return client.post("/_sandbox/clock", json=body, headers=headers or {})


# -- point 1: the clock's API ----------------------------------------------------------------------------------
def test_a_world_starts_on_the_wall_clock_and_freezes_advances_resumes_and_goes_back_to_it(client):
    before = datetime.now(timezone.utc)
    running = clock(client)
    assert running["frozen"] is False and running["start"] is None and abs(running["offsetSeconds"]) < 1
    assert before.isoformat()[:16] <= running["now"][:16]  # the wall clock, to the minute
    frozen = set_clock(client, {"freezeAt": "2099-01-01T00:00:00+01:00"})
    assert frozen.status_code == 200
    assert frozen.get_json()["now"] == "2098-12-31T23:00:00.000Z" and frozen.get_json()["frozen"] is True
    assert clock(client)["now"] == "2098-12-31T23:00:00.000Z"  # frozen: it does not move by itself
    advanced = set_clock(client, {"advanceSeconds": 90.5}).get_json()
    assert advanced["now"] == "2098-12-31T23:01:30.500Z" and advanced["frozen"] is True
    assert set_clock(client, {"freeze": True}).get_json()["now"] == "2098-12-31T23:01:30.500Z"  # where it stands
    resumed = set_clock(client, {"resume": True}).get_json()
    assert resumed["frozen"] is False and resumed["now"] >= "2098-12-31T23:01:30.500Z"
    ahead = set_clock(client, {"advanceSeconds": 60}).get_json()  # a running clock runs on from there
    assert ahead["frozen"] is False and ahead["now"] >= "2098-12-31T23:02:30.500Z"
    assert ahead["offsetSeconds"] > 2_000_000_000
    stopped = set_clock(client, {"freeze": True}).get_json()
    assert stopped["frozen"] is True and stopped["now"] >= ahead["now"]
    assert clock(client)["now"] == stopped["now"]


@pytest.mark.parametrize("body, says", [
    ({"freezeAt": "2020-01-01T00:00:00Z"}, "would move this world's clock back"),
    ({"real": True}, "would move this world's clock back"),
    ({"freezeAt": "1969-12-31T23:59:59Z"}, "1970 to 9999"),
    ({"freezeAt": "2027-01-01"}, "ISO-8601 date-time with a time zone"),
    ({"freezeAt": "2027-01-01T00:00:00"}, "ISO-8601 date-time with a time zone"),
    ({"freezeAt": "2027-02-30T00:00:00Z"}, "ISO-8601 date-time with a time zone"),
    ({"advanceSeconds": 0}, "from 0.001"),
    ({"advanceSeconds": -5}, "from 0.001"),
    ({"advanceSeconds": 1e-9}, "from 0.001"),
    ({"advanceSeconds": 3155760001}, "100 years"),
    ({"advanceSeconds": "60"}, "advanceSeconds"),
    ({}, "exactly one of"),
    ({"resume": True, "advanceSeconds": 1}, "exactly one of"),
    ({"resume": False}, "resume must be true"),
    ({"freeze": "yes"}, "freeze must be true"),
    ({"rewind": 5}, "exactly one of"),
])
def test_a_clock_change_that_is_absurd_or_backwards_is_a_400_that_says_why_and_changes_nothing(client, body, says):
    """Rule (specs/sandbox.yaml setClock): a clock only moves forward, to moments 1970-9999, by at most 100 years."""
    set_clock(client, {"freezeAt": "2099-06-01T00:00:00Z"})
    before = held(client)
    r = set_clock(client, body)
    assert r.status_code == 400 and says in r.get_json()["error"]["message"], r.get_json()
    assert held(client) == before


def test_a_running_clock_stops_at_the_end_of_9999_rather_than_past_what_a_timestamp_can_print(client):
    set_clock(client, {"freezeAt": "9999-12-31T23:59:59.500Z"})
    assert set_clock(client, {"resume": True}).status_code == 200
    import time
    time.sleep(0.6)
    assert clock(client)["now"] == "9999-12-31T23:59:59.999Z"
    r = client.patch(PATCH_URL, json={"redemptionInstructions": "At the end of time."}, headers=bearer())
    assert r.status_code == 200 and r.get_json()["data"]["updatedAt"] == "9999-12-31T23:59:59.999Z"
    refused = set_clock(client, {"advanceSeconds": 1})
    assert refused.status_code == 400 and "1970 to 9999" in refused.get_json()["error"]["message"]


def test_nan_and_infinity_are_refused_as_json_forbids_them(client):
    before = clock(client)["start"]
    for text in ('{"advanceSeconds": NaN}', '{"advanceSeconds": Infinity}'):
        r = client.post("/_sandbox/clock", data=text, content_type="application/json")
        assert r.status_code == 400 and "JSON does not allow" in r.get_json()["error"]["message"]
    assert clock(client)["frozen"] is False and clock(client)["start"] == before


def test_each_workspace_has_its_own_clock_and_a_reset_puts_a_clock_back_where_its_world_started(client):
    workspace = client.post("/_sandbox/workspaces", json={"size": 2, "clock": T}).get_json()
    ws = {WORKSPACE: workspace["id"]}
    assert held(client, ws) == {"now": T, "frozen": True, "start": T}
    assert set_clock(client, {"advanceSeconds": 86400}, ws).get_json()["now"] == "2027-03-02T09:00:00.000Z"
    assert clock(client)["frozen"] is False  # the default world's is untouched
    assert client.post("/_sandbox/reset", headers=ws).status_code == 200
    assert clock(client, ws)["now"] == T
    set_clock(client, {"freezeAt": "2099-01-01T00:00:00Z"})
    client.post("/_sandbox/reset")
    assert clock(client)["frozen"] is False and clock(client)["start"] is None  # the wall clock again
    refused = client.post("/_sandbox/workspaces", json={"clock": "1900-01-01T00:00:00Z"})
    assert refused.status_code == 400 and "1970 to 9999" in refused.get_json()["error"]["message"]
    assert [w["id"] for w in client.get("/_sandbox/workspaces").get_json()["workspaces"]] == [workspace["id"]]


@pytest.mark.backends("memory", "sqlite", "redis")
def test_the_clock_is_part_of_the_state_export_and_import(client):
    set_clock(client, {"freezeAt": T})
    exported = client.get("/_sandbox/state/export").get_json()
    assert exported["clock"] == {"frozenAt": T, "offsetMs": 0, "start": None}
    set_clock(client, {"advanceSeconds": 3600})
    assert client.post("/_sandbox/state/import", json=exported).status_code == 200
    assert clock(client)["now"] == T
    older = {k: v for k, v in exported.items() if k != "clock"}  # an export from before clocks: kept as it is
    set_clock(client, {"advanceSeconds": 60})
    assert client.post("/_sandbox/state/import", json=older).status_code == 200
    assert clock(client)["now"] == "2027-03-01T09:01:00.000Z"
    bad = {**exported, "clock": {"frozenAt": "0001-01-01T00:00:00Z", "offsetMs": 0, "start": None}}
    r = client.post("/_sandbox/state/import", json=bad)
    assert r.status_code == 400 and "1970 to 9999" in r.get_json()["error"]["message"]
    assert clock(client)["now"] == "2027-03-01T09:01:00.000Z"


def test_every_process_on_one_database_reads_the_same_clock(tmp_path):
    """Point 1: kept in the world's store, so another process (here another app on the same file) reads it."""
    db = str(tmp_path / "shared.db")
    first = strict_app(backend="sqlite", db=db, size=2).test_client()
    second = strict_app(backend="sqlite", db=db, size=2).test_client()
    set_clock(first, {"freezeAt": T})
    assert clock(second)["now"] == T
    set_clock(second, {"advanceSeconds": 1})
    assert clock(first)["now"] == "2027-03-01T09:00:01.000Z"


def test_a_clock_change_is_a_control_call_like_any_other(tmp_path):
    """Point 5: the admin token guards it, and a web page of another origin cannot move it."""
    guarded = strict_app(size=2, admin_token="s3cret").test_client()
    assert set_clock(guarded, {"freezeAt": T}).status_code == 401
    assert set_clock(guarded, {"freezeAt": T}, {"X-Sandbox-Admin-Token": "s3cret"}).status_code == 200
    r = set_clock(guarded, {"advanceSeconds": 1}, {"X-Sandbox-Admin-Token": "s3cret", "Origin": "https://evil.example"})
    assert r.status_code == 403
    assert clock(guarded, {"X-Sandbox-Admin-Token": "s3cret"})["now"] == T


@pytest.mark.backends("memory", "sqlite", "redis")
# -- point 2: every stamp reads the world's clock --------------------------------------------------------------
def test_every_stamp_a_vendor_writes_carries_the_worlds_time(client):
    set_clock(client, {"freezeAt": T})
    patched = client.patch(PATCH_URL, json={"voucherCode": "CLOCK-1", "voucherExpiryDate": "31/12/2027"},
                           headers=bearer()).get_json()["data"]
    assert patched["updatedAt"] == T
    voucher = client.get(f"/_sandbox/state/rai_vouchers?id={patched['voucher']['_id']}").get_json()["records"][0]
    assert voucher["updatedAt"] == T
    status = client.post("/returning-ai/v1/redemption-statuses/create", headers=bearer(),
                         json={"name": "Clocked", "category": "incomplete", "color": "#3EA1FD"}).get_json()["data"]
    stored = client.get(f"/_sandbox/state/rai_redemption_statuses?id={status['_id']}").get_json()["records"][0]
    assert stored["createdAt"] == T
    put = client.put("/returning-ai/v1/redemption-transactions/status", headers=bearer(),
                     json={"transactionId": "ORD20260102ffc6", "statusId": "695e2f8b3358520a2ecf86e4"})
    assert put.status_code == 200, put.get_json()
    history = client.post("/returning-ai/v1/redemption-transactions/status-history", headers=bearer(),
                          json={"transactionId": "ORD20260102ffc6"}).get_json()["data"]["history"]
    assert history[-1]["changedAt"] == T
    fabric = client.post("/fabric/v3/redemptions", headers={**FABRIC, "x-fabric-channel-id": "12"}, json={
        "promotionId": "614b58924e92f6861ac91234", "orderId": "CLOCK-1", "couponCode": "BESTSUMMER"}).get_json()
    assert fabric["createdAt"] == fabric["updatedAt"] == T
    redeemed = client.post("/capillary/v2/customers/109943742/redemptions", headers=CAPILLARY,
                           json={"points": 1}).get_json()
    assert redeemed["redemptionTime"] == redeemed["pointsRedemptionTime"] == T_MS
    assert redeemed["redemptionDate"] == "2027-03-01T09:00:00Z"
    reversed_ = client.post("/capillary/v2/points/reverse", headers=CAPILLARY, json={
        "redemptionId": redeemed["redemptionId"], "pointsToBeReversed": 1,
        "identifier": {"type": "ID", "value": "109943742"}})
    assert reversed_.status_code == 200
    reversal = client.get(f"/_sandbox/state/cap_reversals?id={reversed_.get_json()['reversalId']}").get_json()
    assert reversal["records"][0]["at"] == T_MS
    events = client.get("/_sandbox/events").get_json()["events"]
    assert len(events) >= 7 and {e["time"] for e in events} == {T}
    journal = client.get("/_sandbox/requests").get_json()["requests"]
    assert {e["worldTime"] for e in journal} == {T}
    assert all(e["time"][:4] != "2027" for e in journal)  # the wall clock, for whoever debugs


def test_no_vendor_module_reads_the_wall_clock():
    """Point 2: vendors take the world's time from the request (call.now); none calls time.time, datetime.now,
    utcnow, today or the journal's wall_now_iso."""
    forbidden = {"time", "time_ns", "now", "utcnow", "today", "wall_now_iso", "monotonic"}
    found = []
    for path in (ROOT / "sandbox" / "vendors").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in forbidden:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}()")
    assert found == []


# -- point 3: every expiry obeys it ----------------------------------------------------------------------------
def test_a_capillary_token_expires_when_the_worlds_clock_passes_its_life(client):
    set_clock(client, {"freezeAt": T})
    issued = client.post("/capillary/v3/oauth/token/generate",
                         json={"key": "cap-demo-client", "secret": "cap-demo-secret"}).get_json()["data"]
    token = {"X-CAP-API-OAUTH-TOKEN": issued["accessToken"]}
    ask = "/capillary/v1.1/points/isredeemable?mobile=919999999999&points=1"
    assert client.get(ask, headers=token).status_code == 200
    set_clock(client, {"advanceSeconds": issued["ttlSeconds"] - 1})
    assert client.get(ask, headers=token).status_code == 200
    set_clock(client, {"advanceSeconds": 1})
    r = client.get(ask, headers=token)
    assert r.status_code == 401 and "expired" in r.get_data(as_text=True)
    fresh = client.post("/capillary/v3/oauth/token/generate",
                        json={"key": "cap-demo-client", "secret": "cap-demo-secret"}).get_json()["data"]
    assert client.get(ask, headers={"X-CAP-API-OAUTH-TOKEN": fresh["accessToken"]}).status_code == 200


def test_a_returning_ai_key_expires_when_the_worlds_clock_reaches_its_expires_at(client):
    """fixtures/returning-ai.yaml: rai_test_expired expires at 2026-01-01T00:00:00.000Z."""
    body = {"page": 1, "limit": 1}
    url = "/returning-ai/v1/redemption-statuses/list"
    # The default world runs on the wall clock, which is past it.
    assert client.post(url, json=body, headers=bearer("rai_test_expired")).status_code == 401
    workspace = client.post("/_sandbox/workspaces", json={"size": 2, "clock": "2025-12-31T23:59:59Z"}).get_json()
    key = next(c for c in workspace["credentials"] if c["name"].startswith("rai_test_expired"))
    headers = {**key["headers"], WORKSPACE: workspace["id"]}
    assert client.post(url, json=body, headers=headers).status_code == 200
    set_clock(client, {"advanceSeconds": 1}, {WORKSPACE: workspace["id"]})
    r = client.post(url, json=body, headers=headers)
    assert r.status_code == 401 and "expired at 2026-01-01T00:00:00.000Z" in r.get_json()["message"]


def test_a_voucher_reads_expired_once_the_worlds_clock_passes_its_expiry_date(client):
    """The sandbox's reading (specs/returning-ai.yaml, voucher.status): an active voucher reads expired from its
    expiryDate on; the stored status stays active."""
    set_clock(client, {"freezeAt": "2027-12-30T00:00:00Z"})
    body = {"voucherCode": "EXPIRING-1", "voucherExpiryDate": "31/12/2027"}
    voucher = client.patch(ACTIVE_VOUCHER_ORDER, json=body, headers=bearer()).get_json()["data"]["voucher"]
    assert voucher["status"] == "active" and voucher["expiryDate"] == "2027-12-31T00:00:00.000Z"
    set_clock(client, {"advanceSeconds": 86400})
    again = client.patch(ACTIVE_VOUCHER_ORDER, json={"redemptionInstructions": "Later."}, headers=bearer()).get_json()["data"]
    assert again["voucher"]["status"] == "expired"
    stored = client.get(f"/_sandbox/state/rai_vouchers?id={voucher['_id']}").get_json()["records"][0]
    assert stored["status"] == "active"
    renewed = client.patch(ACTIVE_VOUCHER_ORDER, json={**body, "voucherExpiryDate": "31/12/2028"}, headers=bearer())
    assert renewed.get_json()["data"]["voucher"]["status"] == "active"


def test_moving_a_workspaces_clock_never_deletes_it():
    """Workspace expiry (--workspace-ttl) stays on the wall clock (README, Time)."""
    client = strict_app(size=2, workspace_ttl=60).test_client()
    workspace = client.post("/_sandbox/workspaces", json={"size": 2}).get_json()["id"]
    assert set_clock(client, {"advanceSeconds": 10 * 365 * 86400}, {WORKSPACE: workspace}).status_code == 200
    assert [w["id"] for w in client.get("/_sandbox/workspaces").get_json()["workspaces"]] == [workspace]


# -- point 4: deterministic ------------------------------------------------------------------------------------
RECORDED = yaml.safe_load((ROOT / "tests" / "partner_requests.yaml").read_text(encoding="utf-8"))


def replay(client, rows) -> list[bytes]:
    """Every recorded request (a valid and an invalid one of every vendor operation, tests/partner_requests.yaml)
    with the vendor's demo credential, a clock step after each vendor's requests, and the Capillary token used:
    the answers' bodies, byte for byte."""
    sandbox = client.application.extensions["sandbox"]
    credentials = {c["vendor"]: c["headers"] for c in reversed(client.get("/_sandbox/credentials").get_json()["credentials"])}
    bodies = []
    for vendor, row in rows:
        base = sandbox.specs[vendor].base_paths[0]
        headers = {**({} if row.get("auth") == "none" else credentials[vendor]), **row.get("headers", {})}
        r = client.open(base + row["path"], method=row["method"], json=row.get("body"), query_string=row.get("query"),
                        headers=headers)
        assert r.status_code == row["status"], (row, r.get_data()[:300])
        bodies.append(r.get_data())
        if row["operation"] == "generateOAuthToken" and r.status_code == 200:
            token = {"X-CAP-API-OAUTH-TOKEN": r.get_json()["data"]["accessToken"]}
            again = client.post(base + "/v2/customers/109943742/redemptions", json={"points": 3}, headers=token)
            bodies.append(again.get_data())
        bodies.append(set_clock(client, {"advanceSeconds": 61.25}).get_data()[:40])  # its "now", not the offset
    bodies.append(client.get("/_sandbox/events").get_data())
    return bodies


ROWS = [(vendor, row) for vendor in ("returning-ai", "fabric", "capillary") for row in RECORDED[vendor]]


@pytest.mark.backends("memory", "sqlite", "redis")
def test_the_same_seed_size_clock_and_requests_give_byte_identical_answers(backend_settings, redis_url):
    """Point 4, on every backend: two fresh sandboxes, the same sequence touching every vendor operation that
    writes (and the rest), answer the same bytes."""
    settings = dict(backend_settings, size=20, clock="2027-01-01T00:00:00Z")
    first = replay(strict_app(**settings).test_client(), ROWS)
    other = dict(settings, redis_prefix=unique_prefix()) if settings["backend"] == "redis" else settings
    try:
        second = replay(strict_app(**other).test_client(), ROWS)
    finally:
        if settings["backend"] == "redis":
            drop_prefix(redis_url, other["redis_prefix"])
    assert len(first) > len(ROWS) and first == second


def test_answers_stay_byte_identical_across_a_restart_on_the_same_database(tmp_path):
    settings = dict(backend="sqlite", size=20, clock="2027-01-01T00:00:00Z")
    straight = replay(strict_app(**settings, db=str(tmp_path / "straight.db")).test_client(), ROWS)
    half = len(ROWS) // 2
    db = str(tmp_path / "restarted.db")
    before = replay(strict_app(**settings, db=db).test_client(), ROWS[:half])
    after = replay(strict_app(**settings, db=db).test_client(), ROWS[half:])  # a new process on the same file
    # The events' dump comes after each part; what matters is every answer and the final events.
    assert before[:-1] + after == straight


def test_an_imported_clock_must_land_within_1970_to_9999_and_a_damaged_one_still_reads(client, sandbox):
    """Found by the adversarial pass: an export whose running clock's offset put it before 1970 was imported, then
    every request (health, reset, import) was a 500, and a --db world could not start again."""
    exported = client.get("/_sandbox/state/export").get_json()
    for offset in (-315576000000000, -1900000000000, 315576000000000):
        r = client.post("/_sandbox/state/import", json={**exported, "clock": {"frozenAt": None, "offsetMs": offset,
                                                                             "start": None}})
        assert r.status_code == 400 and "1970 to 9999" in r.get_json()["error"]["message"]
    assert held(client)["frozen"] is False and abs(clock(client)["offsetSeconds"]) < 1
    sandbox.default.store.put("_world", "time", {"frozenAt": None, "offsetMs": -10 ** 15, "start": None})
    assert clock(client)["now"] == "1970-01-01T00:00:00.000Z"  # damaged by hand: read as 1970, never a 500
    assert client.post("/_sandbox/reset").status_code == 200
    assert abs(clock(client)["offsetSeconds"]) < 1


@pytest.mark.parametrize("moment", ["20270101T000000Z", "2027-01-01 00:00Z", "2027-W01-1T00:00Z"])
def test_run_py_clock_takes_exactly_the_moments_the_api_takes(moment):
    from sandbox import cli as run

    with pytest.raises(SystemExit) as exit_:
        run.parse_args(["--clock", moment])
    assert exit_.value.code == 2
    refused = strict_app(size=2).test_client().post("/_sandbox/workspaces", json={"clock": moment})
    assert refused.status_code == 400
