"""What partners import for their own tests: start_sandbox() and the redemption_sandbox fixture."""
import json
import urllib.request

from sandbox.testing import start_sandbox


def test_start_sandbox_gives_a_base_url_and_credentials():
    with start_sandbox() as sandbox:
        request = urllib.request.Request(
            f"{sandbox.base_url}/returning-ai/v1/purchase-histories/ORD202641612055614747", method="PATCH",
            data=json.dumps({"redemptionInstructions": "From a partner's test"}).encode(),
            headers={**sandbox.headers("returning-ai", "XXXXXX"), "Content-Type": "application/json"})
        body = json.load(urllib.request.urlopen(request, timeout=5))
        assert body["data"]["product"]["redemptionInstructions"] == "From a partner's test"
        sandbox.reset()
        store = sandbox.app.extensions["sandbox"].store
        assert store.get("rai_purchase_histories", "507f1f77bcf86cd799439012")["product"]["redemptionInstructions"] \
            != "From a partner's test"


def test_pytest_fixture(redemption_sandbox):
    health = json.load(urllib.request.urlopen(f"{redemption_sandbox.base_url}/_sandbox/health", timeout=5))
    assert health["status"] == "ok"
    assert redemption_sandbox.headers("fabric")["x-fabric-tenant-id"] == "61a5f0c2b3d4e5f6a7b8c9d0"


def test_headers_select_a_credential_by_its_stable_name(redemption_sandbox):
    """By name, as GET /_sandbox/credentials lists it; the default is the vendor's first, the documents' own."""
    assert redemption_sandbox.headers("returning-ai") == {"Authorization": "Bearer XXXXXX"}
    assert redemption_sandbox.headers("returning-ai", "rai_test_no_read") == {"Authorization": "Bearer rai_test_no_read"}
    assert redemption_sandbox.headers("fabric", "fabric-second-tenant-token")["Authorization"] == \
        "Bearer fabric-second-tenant-token"
    assert redemption_sandbox.headers("capillary", "store.server") == {
        "Authorization": "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3"}
    import pytest

    with pytest.raises(LookupError, match="rai_test_expired"):  # a phrase of a purpose is no name: say the names
        redemption_sandbox.headers("returning-ai", "placeholder")


def test_credential_names_are_the_same_in_a_workspace(client):
    """A workspace's credentials carry its suffix; their names do not."""
    default = {c["name"] for c in client.get("/_sandbox/credentials").get_json()["credentials"]}
    created = client.post("/_sandbox/workspaces", json={}).get_json()
    names = {c["name"] for c in created["credentials"]}
    assert names == default and {"XXXXXX", "fabric-demo-token", "store.server", "cap-demo-client"} <= names
    suffixed = next(c for c in created["credentials"] if c["name"] == "XXXXXX")
    assert suffixed["headers"]["Authorization"].startswith("Bearer XXXXXX.")
