"""A large reset or import on Redis (issue 26 point 2): written in short steps, never one long script that makes
Redis answer every other client BUSY; the world marked as being replaced meanwhile, so that others get a quick 503
saying so instead of waiting for its lock or reading half a world; a step cut off leaves the world marked as
incomplete, and a reset repairs it."""
import threading
import time

import pytest
import redis

from helpers import PATCH_URL, bearer
from sandbox import Settings, create_app
from services import REDIS_MISSING, drop_prefix, unique_prefix

LARGE = 8000  # records per vendor collection: about 80,000 keys, a one-script commit of about 0.8 s before


@pytest.fixture
def shared(redis_url):
    if redis_url is None:
        pytest.skip(REDIS_MISSING)
    prefix = unique_prefix()
    settings = Settings(backend="redis", redis_url=redis_url, redis_prefix=prefix, size=5, strict_responses=True)
    yield create_app(settings).test_client(), create_app(settings).test_client(), redis.Redis.from_url(redis_url)
    drop_prefix(redis_url, prefix)


def test_a_large_reset_runs_in_short_scripts_and_everyone_else_is_answered_at_once(shared):
    resetter, other, server = shared
    before = other.get("/_sandbox/state").get_json()["collections"]
    server.config_set("slowlog-log-slower-than", 100_000)  # microseconds
    server.slowlog_reset()
    answers, done = [], threading.Event()

    def keep_asking():
        while not done.is_set():
            for method, path, body, headers in (("PATCH", PATCH_URL, {"redemptionInstructions": "During"}, bearer()),
                                                ("GET", "/_sandbox/state", None, {}),
                                                ("GET", "/_sandbox/health", None, {})):
                started = time.monotonic()
                answer = other.open(path, method=method, json=body, headers=headers)
                answers.append((path, answer.status_code, answer.get_json(), time.monotonic() - started))

    askers = [threading.Thread(target=keep_asking) for _ in range(3)]
    for asker in askers:
        asker.start()
    reset = resetter.post("/_sandbox/reset", json={"size": LARGE})
    done.set()
    for asker in askers:
        asker.join()
    assert reset.status_code == 200 and reset.get_json()["size"] == LARGE
    slow = [(entry["duration"] // 1000, entry["command"][:40]) for entry in server.slowlog_get(128)]
    assert slow == [], f"scripts that held Redis 100 ms or more (ms, command): {slow}"
    after = other.get("/_sandbox/state").get_json()["collections"]
    refused = [a for a in answers if a[1] == 503]
    assert {status for _, status, _, _ in answers} <= {200, 503}, [a for a in answers if a[1] not in (200, 503)]
    assert refused, "no request came while the world was being replaced"
    for path, _, body, _ in refused:
        message = body["message"] if path == PATCH_URL else body["error"]["message"]
        assert message.startswith("This world is being replaced by a reset or an import under way; nothing was "
                                  "written. Retry in a second."), message
    # A reader sees the world before or after, never half of it.
    for path, status, body, _ in answers:
        if path == "/_sandbox/state" and status == 200:
            assert body["collections"] in (before, after), body["collections"]
    latencies = sorted(seconds for _, _, _, seconds in answers)
    assert latencies[int(len(latencies) * 0.99)] < 1.0, latencies[-5:]


def test_a_reset_cut_off_part_way_leaves_the_world_marked_incomplete_until_a_reset_replaces_it(shared, monkeypatch):
    from sandbox.storage.redis import store as redis_store

    resetter, other, _ = shared
    steps = []
    apply = redis_store.RedisStore._apply

    def stopped_after_two_steps(self, instructions, token, mode="all", commit_id=None):
        if mode == "step":
            steps.append(mode)
            if len(steps) > 2:  # Redis "goes away" after two steps of the new world were written
                raise redis_store.StoreUnavailable("unreachable", reachable=False)
        return apply(self, instructions, token, mode, commit_id)

    monkeypatch.setattr(redis_store.RedisStore, "_apply", stopped_after_two_steps)
    answer = resetter.post("/_sandbox/reset", json={"size": 500})
    assert answer.status_code == 503 and "part-way through replacing the world: it is incomplete. POST " \
                                          "/_sandbox/reset" in answer.get_json()["error"]["message"]
    monkeypatch.undo()
    time.sleep(2.2)  # the cut-off writer's lock expires (storage/redis/lock.py: LOCK_SECONDS)
    for refused in (other.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers=bearer()),
                    other.get("/_sandbox/health")):
        assert refused.status_code == 503
        assert "stopped part-way" in refused.get_data(as_text=True)
    assert other.post("/_sandbox/reset", json={"size": 5}).status_code == 200
    assert other.patch(PATCH_URL, json={"redemptionInstructions": "x"}, headers=bearer()).status_code == 200
    assert resetter.get("/_sandbox/health").status_code == 200


def test_a_commit_whose_answer_never_came_says_it_may_have_been_applied(shared, monkeypatch):
    """Issue 26 point 2: once the commit was sent, a Redis that stops answering leaves its outcome unknown; the 503
    said "nothing was written", which a client retrying a refund takes at its word."""
    from sandbox.storage.redis.client import RedisLink

    client, _, _ = shared
    run = RedisLink.run

    def commit_unanswered(self, script, keys, args):
        if args and args[6:7] == ["all"] and len(args) > 7:  # a commit with writes: sent, its answer lost
            run(self, script, keys, args)
            raise redis.ConnectionError("connection lost")
        return run(self, script, keys, args)

    monkeypatch.setattr(RedisLink, "run", commit_unanswered)
    answer = client.patch(PATCH_URL, json={"redemptionInstructions": "Maybe"}, headers=bearer())
    monkeypatch.undo()
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.get_json()["message"] == ("The sandbox's Redis store stopped answering while this request's write "
                                            "was being committed: it may have been applied. Read the state before "
                                            "retrying.")
    record = client.get("/_sandbox/state/rai_purchase_histories?id=507f1f77bcf86cd799439012").get_json()["records"][0]
    assert record["product"]["redemptionInstructions"] == "Maybe"  # it had been, indeed
