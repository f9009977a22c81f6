"""What the tests share: the documents' records and demo credentials, the request helpers, and a real HTTP server
around an app (werkzeug's, threaded). Imported by name (`from helpers import ...`); conftest.py holds only fixtures."""
import threading
from contextlib import contextmanager

from werkzeug.serving import make_server

from sandbox import Settings, create_app

DOC_COMMUNITY = "507f1f77bcf86cd799439013"
DOC_ORDER = "ORD202641612055614747"
DOC_ORDER_ID = "507f1f77bcf86cd799439012"

# The demo credentials and records the tests share (fixtures/*.yaml).
PATCH_URL = f"/returning-ai/v1/purchase-histories/{DOC_ORDER}"
FABRIC = {"Authorization": "Bearer fabric-demo-token", "x-fabric-tenant-id": "61a5f0c2b3d4e5f6a7b8c9d0"}
CAPILLARY = {"Authorization": "Basic c3RvcmUuc2VydmVyOjhhMTZhNmI3MDUwNWViMWYxZmY3Y2RjMGNkNTU1OWE3"}
CAP_UPDATE = {"redemptionId": "sTDVyi", "billNumber": "new", "entity": {
    "type": "CUSTOMER", "identifierType": "id", "identifierValue": "109943742"}}


def bearer(key: str = "XXXXXX") -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_rai_error(response, status, *fragments):
    """A Returning.AI error: the status, the envelope, and a message saying each fragment (an empty one, in every
    message, would check nothing)."""
    assert all(fragments), "name what the message must say"
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["meta"] == {"status": "error", "statusCode": status}
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


def read_state(client, collection, ident=None):
    """What the sandbox stored, read back through the control API (GET /_sandbox/state/<collection>): the record
    ident names (None when there is none), or, without ident, every record of the collection."""
    r = client.get(f"/_sandbox/state/{collection}", query_string={"id": ident} if ident is not None else None)
    assert r.status_code == 200, r.get_json()
    records = r.get_json()["records"]
    if ident is None:
        return records
    return records[0] if records else None


# The apps made for the running test: conftest stops their webhook senders after it (threads that would otherwise
# sweep their worlds for the rest of the session, and find the session's Redis gone at its end).
MADE = []


def strict_app(**settings):
    """An app made with these settings, in strict mode as every test's app is (a response its spec forbids is a
    500 that the test sees): the one way a test customises its app."""
    return made(create_app(Settings(**{"strict_responses": True, "backend": "memory", **settings})))


def made(app):
    MADE.append(app)
    return app


@contextmanager
def served(app):
    """The app on a free port of loopback, over real sockets (the port), until the block ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
