"""What partners import for their own tests: start_sandbox(), and the plugin's redemption_sandbox and
sandbox_workspace fixtures."""
import json
import urllib.request
from pathlib import Path

import pytest

from sandbox import Settings
from sandbox.testing import start_sandbox
from services import free_port

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


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


# -- issue 32 point 2: a plugin that fits pytest ------------------------------------------------------------------
PARTNER_TESTS = '''
import json, urllib.request

PATCH = "/returning-ai/v1/purchase-histories/ORD202641612055614747"


def send(workspace, voucher):
    request = urllib.request.Request(workspace.base_url + PATCH, method="PATCH",
                                     data=json.dumps({"voucherCode": voucher, "voucherExpiryDate": "31/12/2030"}).encode(),
                                     headers={**workspace.headers("returning-ai"), "Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def test_sends_and_verifies(sandbox_workspace):
    send(sandbox_workspace, "GOLD-A")
    sandbox_workspace.verify(operation="updatePurchaseHistory", status=200, count=1)


def test_sees_nothing_of_the_other_test(sandbox_workspace, redemption_sandbox):
    sandbox_workspace.verify(operation="updatePurchaseHistory", count=0)
    assert sandbox_workspace.headers("returning-ai") != redemption_sandbox.headers("returning-ai")


def test_a_mismatch_fails_with_the_near_misses(sandbox_workspace):
    send(sandbox_workspace, "GOLD-B")
    sandbox_workspace.verify(operation="updatePurchaseHistory", body={"voucherCode": "GOLD-C"}, bodyMatch="subset",
                             count=1)


def test_the_port(redemption_sandbox, pytestconfig):
    port = pytestconfig.getoption("sandbox_port")
    assert port == 0 or redemption_sandbox.base_url.endswith(f":{port}")
'''


def run_partner_tests(pytester, *options):
    pytester.makepyfile(test_partner=PARTNER_TESTS)
    return pytester.runpytest_subprocess("-p", "sandbox.pytest_plugin", "-p", "no:cacheprovider", *options,
                                         timeout=120)


@pytest.fixture
def partner_env(monkeypatch):
    """The partner's run imports this checkout's package (installed, it would come from site-packages)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def test_each_test_gets_its_own_workspace_and_verify_fails_it_with_the_near_misses(pytester, partner_env):
    result = run_partner_tests(pytester, "--sandbox-port", str(free_port()))
    result.assert_outcomes(passed=3, failed=1)
    failure = "\n".join(result.outlines)
    assert "NotVerified: NOT VERIFIED: 0 requests matched (expected exactly 1)" in failure
    assert "expected \"GOLD-C\", got \"GOLD-B\"" in failure  # the near miss, field by field


def test_a_running_sandbox_is_used_by_url_and_its_workspaces_are_dropped_after(pytester, partner_env):
    with start_sandbox(Settings(size=5, admin_token="s3cret")) as running:
        result = run_partner_tests(pytester, "--sandbox-url", running.base_url, "--sandbox-admin-token", "s3cret")
        result.assert_outcomes(passed=3, failed=1)
        workspaces = running.call("GET", "/_sandbox/workspaces")[1]["workspaces"]
        assert workspaces == []  # each was deleted after its test, the failed one too
        entries = running.call("GET", "/_sandbox/requests")[1]["requests"]
        assert entries == []  # the partner's requests went to workspaces, never to the default world
