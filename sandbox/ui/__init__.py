"""Pages for people: the interactive API reference (/docs), the trainers' live demo page (/) and the fault catalogue
(/catalogue).

Everything is served from this machine (Swagger UI's files come from the flask-swagger-ui package): no CDN.
"""
import os

import flask_swagger_ui
from flask import Blueprint, abort, current_app, render_template, request, send_from_directory

from sandbox.core.faults import DELAY_HEADER, FAULT_HEADER, GENERIC_FAULTS, accepted_faults

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui-static")
SWAGGER_DIST = os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")
# What Swagger UI 5 cannot read in the contracts, left out of the copies /docs shows (and only there): it reads only
# OpenAPI 3.1's default dialect and puts a red warning above a spec that names another (the specs name JSON Schema
# 2020-12, which their validators use). Everything else is the contract as /_sandbox/specs/<name>.json serves it.
DOCS_UNREADABLE = ("jsonSchemaDialect",)


@bp.after_request
def not_in_frames(response):
    """No page of another site may frame these pages (and trick a click on reset)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


def _vendor_specs(sandbox):
    """Each vendor with its spec (the one its API is served from)."""
    return [(vendor, sandbox.specs[vendor.spec_file.removesuffix(".yaml")]) for vendor in sandbox.vendors]


@bp.get("/")
def demo():
    sandbox = current_app.extensions["sandbox"]
    # Each vendor with its base path, as its spec's `servers` give it: the page restates neither.
    return render_template("demo.html", vendors=[[v.name, spec.base_paths[0]] for v, spec in _vendor_specs(sandbox)])


@bp.get("/catalogue/")
@bp.get("/catalogue")
def catalogue():
    """The fault catalogue (GET /_sandbox/faults/catalogue) and the magic values, for people: per vendor, what each
    fault does and which operations take it; per operation, the faults it accepts and the values that always fail."""
    sandbox = current_app.extensions["sandbox"]
    vendors = []
    for vendor, spec in _vendor_specs(sandbox):
        base = spec.base_paths[0]
        operations = [{"id": op.operation_id, "method": op.method.upper(), "path": base + op.path,
                       "summary": op.raw.get("summary", ""), "faults": accepted_faults(op),
                       "magic": op.extensions.get("x-sandbox-magic-values", [])} for op in spec.operations]
        for op in operations:  # the six generic faults named once, where an operation takes them all
            op["every_generic"] = set(GENERIC_FAULTS) <= set(op["faults"])
        faults = [{"name": name, "description": description, "own": own,
                   "operations": [op["id"] for op in operations if name in op["faults"]]}
                  for own, named in ((False, GENERIC_FAULTS), (True, vendor.faults)) for name, description in named.items()]
        vendors.append({"name": vendor.name, "title": spec.document.get("info", {}).get("title", vendor.name),
                        "base": base, "faults": faults, "own": list(vendor.faults), "operations": operations})
    return render_template("catalogue.html", vendors=vendors, fault_header=FAULT_HEADER)


@bp.get("/docs/")
@bp.get("/docs")
def docs():
    sandbox = current_app.extensions["sandbox"]
    # The demo credentials of the default world, pre-filled in Swagger UI's Authorize dialog; the faults each vendor
    # can be asked for with X-Sandbox-Fault, which the page adds to the calls "Try it out" makes when one is chosen.
    faults = {vendor.name: {**GENERIC_FAULTS, **vendor.faults} for vendor in sandbox.vendors}
    most_delay = min(sandbox.specs[vendor.name].document["x-sandbox-headers"][DELAY_HEADER]["schema"]["maximum"]
                     for vendor in sandbox.vendors)
    return render_template("docs.html", specs=sorted(sandbox.specs), credentials=sandbox.default.credentials(),
                           faults=faults, most_delay=most_delay)


@bp.get("/docs/specs/<name>.json")
def docs_spec(name):
    """The spec as /_sandbox/specs/<name>.json serves it, less what Swagger UI cannot read (DOCS_UNREADABLE)."""
    spec = current_app.extensions["sandbox"].specs.get(name)
    if spec is None:
        abort(404)
    document = spec.served_copy(request.host_url)
    for key in DOCS_UNREADABLE:
        document.pop(key, None)
    return document


@bp.get("/docs/assets/<path:filename>")
def docs_assets(filename):
    return send_from_directory(SWAGGER_DIST, filename)
