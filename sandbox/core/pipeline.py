"""The life of a request, in order. Every request routed to an operation goes through `handle`:

    resolve the world -> read its clock -> authenticate -> read the fault rules      (one read snapshot)
    -> count against the rate limit (when the world has one) -> validate -> decide the fault -> run the operation (in a transaction when it writes)
    -> check the response (strict mode) -> render -> journal

On Redis, whose lock brings the reads up to date in the same round trip, a write on the default world by a caller
that wrote lately takes its transaction's lock before these steps (`lock_ahead`): two round trips, not three.

Each step is a small function of one per-request object, the `Exchange`; handlers receive it too (as `call`).
An error anywhere is rendered in the mount's envelope; anything unexpected is logged and answered as the mount's
500, never with a stack trace. `journal` is the one place a request is recorded, once its answer is known: for an
operation that writes, in the same commit as its change.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from flask import Request, Response
from werkzeug.exceptions import RequestEntityTooLarge

from . import limits, logs, rate_limits, rendering
from .clock import from_millis, iso_millis, wall_now_iso
from .connection import connection_of
from .changes import Recording
from .errors import RequestContext, SandboxError, in_words
from .faults import (APPLIED_FAULTS, APPLIED_HEADER, DELAY_HEADER, FAULT_HEADER, GENERIC_FAULTS, VendorFault,
                     carry_out, held_by_server, magic_fault, not_appliable, wait)
from .journal import journal_entry, sent_part
from .mount import Mount
from .spec import Operation
from ..storage.store import StoreUnavailable, holding_long
from ..webhooks import outbox
from .world import DataGone, suffix_of
from .validation import validate_request

log = logging.getLogger("sandbox")


class RunningSandbox(Protocol):
    """What the pipeline and the handlers (through `call.sandbox`) ask of the running sandbox (app.Sandbox): its
    settings, specs and vendors, and its worlds."""

    settings: object  # config.Settings
    secrets: object  # masking.Secrets: what the journal and the logs never show
    credential_collections: set  # the collections whose records are credentials: no journal shows them
    specs: dict
    vendors: list
    default: object  # world.World: the default world

    def sweep(self) -> None: ...
    def lookups(self) -> AbstractContextManager: ...
    def world_for(self, mount_: Mount, req: Request): ...
    def touch(self, world) -> None: ...
    def wrote_lately(self, credential: str) -> bool: ...
    def note_writer(self, credential: str) -> None: ...
    def check_not_deleted(self, world) -> None: ...
    def create_workspace(self, seed: int | None = None, size: int | None = None, clock: str | None = None,
                         rate_limits: dict | None = None): ...
    def drop_workspace(self, workspace_id: str) -> bool: ...
    def workspaces(self) -> list: ...
    def idle_seconds(self, workspace_id: str) -> float: ...


@dataclass
class Exchange:
    """One request and everything the pipeline learns about it. Handlers read `operation`, `params`, `body`,
    `principal`, `world` (and through it `store`, `ids`), `settings`, `fault` and `context`."""

    request: Request
    mount: Mount
    sandbox: RunningSandbox
    operation: Operation | None = None  # None: the request matched no operation (404, 405)
    handler: object = None
    path_args: dict = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    world: object = None  # the world this request acts on (the default one, or a workspace)
    principal: object = None  # the authenticated caller
    now: datetime | None = None  # the world's time as the request's lookups read it (core/clock.py)
    limits: dict = field(default_factory=dict)  # the world's rate limits, read with its clock (core/rate_limits.py)
    frozen: bool = False  # whether the world's clock stands still
    subscribed: object = None  # the token of webhooks/outbox.SUBSCRIBED, set for this request
    rules: list = field(default_factory=list)  # fault rules that may fire on this operation
    params: dict = field(default_factory=dict)
    body: object = None
    problems: list | None = None  # what validation found; None: not validated yet
    fault: VendorFault | None = None  # a vendor's own fault, struck by its domain code where its documents say
    delay_ms: int = 0  # how long the answer was held on purpose (X-Sandbox-Delay, a rule's latency, a timeout)
    deferred_ms: int = 0  # how much of that the server holds after the operation ran (sandbox/serving/bridge.py)
    decided_by: str | None = None  # the fault that decided the answer, as the journal names it
    refused: str | None = None  # a refusal in words (errors.in_words), for the journal's `reason`
    recording: Recording | None = None  # a write's view of the store, noting what it changes (core/changes.py)
    response: Response | None = None
    sent: dict | None = None  # what the journal keeps of the request, made before a write takes its lock
    body_read: bool = False  # whether the request's body was read (within the size limit)
    dropped: bool = False  # a transport fault dropped the connection: the client received no answer
    journaled: bool = False
    after_the_write: str | None = None  # an applied generic fault, answered once the write is done
    applied: bool = False  # the write was applied, and a fault answered all the same

    @property
    def store(self):
        return self.recording or self.world.store

    @property
    def ids(self):
        return self.world.ids

    @property
    def settings(self):
        return self.sandbox.settings

    @property
    def context(self) -> RequestContext:
        return rendering.context_of(self.mount, self.request)


def handle(x: Exchange) -> Response:
    try:
        x.sandbox.sweep()  # never under a lock: dropping an expired workspace takes others
        with lock_ahead(x):
            look_up(x)
            count_against_the_limit(x)
            validate(x)
            carry_out_the_answer(x, decide_fault(x))
    except SandboxError as error:
        x.response = render_error(x, error)
    except RequestEntityTooLarge:  # a chunked body that ran past the limit while it was read
        limit = limits.body_limit(x.settings, x.operation)
        x.response = render_error(x, x.mount.error_for_status(413, limits.too_large(limit), []))
    except StoreUnavailable as error:  # the backend is away or the world's lock busy or lost: nothing was written
        x.journaled = not error.reachable  # a write's entry was undone with it: journal the 503, where possible
        x.response = render_error(x, x.mount.error_for_status(503, str(error), [], headers={
            "Retry-After": str(error.retry_after)}))
    except Exception:  # noqa: BLE001 - whatever it was, the client gets the vendor's 500 and the log the details
        log.exception("unexpected failure on %s %s", x.request.method, x.request.path)
        x.response = render_error(x, rendering.crash(x.mount))
    finally:
        if x.subscribed is not None:  # this request's, not the next one's on this thread
            outbox.SUBSCRIBED.reset(x.subscribed)
    rendering.echo_headers(x.mount, x.request, x.response)
    journal_answered(x)
    return x.response


def refuse(x: Exchange, error: SandboxError) -> Response:
    """A request that matched no operation (no such path, a method the path does not allow): its error, journaled
    in the default world like any other."""
    x.world = x.sandbox.default
    x.response = render_error(x, error)
    rendering.echo_headers(x.mount, x.request, x.response)
    journal_answered(x)
    return x.response


def look_up(x: Exchange) -> None:
    """Which world, who is calling, which fault rules may fire: one read snapshot."""
    try:
        with x.sandbox.lookups():
            resolve_world(x)
            if not (x.operation.writes and x.operation.whole_world):  # a reset or an import may replace it again
                x.store.being_replaced()
            with x.store.snapshot():  # on SQLite a workspace's own file, not the registry's
                read_the_clock(x)
                authenticate(x)
                read_fault_rules(x)
    finally:
        if x.world is not None:  # out of the snapshot, since it may write; a refused request uses its world too
            x.sandbox.touch(x.world)


def carry_out_the_answer(x: Exchange, generic: str | None) -> None:
    if generic is not None:
        run_generic_fault(x, generic)
    if x.response is None:
        run(x)


def lock_ahead(x: Exchange) -> AbstractContextManager:
    """The store's one saving on the pipeline's order: where taking a world's write lock also brings the reads up
    to date (`locks_before_lookups`: Redis), a write that will surely take it takes it before its lookups, which
    then need no round trip of their own; the operation's transaction joins it. A PATCH costs two round trips, not
    three. Elsewhere, and for any request that might wait or be refused, nothing happens here.

    Taken only for an operation that writes, on the default world (known without a lookup: a credential without a
    workspace suffix), by a caller that wrote lately (an unknown caller, a 401 to be, never waits on the lock),
    asking for no fault or delay, under run.py's server, which holds delayed answers itself: nothing waits under
    the lock. A fault rule that may fire is decided in a transaction of its own (FaultRules.pick), which takes the
    lock taken ahead; the operation's then takes it again."""
    if not (x.operation.writes and x.mount.journaled and x.sandbox.default.store.locks_before_lookups):
        return nullcontext()
    if held_by_server(x.request.environ) is None or FAULT_HEADER in x.request.headers or DELAY_HEADER in x.request.headers:
        return nullcontext()
    credential = x.mount.credential(x.request) if x.mount.credential else None
    if not (credential and not suffix_of(credential) and x.sandbox.wrote_lately(credential)):
        return nullcontext()
    if validated(x):  # it reads no store: a request refused anyway never waits on the lock
        return nullcontext()
    x.world = x.sandbox.default  # the world whose journal keeps a 503 for a busy lock
    x.sent = sent_of(x)  # made before the lock, as `run` does: its holder does only what must be done under it
    return x.world.store.lock_ahead()


# -- the steps, in order ---------------------------------------------------------------------------------------
def resolve_world(x: Exchange) -> None:
    x.world = x.sandbox.world_for(x.mount, x.request)


def read_the_clock(x: Exchange) -> None:
    """The world's time, once: everything the request stamps or lets expire reads this moment; and, in the same
    record, its rate limits."""
    clock, x.limits, subscribed = x.world.clock.lookup()
    x.now, x.frozen = from_millis(clock.now_ms()), clock.frozen_at is not None
    x.subscribed = outbox.SUBSCRIBED.set(subscribed)


def count_against_the_limit(x: Exchange) -> None:
    """A world with rate limits counts the request against its credential's window (core/rate_limits.py): past
    the limit, the vendor's 429. Without limits (the default), one comparison. Before validation, as an API
    gateway counts; after authentication, as an unknown caller has no count."""
    if not x.limits:
        return
    limit = x.limits.get(x.mount.name)
    key = x.mount.rate_key(x.principal, x.request) if limit is not None and x.mount.rate_key else None
    if key is None:
        return
    verdict = rate_limits.count(x.store, x.mount.name, key, limit, x.now)
    if not verdict.passed:
        x.decided_by = "limit:rate"
        when = (f"this world's clock is frozen: the window ends once it is advanced {verdict.reset_seconds} s "
                "(POST /_sandbox/clock)" if x.frozen else f"retry after {verdict.reset_seconds} s")
        raise x.mount.error_for_status(
            429, f"Rate limit: {verdict.limit} requests per {limit['windowSeconds']} s for this credential in this "
                 f"world (GET /_sandbox/rate-limits); {when}", [], headers=verdict.headers())


def authenticate(x: Exchange) -> None:
    if x.operation.secured and x.mount.authenticate is not None:
        try:
            x.principal = x.mount.authenticate(x.world, x.request, x.operation, x.now)
        except SandboxError as refused:  # no credential known: the world's data itself may be gone (as health says)
            if refused.status == 401 and x.world.vanished():
                raise DataGone(x.world.id, x.settings.backend) from None
            raise


def read_fault_rules(x: Exchange) -> None:
    x.rules = x.world.faults.applicable(x.mount.name, x.operation.operation_id)


def validate(x: Exchange) -> None:
    problems = validated(x)
    if problems:
        raise x.mount.error_for_status(400, rendering.summary(problems), problems)


def validated(x: Exchange) -> list:
    """The request checked against its operation once (`lock_ahead` may ask first): its problems."""
    if x.problems is None:
        x.params, x.body, x.problems = validate_request(x.operation, x.request, x.path_args)
        x.body_read = bool(x.operation.body_media_types)  # read and cached: the journal may show it
    return x.problems


def decide_fault(x: Exchange) -> str | None:
    """Header first, then a magic value, then the world's rules; any delay asked for is waited out here. Returns
    the generic fault to carry out now, if any; a vendor's own fault is left in `x.fault` for its domain code."""
    named = x.params.get(FAULT_HEADER) or magic_fault(x.operation, x.params, x.body)
    applied = x.params.get(APPLIED_HEADER) == "true" and FAULT_HEADER in x.params
    why = not_appliable(named, APPLIED_HEADER) if applied else None
    if why:
        raise x.mount.error_for_status(400, why, [])
    delay = x.params.get(DELAY_HEADER, 0)
    generic = named if named in GENERIC_FAULTS else None
    if named is None and any(rule.fault in GENERIC_FAULTS for rule in x.rules):
        rule = x.world.faults.pick(x.mount.name, x.operation.operation_id, GENERIC_FAULTS)
        if rule is not None:
            generic, delay, applied = rule.fault, delay + rule.latency_ms, rule.applied
    if generic is None and (named is not None or any(rule.fault in x.mount.faults for rule in x.rules)):
        x.fault = VendorFault(named, x.world.faults, x.mount.name, x.operation.operation_id, x.mount.faults,
                              struck=lambda fault: _struck(x, fault), hold=lambda ms: hold(x, ms),
                              applied=applied and named in APPLIED_FAULTS)
    hold(x, delay)
    if generic is not None and applied and generic in APPLIED_FAULTS and x.operation.writes and x.mount.journaled:
        x.after_the_write = generic  # answered by `run`, once the operation has written
        return None
    if generic is not None:
        x.decided_by = f"fault:{generic}"
    return generic


def _struck(x: Exchange, fault: str) -> None:
    x.decided_by = f"fault:{fault}"


def hold(x: Exchange, milliseconds: int) -> None:
    """Hold the answer so long on purpose. The sandbox's worker sends it when its time comes, serving others
    meanwhile (the operation runs at once); under another server this waits here, before the operation runs."""
    if milliseconds <= 0:
        return
    x.delay_ms += milliseconds
    held = held_by_server(x.request.environ)
    if held is None:
        wait(milliseconds)
    else:
        held(milliseconds)
        x.deferred_ms += milliseconds


def run_generic_fault(x: Exchange, fault: str) -> None:
    x.response, x.dropped = carry_out(fault, x.mount.error_for_status, x.request.environ)


def run(x: Exchange) -> None:
    """The operation's handler. A vendor operation that writes runs in one transaction with its journal entry, the
    only one it runs in (domain code opens none): one commit, and an answer that fails leaves nothing written. A
    vendor fault's hold (the publisher timeout) waits in run.py's server once the lock is given back; under another
    server it sleeps under the world's write lock."""
    if x.operation.writes and x.mount.journaled:
        x.sent = x.sent or sent_of(x)  # outside the lock: its holder does only what must be done under it
        x.recording = Recording(x.world.store, x.sandbox.credential_collections)
        with x.store.transaction():
            try:
                answer(x)
                if x.after_the_write is not None:
                    answer_the_fault_after_the_write(x)
            except SandboxError as refusal:
                if x.fault is None or x.decided_by is None:
                    x.recording = None
                    raise  # rolled back: nothing the operation wrote is kept
                # A vendor fault struck, before anything was written (VendorFault), or after, when it is applied:
                # the refusal is committed with the rule's spending (and the write), so a one-shot rule is spent
                # once, whoever answers next.
                x.response = render_error(x, refusal)
                x.applied = x.fault.applied
            journal(x)
        note_writer(x)
    elif x.operation.writes and x.operation.whole_world:
        with holding_long():  # a reset or an import: the server's loop does not wait behind it (store.WouldWait)
            answer(x)
        x.sandbox.check_not_deleted(x.world)  # long enough for a deletion to land under it
    else:
        answer(x)


def answer_the_fault_after_the_write(x: Exchange) -> None:
    """An applied fault (faults.APPLIED_FAULTS): the operation answered, and its change commits with the journal
    entry; the client gets the fault instead of the answer, as when production's answer is lost after the work."""
    x.decided_by = f"fault:{x.after_the_write}"
    try:
        x.response, x.dropped = carry_out(x.after_the_write, x.mount.error_for_status, x.request.environ)
    except SandboxError as error:
        x.response = render_error(x, error)
    x.applied = True


def note_writer(x: Exchange) -> None:
    """A write the default world accepted: its caller may take the lock ahead next time (`lock_ahead`)."""
    if not (x.store.locks_before_lookups and x.world is x.sandbox.default and x.response.status_code < 400
            and x.mount.credential):
        return
    credential = x.mount.credential(x.request)
    if credential:
        x.sandbox.note_writer(credential)


def answer(x: Exchange) -> None:
    result = x.handler(x)
    if isinstance(result, Response):  # non-JSON answers (a spec as YAML) are built by the handler
        x.response = result
        return
    status, payload = result if isinstance(result, tuple) else (200, result)
    if x.settings.strict_responses:
        check_response(x, status, payload)
    x.response = rendering.json_response(payload, status)


def check_response(x: Exchange, status: int, payload) -> None:
    problems = x.operation.response_problems(status, payload)
    if problems:
        raise rendering.ResponseContractError(f"{x.operation.operation_id} answered {status} with {problems[0]}; "
                                              "its spec forbids that")


def render_error(x: Exchange, error: SandboxError) -> Response:
    if x.decided_by is None:  # a fault that raised it keeps its own name
        x.decided_by = error.rule
    x.refused = in_words(error)
    return rendering.render(x.mount, error, x.context)


def journal(x: Exchange) -> None:
    """The request's entry in the journal of the world it acted on, with what the client received."""
    if x.journaled or not x.mount.journaled or x.world is None:
        return
    x.journaled = True
    status = None if x.dropped else x.response.status_code
    rule = x.decided_by or ("ok" if status is not None and status < 400 else "error")
    operation = x.operation.operation_id if x.operation is not None else None
    duration = (time.perf_counter() - x.started) * 1000 + x.deferred_ms  # as the client waits for it
    journal_ = x.world.journal
    reference = journal_.record(journal_entry(x.sent or sent_of(x), x.response, x.mount.name, operation, rule,
                                              duration, wall_now_iso(), world_time(x), x.sandbox.secrets,
                                              dropped=x.dropped, delay_ms=x.delay_ms, applied=x.applied,
                                              reason=reason_of(x, rule, status),
                                              changes=x.recording.changes(x.sandbox.secrets.body_of)
                                              if x.recording else None))
    connection = connection_of(x.request.environ)  # run.py's server: it may find the client gone
    if connection is not None:
        connection.undelivered = lambda: journal_.undelivered(reference)


def reason_of(x: Exchange, rule: str, status: int | None) -> str:
    """What decided the answer, in words (the journal's `reason`): ok, fault: <name>, or the refusal's own."""
    if rule.startswith("fault:"):
        return f"fault: {rule[6:]}" + (" (applied: the write was kept)" if x.applied else "")
    if x.refused is not None:
        return x.refused
    return "ok" if status is not None and status < 400 else rule


def world_time(x: Exchange) -> str:
    """The world's time of the request: as its lookups read it, or (refused before them) as the clock reads now."""
    return iso_millis(x.now if x.now is not None else x.world.clock.now())


def journal_answered(x: Exchange) -> None:
    """`journal`, for a request already answered: if the store went away meanwhile (Redis down), the entry is lost
    and the client keeps its answer (the store logs the outage once). Then the request's line in the log."""
    try:
        journal(x)
    except StoreUnavailable:
        pass
    log_line(x)


def log_line(x: Exchange) -> None:
    """The request's one line in the log (core/logs.py): what the journal holds, in brief, secrets masked."""
    if not logs.requests.isEnabledFor(logging.INFO):
        return
    x.request.environ[logs.LOGGED] = True
    fault = x.decided_by[6:] if x.decided_by and x.decided_by.startswith("fault:") else None
    logs.request_line(x.request.method, x.sandbox.secrets.query_of(x.request.full_path.rstrip("?")),
                      None if x.dropped else x.response.status_code,
                      (time.perf_counter() - x.started) * 1000 + x.deferred_ms, x.mount.name,
                      x.operation.operation_id if x.operation is not None else None,
                      x.world.id if x.world is not None else None, fault)


def sent_of(x: Exchange) -> dict:
    return sent_part(x.request, _body_as_read(x), x.sandbox.secrets)


def _body_as_read(x: Exchange) -> bytes:
    """The body the pipeline read (cached by then). A request refused before its body was read (a 401, a 403, a
    429) has it read now, within the size limit the server already holds it to, so its entry shows what was sent
    and `verify` can match it; one refused for its size stays unread. b"" when there is none or the read failed
    (bad framing, a chunked body past the limit)."""
    if not x.body_read:
        size_refused = x.response is not None and x.response.status_code in (413, 414, 431)
        if x.operation is None or not x.operation.body_media_types or size_refused:
            return b""
    try:
        return x.request.get_data(cache=True)
    except Exception:  # noqa: BLE001 - a failed read is the client's framing: it was (or will be) told so
        return b""
