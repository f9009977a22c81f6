"""The sender: one thread per sandbox process, started when the process first meets a webhook (a subscription, a
redelivery) and by run.py's workers at start, so deliveries left by a process that died are sent by another.
Every POLL_SECONDS it looks at the worlds where this process wrote deliveries still pending (outbox.ACTIVE), and
every SWEEP_SECONDS at every world, so a world idle for webhooks costs nothing between sweeps. It claims those due
on the world's clock whose lease is free (a transaction: one sender at a time per delivery, across workers and instances), sends them outside any
lock, and writes each attempt back if its lease is still its own. A sender that dies mid-send leaves the lease to
expire (LEASE_SECONDS): the delivery is sent again, a duplicate, as real senders do (at-least-once).

Signed the Standard Webhooks 1.0 way with its reference library (`standardwebhooks`): `webhook-id` (the delivery's
id, the receiver's idempotency key), `webhook-timestamp` (Unix seconds on the wall clock: receivers reject
timestamps more than 5 minutes from their own time, so the world's time rides in the body instead), and
`webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`."""
from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from standardwebhooks import Webhook

from ..core.clock import epoch_ms, iso_millis, wall_now_iso
from ..storage.store import StoreUnavailable
from . import outbox
from .subscriptions import Subscriptions

POLL_SECONDS = 0.2  # how often the worlds with deliveries pending in this process are looked at
SWEEP_SECONDS = 10  # how often every world is: deliveries another process left (it died, or only enqueued)
LEASE_SECONDS = 30
SEND_TIMEOUT_SECONDS = 3
BATCH = 20  # deliveries claimed at once per world
MAX_DELAY_MS = 30_000
# Delivery faults, set as fault rules of the pseudo-vendor "webhooks" (POST /_sandbox/webhooks/faults), each
# subscription an "operation": what receivers meet from real senders, seeded like every rule.
DELIVERY_FAULTS = {
    "duplicate": "The delivery is sent twice, with the same webhook-id.",
    "delay": "The delivery waits delayMs (wall clock, at most 30 s) before it is sent.",
    "out-of-order": "The delivery is held back until the next one to the same subscription has been sent.",
    "bad-signature": "The delivery is signed with another secret: the receiver must refuse it (then it is retried).",
}
log = logging.getLogger("sandbox")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer (a failed attempt), never followed: it could point past the allowed hosts."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


# No proxy from the environment either: a delivery goes to the host its subscription names, nowhere else.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


class Sender:
    def __init__(self, sandbox):
        self._sandbox = sandbox
        self._owner = ""  # drawn when the thread starts: in each worker, after the fork
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._owner = f"{os.getpid()}:{secrets.token_bytes(6).hex()}"  # whose lease it is
                self._stopping.clear()
                self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """End the thread after its round (an app made in a process that goes on without it: a test's); what is
        pending stays in the outbox, for the next sender."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
        if thread is not None:
            thread.join(SEND_TIMEOUT_SECONDS + 1)

    def _run(self) -> None:
        swept = 0.0
        while not self._stopping.is_set():
            try:
                sweep = time.monotonic() - swept >= SWEEP_SECONDS
                if sweep:
                    swept = time.monotonic()
                self.send_due(sweep)
            except StoreUnavailable:
                pass  # the backend is away (the store logs that once): deliveries wait in the outbox
            except Exception:  # noqa: BLE001 - the sender must outlive any one world's trouble; said in the log
                log.exception("webhook sender: a round failed; trying again")
            self._stopping.wait(POLL_SECONDS)

    def send_due(self, sweep: bool = True) -> int:
        """One round over the worlds with deliveries pending here (every world when `sweep`): how many deliveries
        were attempted. A world idle for webhooks costs no store read between sweeps."""
        worlds = self._sandbox.live_worlds() if sweep else [
            w for w in list(self._sandbox.worlds.values()) if id(w.store) in outbox.ACTIVE]
        sent = 0
        for world in worlds:
            try:
                pending = self._claim(world)
                for delivery in pending:
                    self._attempt(world, delivery)
                    sent += 1
            except StoreUnavailable:
                continue  # that world's backend is away: its deliveries wait, leased or not
        return sent

    def _claim(self, world) -> list[dict]:
        store = world.store
        if not any(d["state"] == "pending" for d in store.all(outbox.COLLECTION)):
            outbox.ACTIVE.discard(id(store))
            return []
        outbox.ACTIVE.add(id(store))
        with store.transaction():
            now = epoch_ms(world.clock.now())
            wall = time.time() * 1000
            # A delivery held back (out-of-order) is not due, nor leased: the send that releases it would leave it
            # waiting out a lease taken by a round that never sent it.
            due = [d for d in store.all(outbox.COLLECTION)
                   if d["state"] == "pending" and d["nextAttemptAt"] is not None and d["nextAttemptAt"] <= now
                   and not d.get("held") and (d["lease"] is None or d["lease"]["until"] < wall)][:BATCH]
            for delivery in due:
                delivery["lease"] = {"owner": self._owner, "until": wall + LEASE_SECONDS * 1000}
                store.put(outbox.COLLECTION, delivery["id"], delivery)
        return due

    def _fault(self, world, delivery: dict) -> tuple[str, int] | None:
        """The delivery fault that strikes this attempt, if a rule for it fires (its dice rolled once)."""
        if delivery.get("released") or not world.faults.applicable("webhooks", delivery["subscription"]):
            return None
        rule = world.faults.pick("webhooks", delivery["subscription"], DELIVERY_FAULTS)
        return (rule.fault, rule.latency_ms) if rule is not None else None

    def _hold_back(self, world, delivery: dict) -> None:
        with world.store.transaction():
            stored = world.store.get(outbox.COLLECTION, delivery["id"])
            if stored is not None and (stored["lease"] or {}).get("owner") == self._owner:
                stored.update(held=True, lease=None)
                world.store.put(outbox.COLLECTION, stored["id"], stored)

    def _attempt(self, world, delivery: dict) -> None:
        subscription = Subscriptions(world.store).get(delivery["subscription"])
        fault = self._fault(world, delivery)
        name, latency = fault or (None, 0)
        if name == "out-of-order":
            return self._hold_back(world, delivery)
        if name == "delay":
            time.sleep(min(latency, MAX_DELAY_MS) / 1000)
        started = time.perf_counter()
        status, error = self._post(delivery, subscription, bad_signature=name == "bad-signature")
        if name == "duplicate":
            status, error = self._post(delivery, subscription)
        attempt = {"at": wall_now_iso(), "worldAt": iso_millis(world.clock.now()), "status": status, "error": error,
                   "durationMs": round((time.perf_counter() - started) * 1000, 1),
                   **({"fault": name} if name else {})}
        with world.store.transaction():
            stored = world.store.get(outbox.COLLECTION, delivery["id"])
            if stored is None or (stored["lease"] or {}).get("owner") != self._owner:
                return  # reset meanwhile, or another sender took it over after our lease ran out
            stored["attempts"] = (stored["attempts"] + [attempt])[-outbox.MAX_ATTEMPTS:]
            stored["lease"] = None
            for earlier in world.store.all(outbox.COLLECTION):  # out-of-order: sent after this one, now
                if earlier.get("held") and earlier["subscription"] == stored["subscription"] and earlier["id"] != stored["id"]:
                    earlier.update(held=False, released=True)
                    world.store.put(outbox.COLLECTION, earlier["id"], earlier)
            if status is not None and 200 <= status < 300:
                stored["state"], stored["nextAttemptAt"] = "delivered", None
            else:
                stored["nextAttemptAt"] = outbox.next_attempt(stored, epoch_ms(world.clock.now()))
                stored["state"] = "pending" if stored["nextAttemptAt"] is not None else "failed"
            world.store.put(outbox.COLLECTION, stored["id"], stored)

    @staticmethod
    def _post(delivery: dict, subscription: dict | None, bad_signature: bool = False) -> tuple[int | None, str | None]:
        if subscription is None:
            return None, "the subscription was deleted"
        body = delivery["body"].encode()
        moment = datetime.now(timezone.utc)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode() if bad_signature else subscription["secret"]
        headers = {"Content-Type": "application/json", "User-Agent": "redemption-sandbox-webhooks",
                   "webhook-id": delivery["id"], "webhook-timestamp": str(int(moment.timestamp())),
                   "webhook-signature": Webhook(secret).sign(delivery["id"], moment, body)}
        request = urllib.request.Request(delivery["url"], data=body, headers=headers, method="POST")
        try:
            with _OPENER.open(request, timeout=SEND_TIMEOUT_SECONDS) as answer:
                return answer.status, None
        except urllib.error.HTTPError as refused:
            return refused.code, None
        except (urllib.error.URLError, OSError, ValueError) as failed:
            return None, str(getattr(failed, "reason", failed))[:200]
