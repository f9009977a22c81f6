"""uvicorn's httptools protocol, with the three things the sandbox needs of a connection that uvicorn leaves out:

- a request must arrive whole within the request timeout (run.py --request-timeout) of its first byte (of the
  connection, for the first): uvicorn waits for headers and bodies for ever, so a slow or stalled client
  (slowloris) would keep its connection and buffers; it gets a 408 and the connection is closed. Request line and
  headers are bounded too (HEAD_LIMIT: a 431);
- a request the parser refuses is answered 400 in JSON (the control API's envelope: it never reached a vendor),
  not uvicorn's plain text; every refusal is sent only after the requests pipelined before it have had their
  answers (uvicorn wrote its 400 at once and closed, losing them);
- a client that half-closes after its requests (shutdown(SHUT_WR)) still gets their answers;
- the app reaches the connection's transport (`scope["extensions"]["sandbox.transport"]`), which the transport
  faults reset or close (bridge.Connection).
"""
from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .balance import LEDGER


def _refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": status, "message": message}}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"connection: close\r\n\r\n").encode("latin-1") + body


HEAD_LIMIT = 64 * 1024  # bytes of request line and headers; beyond, a 431 (core/limits.py answers 16 KiB in the
# vendor's envelope: this bound only keeps what llhttp, which has none, would otherwise buffer)
MAX_CONNECTIONS = 1000  # open connections per worker process; each costs at most HEAD_LIMIT and one body being
# read (bridge.BODY_BUDGET bounds those together)
PIPELINE_LIMIT = 16  # requests waiting behind the one being answered; the next is refused (a 400), so a connection
# holds a few dozen KB of queued requests, not one per request a single 256 KiB read can carry (about 20 MB)


class _TooManyPipelined(Exception):
    """Raised from the parser's callback: httptools stops there, and the protocol refuses the rest."""


class SandboxProtocol(HttpToolsProtocol):
    request_timeout = 10.0  # set by the worker from the app's settings

    def connection_made(self, transport) -> None:
        self.head_bytes = 0  # of the request being read, until its headers are complete; None after
        self.refusal: bytes | None = None  # the answer to a request refused, sent once those before it are answered
        self.running = None  # the cycle whose ASGI task runs (uvicorn starts pipelined ones one at a time)
        self.client_done = False  # the client half-closed: close once every request it sent is answered
        self.too_many = False  # the parser stopped at a request beyond PIPELINE_LIMIT
        LEDGER.opened()
        super().connection_made(transport)
        self.deadline = self.loop.call_later(self.request_timeout, self._too_slow)
        if len(self.connections) > MAX_CONNECTIONS:  # the next ones wait in the listen backlog
            self.refusal = _refusal(503, "Service Unavailable", f"This worker holds {MAX_CONNECTIONS} connections "
                                    "already; retry after a second, or reuse a connection")
            self._send_refusal()

    def connection_lost(self, exc) -> None:
        LEDGER.closed()
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refusal is not None:
            return  # refused: nothing more is read into a request (uvicorn resumes reading after each answer)
        if self.head_bytes is not None:
            self.head_bytes += len(data)
        super().data_received(data)
        # Still in the head after what came (the parser calls on_headers_complete as it reads): past the bound?
        if self.head_bytes is not None and self.head_bytes > HEAD_LIMIT and self.refusal is None:
            self._refuse(431, "Request Header Fields Too Large",
                         f"The request line and headers pass {HEAD_LIMIT:,} bytes: send fewer or shorter headers")

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        super().on_headers_complete()

    def on_message_begin(self) -> None:
        if len(self.pipeline) >= PIPELINE_LIMIT:
            self.too_many = True
            raise _TooManyPipelined()
        self.head_bytes = 0
        super().on_message_begin()
        self.scope["extensions"] = {"sandbox.transport": self.transport, "sandbox.protocol": self}
        if self.deadline is None:
            self.deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        if self.cycle.response_complete and not self.pipeline and not self.transport.is_closing():
            # The rest of a body refused by its size has been read and dropped after its answer; the bytes cancelled
            # uvicorn's keep-alive timer, so an idle connection is closed as after any answer.
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def send_400_response(self, msg: str) -> None:
        if self.refusal is not None:
            return  # more of the same bytes, already refused
        if self.too_many:
            self._refuse(400, "Bad Request", f"More than {PIPELINE_LIMIT} requests were sent ahead of their answers "
                                             "on one connection: wait for answers, or open more connections")
        else:
            self._refuse(400, "Bad Request", "The request is not valid HTTP/1.1 (RFC 9112): check its request line, "
                                             "headers and body framing")

    def _too_slow(self) -> None:
        self.deadline = None
        if self.head_bytes is None and self.cycle.response_complete:
            self.transport.close()  # answered already (its body refused by size): the rest never came
            return
        if self.refusal is None and not self.transport.is_closing():
            self._refuse(408, "Request Timeout",
                         f"The request did not arrive whole within {self.request_timeout:g} s; send it at once")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        """Refuse the request being read (in JSON, then close), once the requests pipelined before it are answered.
        Nothing more is read; a refused request whose head was read is dropped before the app sees its body."""
        self._disarm()
        self.flow.pause_reading()
        self.refusal = _refusal(status, reason, message)
        broken = self.cycle if self.head_bytes is None else None
        queued = [item for item in self.pipeline if item[0] is broken]  # (cycle, app) pairs
        if queued:
            self.pipeline.remove(queued[0])
        elif broken is not None and not broken.response_complete:
            broken.disconnected = True  # its task, waiting for the body, ends without a word
            broken.message_event.set()
        if not self.pipeline and (self.running is None or self.running.response_complete or self.running is broken):
            self._send_refusal()

    def _start_asgi_task(self, cycle, app) -> None:
        self.running = cycle
        super()._start_asgi_task(cycle, app)

    def eof_received(self) -> bool:
        """The client has sent all it will (a half-close, as `nc -N` does): what it sent is still answered, then the
        connection is closed. (uvicorn returns None here, which closes the connection at once and loses the answers
        to requests pipelined before the FIN.)"""
        self.client_done = True
        if self.running is None or self.running.response_complete:
            self.transport.close()
        return True

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing() or not self.running.response_complete:  # the next pipelined one started
            return
        if self.refusal is not None and not self.pipeline:
            self._send_refusal()
        elif self.client_done and not self.pipeline:
            self.transport.close()

    def _send_refusal(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(self.refusal)
            self.transport.close()

    def hold_deadline(self) -> None:
        """The app is waiting before it reads the body (a state import waiting for a slot): not the client's time."""
        self._disarm()

    def restart_deadline(self) -> None:
        if self.deadline is None and self.cycle.more_body and not self.transport.is_closing():
            self.deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
