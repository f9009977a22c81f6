"""Two sandbox instances on one backend serve one world (issue 8): what one is told, the other knows.

On SQLite the instances share a database file (worker processes of one machine); on Redis they share a server
and key prefix (instances on several hosts behind a load balancer)."""
import pytest

from sandbox import Settings, create_app
from services import REDIS_MISSING, drop_prefix, unique_prefix
from helpers import PATCH_URL

RAI = {"Authorization": "Bearer XXXXXX"}
@pytest.fixture(params=["sqlite", "redis"])
def two_instances(request, tmp_path):
    if request.param == "sqlite":
        settings = dict(backend="sqlite", db=str(tmp_path / "shared.db"))
        prefix = None
    else:
        url = request.getfixturevalue("redis_url")
        if url is None:
            pytest.skip(REDIS_MISSING)
        prefix = unique_prefix()
        settings = dict(backend="redis", redis_url=url, redis_prefix=prefix)
    first = create_app(Settings(size=5, strict_responses=True, **settings)).test_client()
    # The second instance finds the world seeded and joins it, even when started with another seed.
    second = create_app(Settings(size=5, seed=99, strict_responses=True, **settings)).test_client()
    yield first, second
    if prefix:
        drop_prefix(request.getfixturevalue("redis_url"), prefix)


def test_a_joining_instance_serves_the_existing_world(two_instances):
    first, second = two_instances
    assert second.get("/_sandbox/health").get_json()["seed"] == 2026
    assert first.patch(PATCH_URL, json={"redemptionInstructions": "Written through the first"},
                       headers=RAI).status_code == 200
    record = second.get("/_sandbox/state/rai_purchase_histories?id=507f1f77bcf86cd799439012").get_json()["records"][0]
    assert record["product"]["redemptionInstructions"] == "Written through the first"


def test_rules_journal_events_and_workspaces_are_shared(two_instances):
    first, second = two_instances
    first.post("/_sandbox/faults", json={"vendor": "returning-ai", "operation": "updatePurchaseHistory",
                                         "fault": "rate-limit", "count": 1})
    assert second.patch(PATCH_URL, json={"redemptionInstructions": "A"}, headers=RAI).status_code == 429
    assert first.patch(PATCH_URL, json={"redemptionInstructions": "B"}, headers=RAI).status_code == 200
    assert [e["status"] for e in second.get("/_sandbox/requests").get_json()["requests"]] == [429, 200]
    assert [e["name"] for e in first.get("/_sandbox/events").get_json()["events"]] == ["update:purchase-history"]
    workspace = first.post("/_sandbox/workspaces", json={"size": 5}).get_json()
    assert [w["id"] for w in second.get("/_sandbox/workspaces").get_json()["workspaces"]] == [workspace["id"]]
    headers = next(c["headers"] for c in workspace["credentials"] if c["headers"].get("Authorization", "").startswith(
        "Bearer XXXXXX."))
    assert second.patch(PATCH_URL, json={"redemptionInstructions": "In the workspace"}, headers=headers).status_code == 200
    assert second.delete(f"/_sandbox/workspaces/{workspace['id']}").status_code == 200
    assert first.patch(PATCH_URL, json={"redemptionInstructions": "Gone"}, headers=headers).status_code == 401


def test_a_reset_through_one_instance_reseeds_for_both(two_instances):
    first, second = two_instances
    first.patch(PATCH_URL, json={"redemptionInstructions": "Before the reset"}, headers=RAI)
    assert second.post("/_sandbox/reset", json={"seed": 7}).get_json()["seed"] == 7
    assert first.get("/_sandbox/health").get_json()["seed"] == 7
    record = first.get("/_sandbox/state/rai_purchase_histories?id=507f1f77bcf86cd799439012").get_json()["records"][0]
    assert record["product"]["redemptionInstructions"] != "Before the reset"
    assert first.get("/_sandbox/requests").get_json()["requests"] == []
