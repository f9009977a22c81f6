"""pytest plugin (entry point `pytest11`, registered when the package is installed): the sandbox for the session,
and a workspace of it for each test that asks, with `verify` to assert what your code sent.

    def test_the_order_gets_its_voucher(sandbox_workspace):
        my_client = MyClient(sandbox_workspace.base_url + "/returning-ai/v1", sandbox_workspace.headers("returning-ai"))
        my_client.give_voucher("ORD202641612055614747", "GOLD-0001")
        sandbox_workspace.verify(operation="updatePurchaseHistory", status=200, count=1)

Options: `--sandbox-url URL` uses a sandbox already running (run.py, the container) instead of starting one in this
process; `--sandbox-port N` starts it on that port (default: a free one); `--sandbox-admin-token` (env
SANDBOX_ADMIN_TOKEN) for a sandbox that requires one.
"""
import pytest

from .config import from_env
from .testing import connect, start_sandbox


def pytest_addoption(parser):
    group = parser.getgroup("redemption-sandbox", "the redemption API sandbox's fixtures")
    group.addoption("--sandbox-url", metavar="URL", help="use the sandbox running at URL (e.g. http://127.0.0.1:8080) "
                    "instead of starting one in this process")
    group.addoption("--sandbox-port", type=int, default=0, metavar="N",
                    help="the port of the sandbox started in this process (default: a free one)")
    group.addoption("--sandbox-admin-token", default=from_env("SANDBOX_ADMIN_TOKEN"), metavar="TOKEN",
                    help="the sandbox's admin token, if it requires one (env SANDBOX_ADMIN_TOKEN)")


@pytest.fixture(scope="session")
def redemption_sandbox(pytestconfig):
    """The sandbox for the whole session: `.base_url`, `.headers(vendor, name)`, `.reset()`, `.verify(...)`,
    `.workspace()`."""
    url, token = pytestconfig.getoption("sandbox_url"), pytestconfig.getoption("sandbox_admin_token")
    if url:
        yield connect(url, token)
        return
    from . import Settings

    with start_sandbox(Settings(admin_token=token), port=pytestconfig.getoption("sandbox_port")) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox_workspace(redemption_sandbox):
    """A workspace for this test alone, created before it and deleted after: its own seeded data, credentials
    (`.headers(vendor)`), journal (`.verify(...)`) and fault rules; tests never see each other's requests."""
    with redemption_sandbox.workspace() as workspace:
        yield workspace
