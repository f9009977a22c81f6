"""Handlers of specs/sandbox.yaml, the sandbox's own control API. `call.world` is the world acted on."""
from contextlib import contextmanager

import yaml
from flask import Response

from sandbox.core import rate_limits
from sandbox.core.clock import ClockRefused, ClockState, epoch_ms, moment_ms
from sandbox.core.events import read_events
from sandbox.core.faults import GENERIC_FAULTS, NotAppliable, TooManyRules, accepted_faults
from sandbox.core.world import DataGone
from sandbox.kit import postman
from sandbox.vendors.returning_ai.purchase_histories import purchase_history_json
from sandbox.vendors.returning_ai.purchases import DEFAULT_COINS, NotEnoughCoins, StorePurchases
from sandbox.vendors.returning_ai.purchases import NotFound as PurchaseNotFound
from sandbox.webhooks import inbox, outbox
from sandbox.webhooks.subscriptions import BadSubscription, Subscriptions

from .errors import Conflict, NotFound
from .errors import error_for_status
from .fault_rules import unaccepted
from .scenarios import load_scenario as apply_scenario
from .scenarios import scenarios
from .verification import verify


def get_health(call):
    world, backend = call.world, call.settings.backend
    if world.vanished():
        raise error_for_status(503, str(DataGone(world.id, backend)), [])
    return {"status": "ok", "seed": world.seed, "size": world.size, "vendors": [v.name for v in call.sandbox.vendors],
            "backend": {"kind": backend, "state": "up"}}  # a backend that did not answer made this a 503


def list_credentials(call):
    return {"credentials": call.world.credentials()}


def reset_sandbox(call):
    body = call.body or {}
    call.world.reset(seed=body.get("seed"), size=body.get("size"))
    return {"status": "reset", "seed": call.world.seed, "size": call.world.size}


# -- time --------------------------------------------------------------------------------------------------
def get_clock(call):
    return call.world.clock.state().view()


def set_clock(call):
    with refused_clock_is_400():
        return call.world.clock.change(call.body).view()


@contextmanager
def refused_clock_is_400():
    """A clock the spec's shapes let through but time cannot take (backwards, before 1970): a 400, nothing changed."""
    try:
        yield
    except ClockRefused as refused:
        raise error_for_status(400, str(refused), []) from None


def get_rate_limits(call):
    return {"limits": call.world.clock.read()[1]}


# -- events out: a member's purchase, webhooks, the inbox ------------------------------------------------------
def simulate_returning_ai_purchase(call):
    body = call.body or {}
    try:
        with call.store.transaction():
            order = StorePurchases(call.store, call.ids, call.now).purchase(
                body.get("user"), body.get("productID"), body.get("coins", DEFAULT_COINS))
    except PurchaseNotFound as missing:
        raise NotFound(str(missing)) from None
    except NotEnoughCoins as short:
        raise Conflict(str(short)) from None
    return 201, purchase_history_json(order, call.now)


def list_webhooks(call):
    return {"webhooks": Subscriptions(call.store).all()}


def create_webhook(call):
    body = call.body
    try:
        subscription = Subscriptions(call.store).add(body["url"], body["events"], body.get("secret"),
                                                     call.settings.webhook_hosts)
    except BadSubscription as refused:
        raise error_for_status(400, str(refused), []) from None
    call.sandbox.sender.ensure_running()
    return 201, subscription


def delete_webhook(call):
    subscription_id = call.params["webhookId"]
    if not Subscriptions(call.store).remove(subscription_id):
        raise NotFound(f"No webhook subscription {subscription_id}; GET /_sandbox/webhooks lists them")
    return {"id": subscription_id, "deleted": True}


def list_webhook_deliveries(call):
    return {"deliveries": [outbox.view(d) for d in call.store.all(outbox.COLLECTION)]}


def redeliver_webhook(call):
    delivery_id = call.params["deliveryId"]
    with call.store.transaction():
        delivery = call.store.get(outbox.COLLECTION, delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id}; GET /_sandbox/webhooks/deliveries lists them")
        delivery.update(state="pending", nextAttemptAt=epoch_ms(call.now), lease=None, held=False)
        call.store.put(outbox.COLLECTION, delivery_id, delivery)
    outbox.ACTIVE.add(id(call.store))
    call.sandbox.sender.ensure_running()
    return 202, outbox.view(delivery)


def create_webhook_fault(call):
    body = call.body
    try:
        rule = call.world.faults.add_rule({"vendor": "webhooks", "operation": body.get("subscription", "*"),
                                           "fault": body["fault"], "probability": body.get("probability", 1),
                                           "latencyMs": body.get("delayMs", 0), "seed": body.get("seed", 0),
                                           **({"count": body["count"]} if "count" in body else {})})
    except TooManyRules as full:
        raise Conflict(str(full)) from None
    return 201, rule.to_json()


def receive_in_inbox(call):
    try:
        inbox.receive(call.store, call.params["name"], call.request, call.now)
    except inbox.InboxFull as full:
        raise Conflict(str(full)) from None
    return {"received": True}


def read_inbox(call):
    return {"deliveries": inbox.read(call.store, call.params["name"])}


def list_events(call):
    return {"events": read_events(call.store)}


# -- state -------------------------------------------------------------------------------------------------
def list_collections(call):
    return {"collections": call.store.collections()}


def read_collection(call):
    name = call.params["collection"]
    if name not in call.store.collections():
        raise NotFound(f"No collection named {name}; GET /_sandbox/state lists them")
    if "id" in call.params:
        record = call.store.get(name, call.params["id"])
        records = [record] if record is not None else []
    else:
        records = call.store.all(name)
    return {"collection": name, "records": records}


def export_state(call):
    """Streamed from the store as it is read (Store.dump_json): a large world is never held whole."""
    return Response(call.store.dump_json({"seed": call.world.seed, "size": call.world.size,
                                          "clock": call.world.clock.state().exported()}),
                    mimetype="application/json")


def import_state(call):
    body = call.body
    with refused_clock_is_400():  # an older export has none: the clock stays as it is
        clock = ClockState.imported(body["clock"]) if "clock" in body else call.world.clock.state()
    for collection, records in body["collections"].items():  # no world may be given another's credential
        claim = next(filter(None, (call.world.foreign_credential(collection, key, record)
                                   for key, record in records.items())), None)
        if claim:
            raise Conflict(f"Nothing imported: {claim}")
    call.store.load({"collections": body["collections"], "logs": body["logs"]})
    call.world.adopt(body["seed"], body["size"], clock)
    return {"status": "imported", "collections": len(body["collections"])}


# -- faults ------------------------------------------------------------------------------------------------
def list_fault_rules(call):
    return {"rules": [rule.to_json() for rule in call.world.faults.all()]}


def create_fault_rule(call):
    why = unaccepted(call.sandbox.specs[call.body["vendor"]], call.body)
    if why:
        raise NotFound(why)
    try:
        return 201, call.world.faults.add_rule(call.body).to_json()
    except TooManyRules as full:
        raise Conflict(str(full)) from None
    except NotAppliable as refused:
        raise error_for_status(400, str(refused), []) from None


def clear_fault_rules(call):
    return {"deleted": call.world.faults.clear()}


def delete_fault_rule(call):
    rule_id = call.params["ruleId"]
    if not call.world.faults.remove(rule_id):
        raise NotFound(f"No fault rule {rule_id}; GET /_sandbox/faults lists them")
    return {"id": rule_id, "deleted": True}


def get_fault_catalogue(call):
    vendors = []
    for vendor in call.sandbox.vendors:
        spec = call.sandbox.specs[vendor.name]
        faults = [{"name": n, "description": d, "scope": "generic"} for n, d in GENERIC_FAULTS.items()]
        faults += [{"name": n, "description": d, "scope": "vendor"} for n, d in vendor.faults.items()]
        operations = [{"operationId": op.operation_id, "faults": accepted_faults(op),
                       "magicValues": op.extensions.get("x-sandbox-magic-values", [])} for op in spec.operations]
        vendors.append({"vendor": vendor.name, "faults": faults, "operations": operations})
    return {"vendors": vendors}


# -- journal -----------------------------------------------------------------------------------------------
def _journal_filter(source: dict) -> dict:
    return {k: source.get(k) for k in ("vendor", "operation", "status", "since")}


def list_requests(call):
    return {"requests": call.world.journal.entries(**_journal_filter(call.params))}


def count_requests(call):
    return {"count": len(call.world.journal.entries(**_journal_filter(call.params)))}


def list_applied_twice(call):
    """Journal entries of not-idempotent operations (x-sandbox-not-idempotent) applied more than once alike."""
    not_idempotent = {(vendor, op.operation_id) for vendor, spec in call.sandbox.specs.items()
                      for op in spec.operations if op.extensions.get("x-sandbox-not-idempotent")}
    applied: dict[tuple, list[int]] = {}
    for e in call.world.journal.entries():
        written = e.get("applied") or (200 <= (e["status"] or 0) < 300 and not e["rule"].startswith("fault:"))
        if (e["vendor"], e["operation"]) in not_idempotent and written:
            applied.setdefault((e["vendor"], e["operation"], e["method"], e["path"], e["body"]), []).append(e["id"])
    return {"appliedTwice": [
        {"vendor": vendor, "operation": operation, "method": method, "path": path, "body": body, "times": len(ids),
         "ids": ids} for (vendor, operation, method, path, body), ids in applied.items() if len(ids) > 1]}


def verify_requests(call):
    body = call.body or {}
    verified, result = verify(call.world.journal.entries(since=body.get("since")), body, call.sandbox.secrets.headers)
    return (200 if verified else 409), result


def clear_requests(call):
    count = len(call.world.journal.entries())
    call.world.journal.clear()
    return {"deleted": count}


def list_proxy_findings(call):
    entries = [e for e in call.sandbox.default.journal.entries() if e["vendor"].startswith("proxy:")]
    wanted = call.params.get("spec")
    return {"findings": [
        {"time": e["time"], "spec": e["vendor"].removeprefix("proxy:"), "method": e["method"], "path": e["path"],
         "operation": e["operation"], "status": e["status"], "conforms": not e["findings"], "problems": e["findings"]}
        for e in entries if wanted is None or e["vendor"] == f"proxy:{wanted}"]}


# -- workspaces --------------------------------------------------------------------------------------------
def list_workspaces(call):
    return {"workspaces": [{"id": w.id, "seed": w.seed, "size": w.size, "idleSeconds": round(call.sandbox.idle_seconds(w.id), 3)}
                           for w in call.sandbox.workspaces()]}


def create_workspace(call):
    body = call.body or {}
    if "clock" in body:
        with refused_clock_is_400():  # before anything is seeded
            moment_ms(body["clock"], "clock")
    try:
        limits = rate_limits.resolved(body.get("rateLimits"), call.sandbox.vendor_names)
    except rate_limits.BadLimits as refused:
        raise error_for_status(400, str(refused), []) from None
    world = call.sandbox.create_workspace(seed=body.get("seed"), size=body.get("size"), clock=body.get("clock"),
                                          rate_limits=limits)
    return 201, {"id": world.id, "seed": world.seed, "size": world.size,
                 "expiresAfterIdleSeconds": call.settings.workspace_ttl, "credentials": world.credentials()}


def delete_workspace(call):
    workspace_id = call.params["workspaceId"]
    if not call.sandbox.drop_workspace(workspace_id):
        raise NotFound(f"No workspace {workspace_id}: it was deleted or expired")
    return {"id": workspace_id, "deleted": True}


# -- scenarios ---------------------------------------------------------------------------------------------
def list_scenarios(call):
    return {"scenarios": [{"name": name, "title": s["title"], "story": s["story"], "steps": s["steps"],
                           "faults": s.get("faults", []),
                           "changes": [{"collection": c["collection"], "key": c["key"]} for c in s.get("changes", [])],
                           **({"seed": s["seed"]} if "seed" in s else {}),
                           **({"rateLimits": s["rateLimits"]} if "rateLimits" in s else {})}
                          for name, s in scenarios(call.settings.scenarios_dir).items()]}


def load_scenario(call):
    name = call.params["name"]
    found = scenarios(call.settings.scenarios_dir)
    if name not in found:
        raise NotFound(f"No scenario {name}; available: {', '.join(found)}")
    replaced = {"faultRules": [rule.to_json() for rule in call.world.faults.all()],
                "requests": len(call.world.journal.entries()), "events": len(read_events(call.store))}
    rules = apply_scenario(call.world, found[name])
    return {"name": name, "title": found[name]["title"], "story": found[name]["story"],
            "faults": [rule.to_json() for rule in rules], "replaced": replaced}


# -- specs -------------------------------------------------------------------------------------------------
def _served_spec(call, name: str | None = None) -> dict:
    name = name or call.params["name"]
    spec = call.sandbox.specs.get(name)
    if spec is None:
        raise NotFound(f"No spec named {name}; available: {', '.join(sorted(call.sandbox.specs))}")
    return spec.served_copy(call.request.host_url)


def get_spec_yaml(call):
    document = yaml.safe_dump(_served_spec(call), sort_keys=False, allow_unicode=True)
    # application/yaml (RFC 9512); text/yaml to a client that asks for it (generated clients read text/* as text)
    mimetype = call.request.accept_mimetypes.best_match(["application/yaml", "text/yaml"]) or "application/yaml"
    return Response(document, mimetype=mimetype)


def get_spec_json(call):
    return _served_spec(call)


def get_postman_collection(call):
    """The vendor's Postman collection, generated from its spec as served, with this world's demo credential."""
    vendor = call.params["vendor"]
    if vendor not in {v.name for v in call.sandbox.vendors}:
        raise NotFound(f"No vendor named {vendor}; available: {', '.join(v.name for v in call.sandbox.vendors)}")
    # A world imported without any (no Capillary till, say) gets a collection without auth, for the user to fill in.
    credential = next((c for c in call.world.credentials() if c["vendor"] == vendor and "Authorization" in c["headers"]),
                      {"headers": {}})
    return postman.collection(_served_spec(call, vendor), vendor, credential["headers"])
