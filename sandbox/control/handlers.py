"""Handlers of specs/sandbox.yaml, the sandbox's own control API."""
import yaml
from flask import Response, request

from sandbox.core.events import read_events

from .errors import NotFound


def get_health(call):
    world = call.world
    return {"status": "ok", "seed": world.seed, "size": world.size, "vendors": [v.name for v in call.sandbox.vendors]}


def list_credentials(call):
    return {"credentials": call.world.credentials()}


def reset_sandbox(call):
    body = call.body if isinstance(call.body, dict) else {}
    call.world.reset(seed=body.get("seed"), size=body.get("size"))
    return {"status": "reset", "seed": call.world.seed, "size": call.world.size}


def list_events(call):
    return {"events": read_events(call.store)}


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


def _served_spec(call) -> dict:
    name = call.params["name"]
    spec = call.sandbox.specs.get(name)
    if spec is None:
        raise NotFound(f"No spec named {name}; available: {', '.join(sorted(call.sandbox.specs))}")
    return spec.served_copy(request.host_url)


def get_spec_yaml(call):
    document = yaml.safe_dump(_served_spec(call), sort_keys=False, allow_unicode=True)
    return Response(document, mimetype="application/yaml")


def get_spec_json(call):
    return _served_spec(call)
