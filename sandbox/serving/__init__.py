"""How run.py serves the app over HTTP: gunicorn's arbiter, uvicorn's workers (worker.py), a protocol that adds the
request timeout and JSON refusals (protocol.py), and the bridge that runs the Flask app, holds delayed answers and
drops connections for the transport faults (bridge.py). The choice, and the custom loop it replaced, are measured in
bench/README.md."""
