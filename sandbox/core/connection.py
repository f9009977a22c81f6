"""What the app and run.py's server ask of each other about a request's connection: the one place the two sides
meet (the server's side is sandbox/serving/bridge.py's `Connection`).

The server puts its connection in the request's WSGI environ (`connection_of`). The app asks it to:
- hold the answer so many milliseconds, serving other requests meanwhile (`hold`: X-Sandbox-Delay, a latency rule,
  the publisher timeout);
- drop the connection instead of answering, with a TCP reset or an orderly close (`drop`: the transport faults);
and tells it what to record if the answer cannot be delivered (`undelivered`: the journal marks its entry).
The server asks the app's store not to wait for a world's write lock in its event loop (store.not_waiting; a
request that would is made again in a thread, store.WouldWait).

Under any other server (granian, Flask's, the test client) there is no connection here: the app holds an answer by
sleeping, and drops a connection by shutting its socket down or, in-process, answering an empty 502 (faults.py).
"""
from __future__ import annotations

from typing import Callable, Protocol

ENVIRON_KEY = "sandbox.connection"


class ServerConnection(Protocol):
    undelivered: Callable[[], None] | None  # set by the app once the request is journaled

    def hold(self, milliseconds: int) -> None:
        """Send the answer this much later than it is made, without holding the process meanwhile."""

    def drop(self, reset: bool) -> bool:
        """Close the connection instead of answering (with a TCP reset when `reset`): the client gets no answer."""


def connection_of(environ) -> ServerConnection | None:
    return environ.get(ENVIRON_KEY)
