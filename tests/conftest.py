import os

import pytest

from sandbox import Settings, create_app
from services import REDIS_MISSING, RedisServer, drop_prefix, unique_prefix

# Every test that takes the `app` fixture (the vendor suites, the control API) runs once per backend.
BACKENDS = os.environ.get("SANDBOX_TEST_BACKENDS", "memory,sqlite,redis").split(",")


def pytest_configure(config):
    # The fixture partners get from the installed package; in this checkout, load it directly.
    if not config.pluginmanager.has_plugin("redemption_sandbox"):
        config.pluginmanager.import_plugin("sandbox.pytest_plugin")

DOC_COMMUNITY = "507f1f77bcf86cd799439013"
DOC_ORDER = "ORD202641612055614747"
DOC_ORDER_ID = "507f1f77bcf86cd799439012"

# The demo credentials and records the tests share (fixtures/*.yaml).
PATCH_URL = f"/returning-ai/v1/purchase-histories/{DOC_ORDER}"
FABRIC = {"Authorization": "Bearer fabric-demo-token", "x-fabric-tenant-id": "61a5f0c2b3d4e5f6a7b8c9d0"}
CAPILLARY = {"Authorization": "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3"}
CAP_UPDATE = {"redemptionId": "sTDVyi", "billNumber": "new", "entity": {
    "type": "CUSTOMER", "identifierType": "id", "identifierValue": "109943742"}}


@pytest.fixture(scope="session")
def redis_url():
    server = RedisServer()
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def backend_settings(request, redis_url):
    """Settings fields that put a sandbox on the backend under test (param), isolated from other tests."""
    backend = getattr(request, "param", "memory")
    if backend != "redis":
        yield {"backend": backend}
        return
    if redis_url is None:
        pytest.skip(REDIS_MISSING)
    prefix = unique_prefix()
    yield {"backend": "redis", "redis_url": redis_url, "redis_prefix": prefix}
    drop_prefix(redis_url, prefix)


@pytest.fixture
def app(backend_settings):
    # Strict mode: any response that breaks the spec turns into a 500, which every test would notice.
    return create_app(Settings(seed=2026, size=40, publisher_timeout=0.2, strict_responses=True, **backend_settings))


def pytest_generate_tests(metafunc):
    if "backend_settings" in metafunc.fixturenames:
        metafunc.parametrize("backend_settings", BACKENDS, indirect=True)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sandbox(app):
    return app.extensions["sandbox"]


def bearer(key: str = "XXXXXX") -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_rai_error(response, status, *fragments):
    """A Returning.AI error: the status, the envelope, and a message saying each fragment."""
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["meta"] == {"status": "error", "statusCode": status}
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body
