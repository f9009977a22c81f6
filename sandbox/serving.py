"""The gunicorn worker run.py serves with: gunicorn's sync worker, with its waiting done by an event loop.

gunicorn's sync worker runs one request at a time per process, which is the fastest way to run this app (no GIL
contention, measured in the README's Benchmark), but it also *waits* one request at a time: a client that sends
half a request, or a request held on purpose (X-Sandbox-Delay, a latency rule, a publisher timeout), holds the whole
process. This worker keeps the one-at-a-time processing and moves the waiting into a selector loop:

- a connection is read without blocking until its request is complete (head, and body by Content-Length or to the
  last chunk), and only then handed to the app, so a slow or stalled client costs a buffer, not a process. One that
  has not sent a whole request within the request timeout (Settings.request_timeout, run.py --request-timeout,
  10 s) of connecting is closed, and while the bytes buffered over every connection pass twice the largest body
  accepted (two whole-world imports), the connection that would add more gets a 503 instead, so memory stays bounded;
- the app answers at once; an answer held on purpose (`environ["sandbox.hold"]`) is written when its time comes, by
  the loop, while the process serves others;
- the connection is the app's to drop (`environ["gunicorn.socket"].drop`): a real TCP reset or an empty close for the
  transport faults, with nothing written after it.
- an operation on a whole world (the spec's `x-sandbox-own-process`: a reset or a new workspace seeds one, an import
  or an export moves one, a verification reads a whole journal; 100-200 ms at the default size, seconds for large
  ones) is handed, connection and request, to the worker's *lane*: a copy of the worker forked at its first such
  operation, which answers them one at a time while the worker goes on serving its other connections. So one world's
  reseed does not hold up another world's requests that the same worker happens to hold (issue 15). State is in
  the shared store, never in the process, so the lane acts as any other worker would. A fork per request would
  cost the worker ~2 ms and its next request ~2 ms more (copy-on-write); the lane costs that once. At most LANE_QUEUE operations wait for
  the lane; past that, or without a lane (the memory backend, whose state is the process's own), the worker
  answers them itself.

The app runs in the loop's thread, exactly as under the sync worker; what it writes is collected and sent by the loop.
"""
from __future__ import annotations

import collections
import errno
import heapq
import itertools
import json
import os
import re
import selectors
import signal
import socket
import struct
import tempfile
import time
from datetime import datetime
from urllib.parse import unquote_to_bytes

from gunicorn.http import wsgi
from sandbox.core.limits import IMPORT_PATH
from gunicorn.workers.sync import SyncWorker

MAX_CONNECTIONS = 512  # open connections per worker process; more wait in the listen backlog
LANE_QUEUE = 8  # whole-world operations handed to a worker's lane and not yet answered; past that it answers them
LANE_RESTARTS = 3  # lanes forked again after one exits; past that the worker answers whole-world operations itself
HEAD_LIMIT = 32 * 1024  # bytes of request line and headers buffered before the parser is left to refuse them
_BODY_LIMITS = (1024 * 1024, 64 * 1024 * 1024)  # fallbacks when the app is not the sandbox (vendor, import)
_REQUEST_TIMEOUT = 10.0
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
_EXPECT = re.compile(rb"\r\nexpect:[ \t]*100-continue", re.IGNORECASE)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BUSY_BODY = (b'{"error": {"code": 503, "message": "The server is holding too many large request bodies at once; '
              b'retry after a second"}}')
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json"
         b"\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


class Connection:
    """One client: what it sent so far, and then the answer the app wrote, with when to send it."""

    def __init__(self, sock: socket.socket, addr, deadline: float):
        self.sock = sock
        self.addr = addr
        self.deadline = deadline
        self.received = bytearray()
        self.read_at = 0  # the app's read position in `received`
        self.out = bytearray()
        self.hold_ms = 0
        self.dropped = False
        self.continued = False
        self.whole = True  # False when handed over before the body was all here (to be refused by its size)
        self.single = True  # the request is all there is (no second one pipelined behind it, no chunked body)
        self.keep_alive = False  # set by the worker: the answer leaves the connection open for the next request

    # -- the socket as the app and gunicorn's parser see it ---------------------------------------------------------
    def recv(self, size: int) -> bytes:
        chunk = bytes(self.received[self.read_at:self.read_at + size])
        self.read_at += len(chunk)
        return chunk

    def send(self, data: bytes) -> int:
        if data == _CONTINUE and self.continued:
            return len(data)  # the loop said it already, to get the body
        self.out += data
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def sendfile(self, file, offset=0, count=None):
        file.seek(offset)
        data = file.read(count) if count is not None else file.read()
        self.out += data
        return len(data)

    def drop(self, reset: bool) -> bool:
        """The transport faults: close at once, with a TCP reset (RST) or an orderly close with no answer."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.dropped = True
        self.sock.close()
        return True

    def hold(self, milliseconds: int) -> None:
        self.hold_ms += milliseconds

    def gettimeout(self):
        return 0.0

    def setblocking(self, flag) -> None:
        pass

    def settimeout(self, value) -> None:
        pass

    def shutdown(self, how) -> None:
        pass  # the loop closes once the answer is sent

    def close(self) -> None:
        pass

    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self):
        return self.sock.getsockname()

    def getpeername(self):
        return self.addr

    def setsockopt(self, *args) -> None:
        self.sock.setsockopt(*args)

    # -- what the loop needs to know --------------------------------------------------------------------------------
    def complete(self, body_limit) -> bool:
        """Whether the request is all here (or is beyond what will be read anyway, so the app may refuse it)."""
        head_end = self.received.find(b"\r\n\r\n")
        if head_end < 0:
            return len(self.received) > HEAD_LIMIT
        head = bytes(self.received[:head_end + 2])
        body = len(self.received) - head_end - 4
        length = _CONTENT_LENGTH.search(head)
        if length is not None:
            wanted = int(length.group(1))
            if wanted > body_limit(head):
                self.whole = body >= wanted
                return True  # refused by its Content-Length before it is read
            self._maybe_continue(head, body, wanted)
            self.single = body <= wanted
            return body >= wanted
        if _CHUNKED.search(head):
            self.single = False
            self._maybe_continue(head, body, 1)
            if self.received.endswith(b"0\r\n\r\n"):
                return True
            self.whole = False
            return body > body_limit(head) + 65536
        self.single = body == 0
        return True

    def next_request(self, deadline: float) -> None:
        """Kept alive: ready to read the client's next request."""
        self.__init__(self.sock, self.addr, deadline)

    def _maybe_continue(self, head: bytes, body: int, wanted: int) -> None:
        if not self.continued and body < wanted and _EXPECT.search(head):
            self.continued = True
            try:
                self.sock.send(_CONTINUE)
            except OSError:
                pass


class SandboxWorker(SyncWorker):
    """gunicorn's sync worker whose waiting (for requests, and for held answers) is done by a selector loop."""

    def run(self):
        for listener in self.sockets:
            listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        for listener in self.sockets:
            self.selector.register(listener, selectors.EVENT_READ, ("accept", listener))
        self.selector.register(self.PIPE[0], selectors.EVENT_READ, ("wake", None))
        self.reading: dict[int, Connection] = {}
        self.draining: dict[int, Connection] = {}
        self.held: list = []  # heap of (when, n, connection)
        self.order = itertools.count()
        self.body_limits, self.request_timeout, self.buffer_limit = self._limits()
        self.buffered = 0  # bytes received and not yet handed to the app, over every connection being read
        self.accept_paused = False
        self.keepalive_timeout = self.cfg.keepalive
        self.own_process = self._own_process_test()
        self.lane_queue: collections.deque[int] = collections.deque()  # bytes of each request the lane has queued
        self.lane_restarts = 0
        self.lane = None  # forked at the first whole-world operation (_lane_takes)
        while self.alive:
            self.notify()
            if not self.is_parent_alive():
                break
            self._release_due()
            self._expire_stalled()
            self._resume_accepting()
            for key, _ in self.selector.select(self._next_wakeup()):
                kind, item = key.data
                if kind == "accept":
                    self._accept(item)
                elif kind == "read":
                    self._read(item)
                elif kind == "write":
                    self._write(item)
                elif kind == "drain":
                    self._drain(item)
                elif kind == "lane":
                    self._lane_answered()
                else:
                    try:
                        os.read(self.PIPE[0], 1)
                    except OSError:
                        pass
        for _, _, connection in sorted(self.held):  # stopping: send what is held now
            self._start_writing(connection)
        deadline = time.monotonic() + 2
        while self.selector.get_map() and time.monotonic() < deadline and any(
                key.data[0] == "write" for key in self.selector.get_map().values()):
            for key, _ in self.selector.select(0.1):
                if key.data[0] == "write":
                    self._write(key.data[1])

    def handle_request(self, listener, req, client, addr):
        """The sync worker's, except that the connection may stay open (HTTP/1.1 keep-alive, --keep-alive seconds)
        when the client wants it, the request came alone and whole, and the answer's length is known."""
        environ, resp = {}, None
        try:
            self.cfg.pre_request(self, req)
            request_start = datetime.now()
            resp, environ = wsgi.create(req, client, addr, listener.getsockname(), self.cfg)
            if not (self.keepalive_timeout and client.single and client.whole):
                resp.force_close()
            self.nr += 1
            if self.nr >= self.max_requests:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                for item in respiter:
                    resp.write(item)
                resp.close()
                client.keep_alive = not resp.should_close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - request_start)
                if hasattr(respiter, "close"):
                    respiter.close()
        except (Exception, SystemExit):
            if resp and resp.headers_sent:
                self.log.exception("Error handling request")
                raise StopIteration()
            raise
        finally:
            try:
                self.cfg.post_request(self, req, environ, resp)
            except Exception:
                self.log.exception("Exception in post_request hook")

    # -- the loop's parts ------------------------------------------------------------------------------------------
    def _limits(self):
        """The sandbox's body limits (by the request line), request timeout, and the most bytes buffered at once over
        every connection (two whole-world imports); defaults for another app."""
        sandbox = getattr(self.wsgi, "extensions", {}).get("sandbox")
        settings = sandbox.settings if sandbox is not None else None
        vendor, whole_world = ((settings.max_body_bytes, settings.max_import_bytes) if settings is not None
                               else _BODY_LIMITS)

        def body_limit(head: bytes) -> int:
            """By the request target, as limits.body_limit decides once the app has routed it."""
            target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            return whole_world if _path_of(target) == IMPORT_PATH else vendor

        timeout = settings.request_timeout if settings is not None else _REQUEST_TIMEOUT
        return body_limit, timeout, 2 * whole_world

    def _pause_accepting(self) -> None:
        """Stop watching the listeners (the selector would report them ready again at once, spinning the CPU);
        the loop watches them again on its next turn with room."""
        if not self.accept_paused:
            for listener in self.sockets:
                self.selector.unregister(listener)
            self.accept_paused = True

    def _resume_accepting(self) -> None:
        if self.accept_paused and len(self.reading) < MAX_CONNECTIONS:
            for listener in self.sockets:
                self.selector.register(listener, selectors.EVENT_READ, ("accept", listener))
            self.accept_paused = False

    def _next_wakeup(self) -> float:
        soonest = 1.0
        if self.held:
            soonest = min(soonest, max(0.0, self.held[0][0] - time.monotonic()))
        return soonest

    def _accept(self, listener) -> None:
        """One connection at a time, read at once: a request that is already whole is served right away, as the
        sync worker would, and the next connection goes to whichever worker is free first."""
        if len(self.reading) >= MAX_CONNECTIONS:
            self._pause_accepting()
            return
        try:
            client, addr = listener.accept()
        except OSError as e:
            if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self._pause_accepting()  # out of descriptors: the backlog waits until connections close
                return
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ECONNABORTED):
                return
            raise
        client.setblocking(False)
        connection = Connection(client, addr, time.monotonic() + self.request_timeout)
        if not self._read(connection):  # not whole yet: wait for the rest without holding the process
            self.reading[client.fileno()] = connection
            self.selector.register(client, selectors.EVENT_READ, ("read", connection))

    def _read(self, connection: Connection) -> bool:
        """Take what the client sent; True once the connection is done with reading (served, or gone)."""
        try:
            data = connection.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._forget(connection)
            connection.sock.close()
            return True
        connection.received += data
        self.buffered += len(data)
        if connection.complete(self.body_limits):
            self._forget(connection)
            self._serve(connection)
            return True
        if self.buffered + sum(self.lane_queue) > self.buffer_limit:
            # Many clients each sending a large body slowly: refuse this one rather than hold them all.
            self._forget(connection)
            connection.out += _BUSY
            connection.whole = False
            self._start_writing(connection)
            return True
        return False

    def _serve(self, connection: Connection) -> None:
        """The request, to the app, as the sync worker would hand it; its answer, held or sent."""
        if self._lane_takes(connection):
            self._hand_to_lane(connection)
        else:
            self._serve_here(connection)

    def _serve_here(self, connection: Connection) -> None:
        listener = self.sockets[0]
        self.handle(listener, connection, connection.addr)  # writes into connection.out; never closes the socket
        if connection.dropped:
            return
        if connection.hold_ms:
            heapq.heappush(self.held, (time.monotonic() + connection.hold_ms / 1000, next(self.order), connection))
        else:
            self._start_writing(connection)

    # -- the lane: whole-world operations, answered by a copy of the worker --------------------------------------
    def _start_lane(self):
        """Fork the lane (the module's docstring says why); this process keeps its end of their socket pair."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._run_lane(theirs)  # never returns
        theirs.close()
        self.lane_pid = pid
        self.selector.register(ours, selectors.EVENT_READ, ("lane", None))
        return ours

    def _lane_takes(self, connection: Connection) -> bool:
        """Whether the lane answers this request: a whole one naming a whole-world operation, with room in the lane's
        queue, by count and by bytes (the bytes queued count against the worker's buffer bound). The lane is forked
        at the first such request (a worker that never gets one never has one), again after one exited, up to
        LANE_RESTARTS times; never on the memory backend."""
        if not (self.own_process(connection.received) and connection.whole and len(self.lane_queue) < LANE_QUEUE
                and self.lane_restarts <= LANE_RESTARTS
                and sum(self.lane_queue) + self.buffered + len(connection.received) <= self.buffer_limit):
            return False
        if self.lane is None:
            self.lane = self._start_lane()
        return True

    def _hand_to_lane(self, connection: Connection) -> None:
        """The connection's socket and its whole request (in a memory file: an import may be 64 MiB) go to the lane,
        which answers and closes it; this process's copy is closed now."""
        try:
            request = os.memfd_create("sandbox-request") if hasattr(os, "memfd_create") else _unnamed_file()
        except OSError:  # out of descriptors or memory: answered here
            self._serve_here(connection)
            return
        try:
            view = memoryview(connection.received)
            while view:
                view = view[os.write(request, view):]
            message = json.dumps({"addr": list(connection.addr)[:2], "continued": connection.continued})
        except OSError:
            os.close(request)
            self._serve_here(connection)
            return
        try:
            socket.send_fds(self.lane, [message.encode()], [connection.sock.fileno(), request])
        except OSError:
            self._lane_gone()
            self._serve_here(connection)
            return
        finally:
            os.close(request)
        self.lane_queue.append(len(connection.received))
        connection.sock.close()

    def _lane_answered(self) -> None:
        """One byte from the lane per answer it sent; nothing (or an error) when it is gone."""
        try:
            answered = self.lane.recv(64)
        except OSError:
            answered = b""
        if not answered:
            self._lane_gone()
        for _ in answered:
            if self.lane_queue:
                self.lane_queue.popleft()

    def _lane_gone(self) -> None:
        """The lane exited (killed, crashed): what it had queued is lost with it."""
        self.selector.unregister(self.lane)
        self.lane.close()
        self.lane = None
        self.lane_queue.clear()
        try:
            os.kill(self.lane_pid, signal.SIGKILL)  # if the pair broke while it lives, it must not answer twice
            os.waitpid(self.lane_pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.lane_restarts += 1
        if self.lane_restarts <= LANE_RESTARTS:
            self.log.warning("the lane of worker %s exited; another starts with the next whole-world operation",
                             self.pid)
        else:
            self.log.warning("the lane of worker %s exited %d times; the worker answers whole-world operations "
                             "itself", self.pid, self.lane_restarts)

    def _run_lane(self, link: socket.socket) -> None:
        """The lane's life: one handed request at a time, answered as the sync worker would (blocking), the
        connection closed after it, and a byte back to the worker for each. It answers what was queued even when
        the worker has gone (a restart, a reload), and ends when the worker's end of the pair closes."""
        try:
            # The worker's other connections (read, written, held, drained): the lane's copies would keep them open.
            others = [key.fileobj for key in self.selector.get_map().values() if isinstance(key.fileobj, socket.socket)]
            self.selector.close()  # the worker's: the lane never waits on it
            for sock in others + [held[2].sock for held in self.held]:
                sock.close()
            bound = _BoundAddress(self.sockets[0].getsockname())
            for listener in self.sockets:
                listener.close()
            self.tmp.close()  # the worker's heartbeat: the arbiter watches the worker, not its lane
            self.keepalive_timeout = 0  # one answer per connection
            while True:
                message, fds, _, _ = socket.recv_fds(link, 1024, 2)
                if not message:
                    break
                handed = json.loads(message)
                sock = socket.socket(fileno=fds[0])
                with os.fdopen(fds[1], "rb") as file:
                    file.seek(0)
                    connection = Connection(sock, tuple(handed["addr"]), 0.0)
                    connection.received = bytearray(file.read())
                connection.continued = handed["continued"]
                try:
                    self._answer_blocking(bound, connection)
                finally:
                    sock.close()
                try:
                    link.send(b".")
                except OSError:
                    pass  # the worker has gone: answer what it queued all the same
        except BaseException:  # noqa: BLE001 - stopped (a signal), or the pair broke: the lane ends
            pass
        finally:
            os._exit(0)

    def _answer_blocking(self, bound, connection: Connection) -> None:
        """Answer, then send the answer within the request timeout: a client that does not read it loses it."""
        self.handle(bound, connection, connection.addr)
        if connection.dropped:
            return
        time.sleep(connection.hold_ms / 1000)
        try:
            connection.sock.settimeout(self.request_timeout)
            connection.sock.sendall(connection.out)
            connection.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client is gone, or did not read in time

    def _own_process_test(self):
        """Whether a whole request (its request line) names an operation the spec marks `x-sandbox-own-process`;
        never on the memory backend or for an app that is not the sandbox. Every request is asked, so most are
        answered by the first segment of their path alone; a target with escapes (/%5Fsandbox/reset) is decoded
        first, as the app will, an absolute one (http://host/_sandbox/reset) read from its path, and a HEAD is the
        GET the app answers it with."""
        sandbox = getattr(self.wsgi, "extensions", {}).get("sandbox")
        table = getattr(self.wsgi, "extensions", {}).get("sandbox_routes")
        if sandbox is None or table is None or sandbox.settings.backend == "memory":
            return lambda received: False
        firsts = tuple({b"/" + t.template.split("/")[1].encode() + b"/" for t in table.paths if t.operation.own_process})

        def own_process(received: bytearray) -> bool:
            end = received.find(b"\r\n")
            if received.find(b"%", 0, end) < 0 and not any(received.find(first, 0, end) >= 0 for first in firsts):
                return False
            line = bytes(received[:end]).split(b" ")
            if len(line) != 3:
                return False
            method = line[0].decode("latin-1")
            found = table.operation_for("GET" if method == "HEAD" else method, _path_of(line[1]))
            return found is not None and found[0].operation.own_process

        return own_process

    def _release_due(self) -> None:
        now = time.monotonic()
        while self.held and self.held[0][0] <= now:
            self._start_writing(heapq.heappop(self.held)[2])

    def _start_writing(self, connection: Connection) -> None:
        """Send the answer; what the socket does not take at once is sent as it drains."""
        if self._send(connection):
            return
        try:
            self.selector.register(connection.sock, selectors.EVENT_WRITE, ("write", connection))
        except (ValueError, KeyError, OSError):
            connection.sock.close()

    def _write(self, connection: Connection) -> None:
        if self._send(connection):
            self.selector.unregister(connection.sock)

    def _send(self, connection: Connection) -> bool:
        """Send what the socket takes; True when all is sent and the connection closed (with FIN)."""
        try:
            sent = connection.sock.send(connection.out)
        except BlockingIOError:
            return False
        except OSError:
            sent = len(connection.out)  # the client is gone: nothing more to send
        del connection.out[:sent]
        if connection.out:
            return False
        if not connection.keep_alive:
            try:
                connection.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if connection.keep_alive:
            connection.next_request(time.monotonic() + self.keepalive_timeout)
            self.reading[connection.sock.fileno()] = connection
            self.selector.register(connection.sock, selectors.EVENT_READ, ("read", connection))
            return True
        if connection.whole:
            connection.sock.close()
        else:
            # The client is still sending a body that was refused: read and drop it for a moment, so the close does
            # not reset the connection before the client has read the answer.
            connection.deadline = time.monotonic() + 2
            self.draining[connection.sock.fileno()] = connection
            self.selector.register(connection.sock, selectors.EVENT_READ, ("drain", connection))
        return True

    def _expire_stalled(self) -> None:
        now = time.monotonic()
        for connection in [c for c in self.reading.values() if c.deadline <= now]:
            self._forget(connection)
            connection.sock.close()
        for connection in [c for c in self.draining.values() if c.deadline <= now]:
            self._close_drained(connection)

    def _drain(self, connection: Connection) -> None:
        try:
            if connection.sock.recv(65536):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self._close_drained(connection)

    def _close_drained(self, connection: Connection) -> None:
        del self.draining[connection.sock.fileno()]
        self.selector.unregister(connection.sock)
        connection.sock.close()

    def _forget(self, connection: Connection) -> None:
        """The connection is done with reading: its buffer no longer counts against the worker's."""
        self.buffered -= len(connection.received)
        if self.reading.pop(connection.sock.fileno(), None) is not None:
            self.selector.unregister(connection.sock)


def _unnamed_file() -> int:
    """Where there is no memfd_create (macOS): a temporary file, already unlinked."""
    with tempfile.TemporaryFile() as file:
        return os.dup(file.fileno())


class _BoundAddress:
    """The listener as the lane hands it to gunicorn: only its address is read (the lane has closed the socket)."""

    def __init__(self, name):
        self.name = name

    def getsockname(self):
        return self.name


def _path_of(target: bytes) -> str:
    """A request target's path as the app reads it: gunicorn percent-decodes it into PATH_INFO (of an absolute
    target, http://host/path, the part after the authority), werkzeug reads that as UTF-8 and keeps one leading
    slash."""
    if not target.startswith(b"/"):
        parts = target.split(b"/", 3)
        target = b"/" + (parts[3] if len(parts) == 4 else b"")
    return "/" + unquote_to_bytes(target.split(b"?", 1)[0]).decode("utf-8", "replace").lstrip("/")
