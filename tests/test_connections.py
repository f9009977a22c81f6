"""Nothing a client does on a connection kills a worker or leaves a request unanswered (issue 25 point 2), on
run.py's server (gunicorn, uvicorn workers, sandbox/serving/): Hypothesis picks framings (Content-Length, chunked with
extensions and trailers, Expect: 100-continue, bare LF), pipelines, the pieces a request is sent in and the point where
the client hangs up; every well-formed request gets its answer, every malformed one a 400 in JSON; afterwards no
worker has exited and a normal PATCH answers as fast as before. Bounded: 60 examples, each within the socket timeout."""
import http.client
import io
import json
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings, strategies as st

from helpers import FABRIC, PATCH_URL
from services import run_py

TIMEOUT = 10
PATCH_BODY = (b'{"redemptionInstructions": "Present this code at checkout.", "voucherCode": "FUZZ-1", '
              b'"voucherExpiryDate": "31/12/2027"}')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("connections") / "server.log"
    with run_py(log, "--size", "5", "--workers", "2", "--request-timeout", "2") as (base, port, process):
        yield base, port, process, log, workers_of(process.pid, 2)


def workers_of(pid: int, count: int | None = None) -> list[int]:
    """The server's worker processes; with `count`, once that many have started (within 10 s)."""
    for _ in range(200):
        found = sorted(int(p) for task in Path(f"/proc/{pid}/task").iterdir()
                       for p in (task / "children").read_text().split())
        if count is None or len(found) >= count:
            break
        time.sleep(0.05)
    return found


def patch_latency(base: str) -> float:
    """The best of ten valid PATCHes, in seconds (the usual latency, free of scheduling noise)."""
    best = 1e9
    for _ in range(10):
        started = time.perf_counter()
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=TIMEOUT)
        connection.request("PATCH", PATCH_URL, body=PATCH_BODY,
                           headers={"Authorization": "Bearer XXXXXX", "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["data"]["voucherCode"] == "FUZZ-1"
        connection.close()
        best = min(best, time.perf_counter() - started)
    return best


# -- requests, each as bytes with what its answer must be ----------------------------------------------------------
def head_lines(method: str, path: str, headers: list[tuple[str, str]], newline: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    return newline.join(line.encode() for line in lines) + newline + newline


@st.composite
def chunked(draw, body: bytes) -> bytes:
    """A body in chunks of random sizes, with chunk extensions and trailer fields where Hypothesis wants them."""
    out, rest = b"", body
    while rest:
        size = draw(st.integers(1, max(1, len(rest))))
        extension = b";ext=1" if draw(st.booleans()) else b""
        out += b"%x%s\r\n%s\r\n" % (size, extension, rest[:size])
        rest = rest[size:]
    last_extension = b";last=yes" if draw(st.booleans()) else b""
    trailer = b"X-Trailer: 1\r\n" if draw(st.booleans()) else b""
    return out + b"0" + last_extension + b"\r\n" + trailer + b"\r\n"


VENDOR = [("Authorization", "Bearer XXXXXX"), ("Content-Type", "application/json")]


@st.composite
def well_formed(draw) -> tuple[bytes, str, int]:
    """(bytes, method, expected status)."""
    kind = draw(st.sampled_from(["patch", "patch-chunked", "patch-expect", "health", "head", "fabric", "journal",
                                 "invalid-patch"]))
    if kind in ("patch", "patch-expect", "invalid-patch"):
        body = PATCH_BODY if kind != "invalid-patch" else b'{"voucherCode": 7}'
        extra = [("Expect", "100-continue")] if kind == "patch-expect" else []
        request = head_lines("PATCH", PATCH_URL, VENDOR + extra + [("Content-Length", str(len(body)))], b"\r\n") + body
        return request, "PATCH", 400 if kind == "invalid-patch" else 200
    if kind == "patch-chunked":
        return (head_lines("PATCH", PATCH_URL, VENDOR + [("Transfer-Encoding", "chunked")], b"\r\n")
                + draw(chunked(PATCH_BODY)), "PATCH", 200)
    if kind == "fabric":
        return head_lines("GET", "/fabric/v3/redemptions?size=2", list(FABRIC.items()), b"\r\n"), "GET", 200
    if kind == "journal":
        return head_lines("GET", "/_sandbox/requests", [], b"\r\n"), "GET", 200
    method = "HEAD" if kind == "head" else "GET"
    return head_lines(method, "/_sandbox/health", [], b"\r\n"), method, 200


MALFORMED = [
    head_lines("GET", "/_sandbox/health", [], b"\n"),  # bare LF: refused (RFC 9112 allows either)
    b"\x00\x01 not http\r\n\r\n",
    b"GET /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"PATCH " + PATCH_URL.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


class _Unclosed(io.BufferedReader):
    def close(self):  # http.client closes its file after each answer; the next one is in it too
        pass


class _Replay:
    """Bytes received, read back by http.client one answer after another."""

    def __init__(self, data: bytes):
        self.file = _Unclosed(io.BytesIO(data))

    def makefile(self, *args, **kwargs):
        return self.file


def answers(data: bytes, methods: list[str]) -> list[tuple[int, bytes]]:
    replay, found = _Replay(data), []
    for method in methods:
        response = http.client.HTTPResponse(replay, method=method)
        try:
            response.begin()
        except (http.client.HTTPException, OSError):
            break
        found.append((response.status, response.read()))
    return found


def receive_all(sock: socket.socket, stop_after: int | None = None) -> bytes:
    received = b""
    while stop_after is None or len(received) < stop_after:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        received += chunk
    return received


@st.composite
def conversations(draw):
    """Up to three pipelined requests, perhaps one malformed last, sent in pieces; perhaps a hang-up somewhere."""
    requests = draw(st.lists(well_formed(), min_size=1, max_size=3))
    malformed = draw(st.sampled_from([None, *MALFORMED]))
    data = b"".join(r[0] for r in requests) + (malformed or b"")
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=4))))
    hang_up = draw(st.sampled_from(["never", "while sending", "before reading", "while reading"]))
    hang_at = draw(st.integers(1, max(1, len(data) - 1)))
    return requests, malformed, data, cuts, hang_up, hang_at


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(conversation=conversations())
def test_any_framing_and_any_hang_up_is_answered_or_forgotten_never_a_crash(server, conversation):
    base, port, process, log, _ = server
    requests, malformed, data, cuts, hang_up, hang_at = conversation
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        if hang_up == "while sending":
            sock.sendall(data[:hang_at])
            return  # closed by `finally`: the server forgets the half-sent request
        start = 0
        for cut in cuts + [len(data)]:
            sock.sendall(data[start:cut])
            start = cut
        if hang_up == "before reading":
            return
        if malformed is None:
            sock.shutdown(socket.SHUT_WR)  # nothing more to send: the answers end with the connection
        received = receive_all(sock, stop_after=hang_at if hang_up == "while reading" else None)
        if hang_up == "while reading":
            return
    finally:
        sock.close()
    note(f"sent {data!r} in pieces at {cuts}; received {received[:2000]!r}")
    got = answers(received, [method for _, method, _ in requests] + (["GET"] if malformed else []))
    assert [status for status, _ in got[:len(requests)]] == [status for _, _, status in requests]
    if malformed is not None:
        status, body = got[len(requests)]
        assert status == 400 and "error" in json.loads(body)


def test_after_the_fuzz_no_worker_has_exited_and_a_patch_is_as_fast(server):
    """Runs after the fuzz (same module, same server): the workers it started with are all there, nothing in the
    log is a traceback, and the PATCH's best latency is within 3x of a fresh server's figure measured here."""
    base, port, process, log, workers = server
    assert workers_of(process.pid) == workers
    assert "Traceback" not in log.read_text() and "was sent" not in log.read_text()
    assert patch_latency(base) < 0.05


def test_downloads_on_a_kept_alive_connection_and_a_client_that_stops_reading(tmp_path):
    """A 9 MB export twice on one kept-alive connection, then a request on the same connection: all whole. A client
    that asks for the export and never reads holds nothing but its socket: health is answered at once meanwhile, and
    once the request timeout (2 s) passes without it reading, its answer is cut (it never gets the whole body)."""
    with run_py(tmp_path / "server.log", "--size", "5", "--workers", "1", "--request-timeout", "2") as (
            base, port, process):
        # Seeding 3,000 records per vendor is the set-up, not the point: it may take longer than TIMEOUT when the
        # suite's other workers share the cores.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", "/_sandbox/reset", body=b'{"size": 3000}', headers={"Content-Type": "application/json"})
        assert connection.getresponse().read()
        connection.sock.settimeout(TIMEOUT)
        sizes = []
        for _ in range(2):
            connection.request("GET", "/_sandbox/state/export")
            response = connection.getresponse()
            sizes.append(len(response.read()))
        connection.request("GET", "/_sandbox/health")
        health = connection.getresponse()
        assert (health.status, bool(health.read())) == (200, True) and sizes[0] == sizes[1] > 5_000_000
        [worker] = workers_of(process.pid, 1)

        # A small receive window, set before connecting: loopback's autotuned buffers (several MB each way) could
        # otherwise take the whole 9 MB answer before the timeout, and there would be nothing left to cut.
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        stalled.settimeout(TIMEOUT)
        stalled.connect(("127.0.0.1", port))
        stalled.sendall(b"GET /_sandbox/state/export HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.5)
        started = time.perf_counter()
        connection.request("GET", "/_sandbox/health")
        assert connection.getresponse().status == 200 and time.perf_counter() - started < 0.5
        time.sleep(3)  # past the request timeout, reading nothing
        assert len(receive_all(stalled)) < sizes[0]
        stalled.close()
        assert workers_of(process.pid) == [worker]


def test_a_refusal_waits_for_the_answer_pipelined_before_it(server):
    """A request held 2.5 s, then half of another that never completes: the request timeout (2 s) passes during the
    hold, and the 408 comes only after the held answer, which arrives whole."""
    base, port, process, log, _ = server
    held = head_lines("PATCH", PATCH_URL, VENDOR + [("X-Sandbox-Delay", "2500"),
                                                   ("Content-Length", str(len(PATCH_BODY)))], b"\r\n") + PATCH_BODY
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(held + b"GET /_sandbox/health HTTP/1.1\r\nHost: 12")
        got = answers(receive_all(sock), ["PATCH", "GET"])
    assert [status for status, _ in got] == [200, 408]
    assert json.loads(got[0][1])["data"]["voucherCode"] == "FUZZ-1"
    assert "within 2 s" in json.loads(got[1][1])["error"]["message"]


def test_a_connection_reset_comes_after_the_answers_pipelined_before_it(server):
    """Found by review: a reset (SO_LINGER 0) discards what the connection has not sent yet, so a connection-reset
    fault pipelined behind a large answer (the control spec, about 100 KB) to a slow reader cut that answer short. The reset now waits for the
    earlier answers to leave (for the request timeout at most, 2 s here: the reader's window, 32 KB, lets 100 KB
    through in well under that; a 8 KB one needs about 2.5 s on loopback): the client reads the whole first answer,
    then the reset."""
    base, port, process, log, _ = server
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    fault = head_lines("GET", "/fabric/v3/redemptions?size=1", list(FABRIC.items()) + [
        ("X-Sandbox-Fault", "connection-reset")], b"\r\n")
    sock.sendall(head_lines("GET", "/_sandbox/specs/sandbox.json", [], b"\r\n") + fault)
    time.sleep(0.5)
    received, reset = b"", False
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        reset = True
    sock.close()
    [(status, body)] = answers(received, ["GET"])
    assert status == 200 and len(body) > 50_000 and json.loads(body)["openapi"].startswith("3.1") and reset
