"""Faults on demand: documented failures reproduced by a header, a magic value, or a rule set through the API.

One model for all three: a request ends up with at most one fault and a delay. Generic faults (latency, 429, 500,
transport faults) are carried out here (`carry_out`), before the operation runs, so they write nothing. A vendor's
own faults (a publisher timeout, Capillary's 750) are handed to its domain code as a `VendorFault`, which strikes
where the vendor's documents place the failure (after its 404 and 409); a rule for one is spent only there. Which
faults an operation accepts is the enum of its `X-Sandbox-Fault` header (the spec's `x-sandbox-headers` plus the
operation's `x-sandbox-faults`, which core/spec.py turns into a header parameter the vendor's API does not list), and
its magic values are its `x-sandbox-magic-values`: the spec stays the catalogue.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import random
import socket
import struct
import time
from dataclasses import dataclass
from typing import Callable

from flask import Response

from .connection import connection_of
from ..storage.store import must_finish

FAULT_HEADER = "X-Sandbox-Fault"
DELAY_HEADER = "X-Sandbox-Delay"
APPLIED_HEADER = "X-Sandbox-Applied"

GENERIC_FAULTS = {
    "latency": "Answers normally, after the rule's latencyMs (or X-Sandbox-Delay).",
    "rate-limit": "429 in the vendor's envelope, with Retry-After; nothing written.",
    "server-error": "500 in the vendor's envelope; nothing written (applied: written first, then the 500).",
    "connection-reset": "The connection is reset before any byte of the answer (over HTTP; in-process: 502 body-less); "
                        "applied: after the write.",
    "empty-response": "The connection is closed without an answer (over HTTP; in-process: an empty 502); applied: after "
                      "the write.",
    "malformed-body": "200 with a truncated JSON body; nothing written.",
}
TRANSPORT_FAULTS = {"connection-reset", "empty-response", "malformed-body"}
# The faults that may come after the write instead of instead of it (a rule's `applied`, X-Sandbox-Applied): the
# change is committed, its events recorded, and the client gets the failure all the same, as when production's
# answer is lost after the work was done (seed 000: the PATCH "Publishes the update:purchase-history pub/sub event;
# the store service processes it and performs the DB write", and answers 502 when "the publisher times out": a
# message that timed out may still have been delivered). A held answer (latency) is always applied: the operation
# runs at once, the answer waits.
APPLIED_FAULTS = {"server-error", "connection-reset", "empty-response", "publisher-timeout"}
RETRY_AFTER_SECONDS = 1
log = logging.getLogger("sandbox")


@dataclass
class FaultRule:
    """vendor x operation x probability x effect, with its own seeded dice so a probabilistic run replays."""

    id: int
    vendor: str
    fault: str
    operation: str = "*"
    probability: float = 1.0
    count: int | None = None  # how many more times it may fire; None: no limit
    latency_ms: int = 0
    seed: int = 0
    fired: int = 0
    rolls: int = 0  # dice thrown so far: roll n is the same whenever, and in whichever worker, it is thrown
    applied: bool = False  # the write is applied before the fault answers (APPLIED_FAULTS)

    def applies(self, vendor: str, operation: str) -> bool:
        return self.vendor == vendor and self.operation in ("*", operation) and self.count != 0

    def roll(self) -> bool:
        self.rolls += 1
        if self.probability < 1.0:
            dice = random.Random(f"fault-rule:{self.seed}:{self.vendor}:{self.operation}:{self.fault}:{self.rolls}")
            if dice.random() >= self.probability:
                return False
        self.fired += 1
        if self.count is not None:
            self.count -= 1
        return True

    def to_json(self) -> dict:
        return {"id": self.id, "vendor": self.vendor, "operation": self.operation, "fault": self.fault,
                "probability": self.probability, "count": self.count, "latencyMs": self.latency_ms,
                "seed": self.seed, "fired": self.fired, "applied": self.applied}


class NotAppliable(ValueError):
    """`applied` asked of a fault that cannot come after the write (APPLIED_FAULTS)."""


def not_appliable(fault: str | None, asked_by: str = "applied") -> str | None:
    """Why `applied` (a rule's field, or the X-Sandbox-Applied header: `asked_by`) cannot go with this fault, in the
    API's words; None when the fault can come after a write."""
    if fault in APPLIED_FAULTS:
        return None
    return f"{asked_by} is for the faults that can come after a write ({', '.join(sorted(APPLIED_FAULTS))}); {fault} cannot"


class TooManyRules(Exception):
    """A world holds at most FaultRules.LIMIT rules: every request of a vendor reads them all."""


class FaultRules:
    """A world's fault rules, kept in its store (collection `_fault_rules`) so that every worker process
    applies the same rules and counts their firings together."""

    COLLECTION = "_fault_rules"
    LIMIT = 100

    def __init__(self, store):
        self._store = store

    def add(self, **fields) -> FaultRule:
        with self._store.transaction():
            if len(self._store.all(self.COLLECTION)) >= self.LIMIT:
                raise TooManyRules(f"This world already has {self.LIMIT} fault rules, the most it keeps: delete some "
                                   "(DELETE /_sandbox/faults/{ruleId}, or DELETE /_sandbox/faults for all)")
            rule = FaultRule(id=self._store.next_value(self.COLLECTION), **fields)
            self._save(rule)
            return rule

    def add_rule(self, spec: dict) -> FaultRule:
        """A rule as POST /_sandbox/faults, scenarios and run.py --faults spell it (camelCase; FaultRule's defaults
        stand for what is left out)."""
        names = {"vendor": "vendor", "fault": "fault", "operation": "operation", "probability": "probability",
                 "count": "count", "latencyMs": "latency_ms", "seed": "seed", "applied": "applied"}
        why = not_appliable(spec.get("fault")) if spec.get("applied") else None
        if why:
            raise NotAppliable(why)
        return self.add(**{names[key]: value for key, value in spec.items() if key in names})

    def remove(self, rule_id: int) -> bool:
        return self._store.delete(self.COLLECTION, str(rule_id))

    def clear(self) -> int:
        """Delete every rule; how many there were."""
        with self._store.transaction():
            rules = self.all()
            for rule in rules:
                self._store.delete(self.COLLECTION, str(rule.id))
            return len(rules)

    def all(self) -> list[FaultRule]:
        """The rules in force. A stored record that is not a rule (a store damaged by hand or by an older version)
        is skipped, said once in the log, and gone at the next reset."""
        rules = []
        for record in self._store.all(self.COLLECTION):
            try:
                rules.append(FaultRule(**record))
            except TypeError:
                _warn_once(f"skipping a damaged fault rule record {str(record)[:200]}; POST /_sandbox/reset clears it")
        return rules

    def applicable(self, vendor: str, operation: str) -> list[FaultRule]:
        """The rules that may fire on this operation: the one read most requests need (no rule, no lock)."""
        return [rule for rule in self.all() if rule.applies(vendor, operation)]

    def pick(self, vendor: str, operation: str, faults) -> FaultRule | None:
        """The rule among those for `faults` that fires on this request, if any (the count and dice of each rule
        tried are updated, whichever fires)."""
        with self._store.transaction():  # read again under the lock: another worker may have used a rule up
            for rule in self.all():
                if rule.fault in faults and rule.applies(vendor, operation):
                    fires = rule.roll()
                    self._save(rule)
                    if fires:
                        return rule
        return None

    def _save(self, rule: FaultRule) -> None:
        self._store.put(self.COLLECTION, str(rule.id), dataclasses.asdict(rule))
        must_finish()


class VendorFault:
    """A vendor's own fault, handed to its domain code, which calls `strike()` where the vendor's documents place
    the failure. A header or magic value names the fault outright; a rule is only armed, and is spent (counted as
    fired, its dice thrown) by `strike()`, so a request answered 404 or 409 before that point leaves it armed.
    Domain code strikes before it writes anything: the pipeline commits the refusal of a fault that struck (with the
    rule's spending, in the operation's transaction) instead of rolling it back (pipeline.run)."""

    def __init__(self, named: str | None, rules: FaultRules, vendor: str, operation: str,
                 faults, struck: Callable[[str], None], hold: Callable[[int], None], applied: bool = False):
        self._named = named
        self.applied = applied  # a named fault's: X-Sandbox-Applied; a rule's own, once it strikes
        self._rules = rules
        self._where = (vendor, operation)
        self._faults = faults  # the vendor's own fault names: the only rules spent here
        self._struck = struck  # told the fault's name when one strikes
        self.hold = hold  # holds the answer so many ms on purpose (a rule's latency, a publisher's timeout)

    def strike(self) -> str | None:
        """The fault that strikes now, if any, its answer held for the rule's latency."""
        fault, delay = self._named, 0
        if fault is None:
            rule = self._rules.pick(*self._where, self._faults)
            if rule is None:
                return None
            fault, delay, self.applied = rule.fault, rule.latency_ms, rule.applied
        self.applied = self.applied and fault in APPLIED_FAULTS
        self.hold(delay)
        self._struck(fault)
        return fault


@functools.lru_cache(maxsize=64)  # bounded: the messages name stored records
def _warn_once(message: str) -> None:
    log.warning(message)


def accepted_faults(operation) -> list[str]:
    """The faults an operation accepts: its X-Sandbox-Fault header's enum (see Spec._sandbox_headers)."""
    for param in operation.parameters:
        if param.name.lower() == FAULT_HEADER.lower():
            return list(param.schema.get("enum", []))
    return []


def magic_fault(operation, params: dict, body) -> str | None:
    """A documented magic value in the request (a field or parameter that always triggers a fault)."""
    for magic in operation.extensions.get("x-sandbox-magic-values", ()):
        source = body if magic["in"] == "body" else params
        if isinstance(source, dict) and source.get(magic["name"]) == magic["value"]:
            return magic["fault"]
    return None


def carry_out(fault: str, error_for_status, environ) -> tuple[Response | None, bool]:
    """Carry out a generic fault: (the answer, or None when the request is then answered normally; whether the
    connection was dropped, so the client received no answer at all)."""
    if fault == "latency":
        return None, False
    if fault == "rate-limit":
        raise error_for_status(429, f"Too many requests (injected fault); retry after {RETRY_AFTER_SECONDS} s",
                               [], headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if fault == "server-error":
        # The same words whether or not the write was applied first: the client cannot tell which.
        raise error_for_status(500, "Unexpected server error (injected fault)", [])
    if fault == "malformed-body":
        return Response('{"truncated": tru', status=200, mimetype="application/json"), False
    # connection-reset / empty-response: over HTTP the client sees the connection drop; in-process, an empty 502.
    dropped = drop_connection(environ, reset=fault == "connection-reset")
    return Response(b"", status=502), dropped


def drop_connection(environ, reset: bool) -> bool:
    """Close the client's connection under the server's feet: with a TCP reset, or an orderly close with no answer.
    False when there is no connection to close (in-process calls). run.py's server (sandbox/serving/bridge.py)
    drops it for us; under another server, the socket is closed here."""
    connection = connection_of(environ)
    if connection is not None:
        return connection.drop(reset)
    sock = environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return False
    if reset:
        # SO_LINGER with a zero timeout makes the last close send RST. Werkzeug keeps its own reference to the socket
        # (and writes its answer through it), so it is shut down here too: the client sees the connection end, by
        # FIN; only run.py's own server can make it a true reset.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    # Not closed here: the server closes its own socket. Closed under its feet, its next write fails with EBADF,
    # which threaded servers log as a traceback for a fault that was asked for; on a socket shut down it gets EPIPE,
    # which they take as the client gone (werkzeug logs nothing).
    return True


def held_by_server(environ) -> Callable[[int], None] | None:
    """run.py's server holds an answer without holding the process (it sends it when its time comes,
    sandbox/serving/bridge.py); None under other servers, where holding an answer means sleeping."""
    return getattr(connection_of(environ), "hold", None)


def wait(milliseconds: int) -> None:
    if milliseconds > 0:
        time.sleep(milliseconds / 1000)
