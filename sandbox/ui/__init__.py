"""Pages for people: the interactive API reference (/docs) and the trainers' live demo page (/).

Everything is served from this machine (Swagger UI's files come from the flask-swagger-ui package): no CDN.
"""
import os

import flask_swagger_ui
from flask import Blueprint, current_app, render_template, send_from_directory

from sandbox.core.faults import DELAY_HEADER, GENERIC_FAULTS

bp = Blueprint("ui", __name__, template_folder="templates", static_folder="static", static_url_path="/ui-static")
SWAGGER_DIST = os.path.join(os.path.dirname(flask_swagger_ui.__file__), "dist")


@bp.after_request
def not_in_frames(response):
    """No page of another site may frame these pages (and trick a click on reset)."""
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    return response


@bp.get("/")
def demo():
    sandbox = current_app.extensions["sandbox"]
    # Each vendor with its base path, as its spec's `servers` give it: the page restates neither.
    return render_template("demo.html", vendors=[[v.name, sandbox.specs[v.spec_file.removesuffix(".yaml")].base_paths[0]]
                                                 for v in sandbox.vendors])


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


@bp.get("/docs/assets/<path:filename>")
def docs_assets(filename):
    return send_from_directory(SWAGGER_DIST, filename)
