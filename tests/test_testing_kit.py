"""What partners import for their own tests: start_sandbox() and the redemption_sandbox fixture."""
import json
import urllib.request

from sandbox.testing import start_sandbox


def test_start_sandbox_gives_a_base_url_and_credentials():
    with start_sandbox() as sandbox:
        request = urllib.request.Request(
            f"{sandbox.base_url}/returning-ai/v1/purchase-histories/ORD202641612055614747", method="PATCH",
            data=json.dumps({"redemptionInstructions": "From a partner's test"}).encode(),
            headers={**sandbox.headers("returning-ai", "placeholder"), "Content-Type": "application/json"})
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
