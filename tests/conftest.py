"""The fixtures every test may take: the app on each backend, its client, the Redis server they share. What tests
share besides fixtures (records, credentials, helpers) is in helpers.py."""
import os

import pytest

from sandbox import Settings, create_app
from helpers import MADE, made
from services import REDIS_MISSING, RedisServer, drop_prefix, unique_prefix

# Every test that takes the `app` fixture (the vendor suites, the control API) runs once per backend.
BACKENDS = os.environ.get("SANDBOX_TEST_BACKENDS", "memory,sqlite,redis").split(",")


def pytest_configure(config):
    # The fixture partners get from the installed package; in this checkout, load it directly.
    if not config.pluginmanager.has_plugin("redemption_sandbox"):
        config.pluginmanager.import_plugin("sandbox.pytest_plugin")


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
    return made(create_app(Settings(seed=2026, size=40, publisher_timeout=0.2, strict_responses=True,
                                    **backend_settings)))


@pytest.fixture(autouse=True)
def _stop_webhook_senders():
    yield
    while MADE:
        MADE.pop().extensions["sandbox"].sender.stop()


# The modules that start servers, browsers or partner tools, or fuzz at length: `pytest -m "not slow"` leaves them out
# for a quick run while working (the whole suite, CI's, runs them all).
SLOW_MODULES = {"test_contract", "test_contract_command", "test_connections", "test_serving", "test_redis_faults",
                "test_redis_replacing", "test_packaging", "test_partner_tools", "test_openapi_generator",
                "test_ui_browser", "test_cross_site", "test_round_trip", "test_run", "test_cli_errors",
                "test_container", "test_hostile_properties", "test_concurrency", "test_shared_backends"}


# The modules that kill, pause or restart Redis servers, or time a server's answers to the tenth of a second, with
# the machine to themselves: the README's test command runs them alone and in order (-m serial -n 0), then the
# rest in parallel. (pytest-xdist's loadgroup would keep them in one process, but it schedules by node ID, and Schemathesis
# gives every operation's test its function's: it ran one operation of each spec.)
SERIAL_MODULES = {"test_redis_faults", "test_redis_replacing", "test_concurrency", "test_shared_backends",
                  "test_serving", "test_connections"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.module.__name__ in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)


def pytest_generate_tests(metafunc):
    if "backend_settings" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("backends")
        chosen = [b for b in BACKENDS if only is None or b in only.args]
        metafunc.parametrize("backend_settings", chosen, indirect=True)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sandbox(app):
    return app.extensions["sandbox"]
