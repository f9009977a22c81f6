"""The baseline: a Flask endpoint that answers the PATCH with a constant body, nothing else."""
from flask import Flask, Response

from sandbox.serving.bridge import Bridge

app = Flask("bare")
BODY = ('{"meta": {"status": "success", "statusCode": 200}, "message": "Update purchase history success.", '
        '"data": {"_id": "507f1f77bcf86cd799439012", "purchaseID": "ORD202641612055614747"}}')


@app.patch("/returning-ai/v1/purchase-histories/<ident>")
def patch(ident):
    return Response(BODY, mimetype="application/json")


asgi = Bridge(app)  # as run.py serves the sandbox: gunicorn, sandbox.serving.worker.SandboxWorker
