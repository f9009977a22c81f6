"""The Flask app as uvicorn's ASGI app: each request's WSGI call made in the event loop's thread, as gunicorn's sync
worker would make it, while everything that *waits* is the loop's.

- The body is read by uvicorn (httptools) and handed over whole, bounded by the endpoint's limit (core/limits.py):
  a body declared larger is not buffered at all, one sent chunked is buffered to one byte past the limit, and the
  app refuses both with a 413 in the vendor's envelope. The rest of such a body is then read and dropped by the
  parser (within the request timeout), so the client, still sending, reads its 413 instead of a reset. State imports (up to 64 MiB) are read BIG_BODIES at a time per
  worker; the others wait, unread (uvicorn stops reading a socket at 64 KiB), so a worker holds at most BIG_BODIES
  imports at once, and a stalled one is cut by the request timeout (protocol.py) like any other.
- An answer held on purpose (X-Sandbox-Delay, a latency rule, a publisher timeout: `Connection.hold`) waits in the
  loop, the operation already done, while the worker serves others.
- A transport fault drops the real connection (`Connection.drop`): a TCP reset, or a close with no answer.
- An answer is written in pieces as the client reads it. One whose client has not read the next piece within the
  request timeout is cut (the connection aborted), so a client that never reads holds nothing but its own socket.
- An operation on a whole world (the spec's `x-sandbox-whole-world`: reset, workspace, import, export,
  verification; 100-200 ms at the default size, seconds for large ones) runs in a thread of the worker's
  WHOLE_WORLD_THREADS, one at a time per world (in the order they came) and never behind another world's, while the
  loop goes on answering everyone else. A request that finds its world's write lock held for long (by such an
  operation, in any process: SQLite's writers' lock, store.WouldWait) is made again in one of SIDE_THREADS threads,
  where it waits without holding up the loop. Its answer is relayed a piece at a time as the thread makes it (an export
  streams from the store), RELAY_AHEAD pieces ahead of the client at most: a client that does not read holds the
  thread until the request timeout, and a few pieces of memory.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import queue
import socket
import struct
import termios
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from a2wsgi.wsgi import build_environ

from sandbox.config import Settings
from sandbox.core.connection import ENVIRON_KEY
from sandbox.core.logs import log
from sandbox.storage.store import WouldWait, not_waiting

WHOLE_WORLD_THREADS = 4  # whole-world operations of different worlds running at once in one worker
SIDE_THREADS = 4  # threads for requests whose world's write lock is held for long (each waits for it there)
BIG_BODIES = 2  # state imports (up to --max-import-bytes) being read or answered at once in one worker
PIECE = 256 * 1024  # an answer is written in pieces of at most this many bytes, each waiting for the client
RELAY_AHEAD = 4  # pieces of a whole-world answer made and not yet taken by its client
WORKSPACE_HEADER = b"x-sandbox-workspace"
# Bytes of request bodies being read at once in one worker, as many of the largest bodies: BIG_BODIES imports and
# BODY_BUDGET vendor bodies (160 MiB by default). A client sending 1 MiB slowly on each of many connections makes the
# request that would pass it a 503 to retry.
BODY_BUDGET = 32
_BUSY = object()
_BUSY_BODY = (b'{"error": {"code": 503, "message": "The server is reading too many large request bodies at once; '
              b'retry after a second"}}')
_BUSY_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_BUSY_BODY)),
                 (b"retry-after", b"1")]


class Connection:
    """The server's side of core/connection.py's ServerConnection: what the app may ask of its client's connection
    (hold the answer, or drop it), and what it asked to record if the answer cannot be delivered."""

    def __init__(self, transport):
        self.transport = transport
        self.hold_ms = 0
        self.dropped = False
        self.reset_pending = False
        self.undelivered = None  # set by the pipeline: says in the journal that the answer never reached the client

    def hold(self, milliseconds: int) -> None:
        self.hold_ms += milliseconds

    def drop(self, reset: bool) -> bool:
        """Close: with a TCP reset (SO_LINGER 0, then abort), or an orderly close with no answer. A reset discards
        what the connection has not yet sent, so while answers pipelined before this request are still on their way,
        it waits for them (`reset_when_sent`, by the bridge)."""
        self.dropped = True
        if self.transport.is_closing():  # already dropped (a request made again: bridge.WouldWait)
            return True
        if not reset:
            self.transport.close()
        elif self._unsent():
            self.reset_pending = True
        else:
            self._reset()
        return True

    async def reset_when_sent(self, timeout: float) -> None:
        """The reset, once the earlier answers have left (or after `timeout`, whatever is left)."""
        deadline = time.monotonic() + timeout
        while self._unsent() and time.monotonic() < deadline and not self.transport.is_closing():
            await asyncio.sleep(0.005)
        if not self.transport.is_closing():
            self._reset()

    def _unsent(self) -> bool:
        """Bytes still to go: in the transport's buffer, or in the kernel's send queue (Linux's SIOCOUTQ)."""
        if self.transport.get_write_buffer_size():
            return True
        sock = self.transport.get_extra_info("socket")
        try:
            return sock is not None and struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                                          b"\0" * 4))[0] > 0
        except (OSError, AttributeError):
            return False

    def _reset(self) -> None:
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


class Bridge:
    def __init__(self, app, threads: int = WHOLE_WORLD_THREADS):
        self.app = app
        self.thread_count = threads
        sandbox = app.extensions.get("sandbox")  # another Flask app (bench/bare_flask.py) gets the defaults
        settings = sandbox.settings if sandbox is not None else Settings()
        self.vendor_limit, self.import_limit = settings.max_body_bytes, settings.max_import_bytes
        self.timeout = settings.request_timeout
        self.body_budget = BIG_BODIES * self.import_limit + BODY_BUDGET * self.vendor_limit
        self.table = app.extensions.get("sandbox_routes")
        # most requests are told apart by the first segment of their path alone (an exported state is a whole world)
        self.firsts = {"/" + t.template.split("/")[1] for t in self.table.paths
                       if t.operation.whole_world} if self.table is not None else set()
        self.threads: ThreadPoolExecutor | None = None  # made in the worker, after the fork
        self.side_threads: ThreadPoolExecutor | None = None
        self.worlds: dict[bytes, tuple[asyncio.Lock, int]] = {}  # (lock, operations holding or awaiting it)
        self.big_bodies: asyncio.Semaphore | None = None
        self.reading = 0  # bytes of the bodies being read in this worker, not yet handed to the app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return  # lifespan is off (worker.py); nothing else is served
        if self.big_bodies is None:
            self.big_bodies = asyncio.Semaphore(BIG_BODIES)
            self.threads = ThreadPoolExecutor(self.thread_count, thread_name_prefix="whole-world",
                                              initializer=_yield_to_others)
            self.side_threads = ThreadPoolExecutor(SIDE_THREADS, thread_name_prefix="beside-whole-world")
        operation = self._whole_world(scope)
        importing = operation is not None and operation.exported_state
        limit = self.import_limit if importing else self.vendor_limit
        if importing and _declared_length(scope) != 0:
            protocol = scope["extensions"]["sandbox.protocol"]
            protocol.hold_deadline()  # waiting for a slot is the server's time, not the client's
            async with self.big_bodies:
                protocol.restart_deadline()
                await self._serve(scope, receive, send, limit, operation)
        else:
            await self._serve(scope, receive, send, limit, operation)

    async def _serve(self, scope, receive, send, limit: int, whole_world) -> None:
        body = await self._read_body(scope, receive, limit)
        if body is None:
            return  # the client left before its request was whole
        if body is _BUSY:
            await send({"type": "http.response.start", "status": 503, "headers": _BUSY_HEADERS})
            await send({"type": "http.response.body", "body": _BUSY_BODY})
            return
        # A body refused by its declared size is not asked for: a client that waits for "100 Continue" never sends
        # it, so its connection is closed after the answer (any other client's rest is read and dropped).
        closing = [(b"connection", b"close")] if (_declared_length(scope) or 0) > limit and _header(
            scope, b"expect").lower() == b"100-continue" else []
        connection = Connection(scope["extensions"]["sandbox.transport"])
        environ = _environ(scope, body, connection)
        if whole_world is not None:
            async with self._turn(_header(scope, WORKSPACE_HEADER)):
                await self._relayed(scope, send, connection, environ, closing)
            return
        try:
            with not_waiting():
                status, headers, pieces = _collect(self.app, environ)
        except WouldWait:
            # Its world's write lock is held for long (a reset, an import, in this process or another): waited for
            # here, it would hold up everyone in the loop. Nothing was written; it is made again in a thread.
            connection.hold_ms = 0
            status, headers, pieces = await asyncio.get_running_loop().run_in_executor(
                self.side_threads, _collect, self.app, _environ(scope, body, connection))
        if await self._deliverable(scope, connection, status):
            await self._send(send, connection, status, headers + closing, pieces)

    @contextlib.asynccontextmanager
    async def _turn(self, world: bytes):
        """One whole-world operation at a time per world (by X-Sandbox-Workspace), in the order they came; a world's
        lock lives while someone holds or waits for it, so the table is bounded by the operations under way."""
        lock, users = self.worlds.get(world, (asyncio.Lock(), 0))
        self.worlds[world] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.worlds[world]
            if users == 1:
                del self.worlds[world]
            else:
                self.worlds[world] = (lock, users - 1)

    async def _deliverable(self, scope, connection: Connection, status: int) -> bool:
        """Whether the answer is to be sent, once any hold asked for has passed."""
        if connection.dropped:
            if connection.reset_pending:
                await connection.reset_when_sent(self.timeout)
            await asyncio.sleep(0)  # uvicorn learns the connection is gone, and sends nothing
            return False
        if connection.hold_ms:
            await asyncio.sleep(connection.hold_ms / 1000)
        if connection.transport.is_closing():  # the client left while its answer was made or held
            log.warning("%s %s answered %d, but the client had closed the connection: it never received the "
                        "answer (whatever the request changed is kept, as the journal shows)",
                        scope["method"], scope["path"], status)
            if connection.undelivered is not None:  # a store write: off the loop, as a request made again is
                await asyncio.get_running_loop().run_in_executor(self.side_threads, connection.undelivered)
            return False
        return True

    async def _relayed(self, scope, send, connection: Connection, environ, closing: list) -> None:
        """A whole-world operation: made in a thread, its answer relayed to the client a piece at a time as the
        thread produces it (an export streams from the store), the thread waiting while the client does not read."""
        relay = _Relay(asyncio.get_running_loop())
        made = asyncio.get_running_loop().run_in_executor(self.threads, relay.produce, self.app, environ)
        try:
            head = await relay.next()
            if head is _FAILED or not await self._deliverable(scope, connection, head[0]):
                return
            await self._within(send, connection, {"type": "http.response.start", "status": head[0],
                                                  "headers": head[1] + closing})
            while (piece := await relay.next()) is not None and not connection.transport.is_closing():
                if piece is _FAILED:
                    connection.transport.abort()  # the answer cannot be finished: the client must not take it whole
                    return
                await self._within(send, connection, {"type": "http.response.body", "body": piece, "more_body": True})
            await self._within(send, connection, {"type": "http.response.body", "body": b""})
        finally:
            relay.stopped.set()
            await made

    async def _send(self, send, connection: Connection, status: int, headers: list, pieces: list[bytes]) -> None:
        await self._within(send, connection, {"type": "http.response.start", "status": status, "headers": headers})
        if sum(map(len, pieces)) <= PIECE:  # the usual answer: one write
            await self._within(send, connection, {"type": "http.response.body", "body": b"".join(pieces)})
            return
        for piece in pieces:
            view = memoryview(piece)
            for start in range(0, len(view), PIECE):
                await self._within(send, connection, {"type": "http.response.body",
                                                      "body": bytes(view[start:start + PIECE]), "more_body": True})
        await self._within(send, connection, {"type": "http.response.body", "body": b""})

    async def _within(self, send, connection: Connection, message) -> None:
        """Send, unless the connection is gone; uvicorn waits for a full write buffer to drain first, and a client
        that takes nothing for the request timeout is cut (its connection aborted), whatever it was sent before:
        answers pipelined behind a client that never reads must not wait for ever (nor their world's turn)."""
        if connection.transport.is_closing():
            return
        if not connection.transport.get_write_buffer_size():
            await send(message)  # nothing queued: the write cannot wait
            return
        try:
            async with asyncio.timeout(self.timeout):
                await send(message)
        except TimeoutError:
            connection.transport.abort()

    async def _read_body(self, scope, receive, limit: int):
        """The whole body, or limit + 1 bytes of it (the app refuses it), or nothing when it is declared larger; None
        when the client has gone; _BUSY when the bodies being read in this worker would pass their budget."""
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            return b""
        body = bytearray()
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                piece = message.get("body", b"")
                if self.reading + len(piece) > self.body_budget:
                    return _BUSY
                body += piece
                self.reading += len(piece)
                if not message.get("more_body") or len(body) > limit:
                    return bytes(body[:limit + 1])
        finally:
            self.reading -= len(body)

    def _whole_world(self, scope):
        """The whole-world operation the request names (the spec's x-sandbox-whole-world), or None."""
        path = "/" + scope["path"].lstrip("/")  # as werkzeug reads it
        if path[:path.find("/", 1)] not in self.firsts:
            return None
        method = "GET" if scope["method"] == "HEAD" else scope["method"]
        found = self.table.operation_for(method, path)
        return found[0].operation if found is not None and found[0].operation.whole_world else None


def _environ(scope, body: bytes, connection: Connection) -> dict:
    environ = build_environ(scope, io.BytesIO(body))
    environ["wsgi.input_terminated"] = True  # a chunked body is read to its end (werkzeug reads none otherwise)
    environ[ENVIRON_KEY] = connection
    return environ


def _collect(app, environ) -> tuple[int, list, list[bytes]]:
    """The WSGI call with its answer collected (every answer but an export's is built whole)."""
    status, headers, result = _start(app, environ)
    try:
        return status, headers, [piece for piece in result if piece]
    finally:
        if hasattr(result, "close"):
            result.close()


def _start(app, environ) -> tuple[int, list, object]:
    """The WSGI call: (status, headers as uvicorn takes them, the body's iterable)."""
    started = []

    def start_response(status, headers, exc_info=None):
        started[:] = [int(status[:3]), [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]]

    result = app(environ, start_response)
    return started[0], started[1], result


_FAILED = object()  # the thread's answer could not be made or finished


class _Relay:
    """A WSGI answer made in a whole-world thread, handed to the loop piece by piece, at most RELAY_AHEAD pieces
    ahead of what the client has taken; the thread stops at the next piece once the loop has stopped taking them."""

    def __init__(self, loop):
        self.loop = loop
        self.items: queue.Queue = queue.Queue(RELAY_AHEAD)
        self.ready = asyncio.Event()
        self.stopped = threading.Event()

    def produce(self, app, environ) -> None:
        result = None
        try:
            status, headers, result = _start(app, environ)
            if self._hand((status, headers)) and all(self._hand(piece) for piece in result if piece):
                self._hand(None)
        except Exception:  # noqa: BLE001 - Flask answers the app's own errors; this is the store failing mid-answer
            log.exception("a whole-world answer failed while it was being written")
            self._hand(_FAILED)
        finally:
            if hasattr(result, "close"):
                result.close()

    def _hand(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.items.put(item, timeout=0.25)
            except queue.Full:
                continue
            self.loop.call_soon_threadsafe(self.ready.set)
            return True
        return False

    async def next(self):
        while True:
            try:
                return self.items.get_nowait()
            except queue.Empty:
                self.ready.clear()
            try:  # again, after clearing: a piece handed in between has set `ready` for a later turn
                return self.items.get_nowait()
            except queue.Empty:
                await self.ready.wait()


def _yield_to_others() -> None:
    """A whole-world thread runs at the system's lowest priority (the worker's switch interval, worker.py, makes it
    give the interpreter back to the loop within 0.1 ms)."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _header(scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return b""


def _declared_length(scope) -> int | None:
    value = _header(scope, b"content-length")
    return int(value) if value.isdigit() else None



