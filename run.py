#!/usr/bin/env python3
"""Start the redemption API sandbox.

    python run.py                     # http://127.0.0.1:8080 with the default seeded data
    python run.py --seed 7 --size 500 # another world, larger
"""
from __future__ import annotations

import argparse
import os
import sys

from sandbox import Settings, create_app


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve the Returning.AI, fabric and Capillary partner APIs from their OpenAPI specs, "
        "with seeded data, documented errors and on-demand faults.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"),
                        help="address to listen on (env SANDBOX_HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT", "8080")),
                        help="port to listen on (env SANDBOX_PORT)")
    parser.add_argument("--seed", type=int, default=Settings.seed,
                        help="seed of the generated data: the same seed always gives the same data")
    parser.add_argument("--size", type=int, default=Settings.size,
                        help="how many records to generate per vendor (Returning.AI: purchase histories)")
    parser.add_argument("--publisher-timeout", type=float, default=Settings.publisher_timeout,
                        help="seconds a request with 'X-Sandbox-Fault: publisher-timeout' waits before its 502")
    parser.add_argument("--strict", action="store_true",
                        help="check every response against the spec; a response that breaks it becomes a 500")
    parser.add_argument("--threads", type=int, default=8, help="request threads of the server process")
    parser.add_argument("--dev", action="store_true",
                        help="use Flask's development server (auto-reload off) instead of gunicorn")
    return parser.parse_args(argv)


def banner(base: str, app) -> str:
    sandbox = app.extensions["sandbox"]
    lines = [f"Redemption API sandbox listening on {base} (seed {sandbox.seed}, size {sandbox.size})"]
    for vendor in sandbox.vendors:
        spec = sandbox.specs[vendor.spec_file.removesuffix(".yaml")]
        lines.append(f"  {vendor.name:<13} base URL {base}{spec.base_paths[0]}   spec {base}/_sandbox/specs/{spec.name}.yaml")
    lines.append(f"  credentials   {base}/_sandbox/credentials")
    lines.append(f"  reset         POST {base}/_sandbox/reset   events  {base}/_sandbox/events")
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    settings = Settings(seed=args.seed, size=args.size, publisher_timeout=args.publisher_timeout,
                        strict_responses=args.strict)
    app = create_app(settings)
    print(banner(f"http://{args.host}:{args.port}", app), flush=True)
    if args.dev:
        app.run(host=args.host, port=args.port, threaded=True)
        return
    serve(app, args)


def serve(app, args) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            # One process: the in-memory store lives in it. Threads serve requests concurrently.
            self.cfg.set("bind", f"{args.host}:{args.port}")
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", args.threads)
            self.cfg.set("accesslog", None)
            self.cfg.set("loglevel", "warning")
            # A publisher-timeout fault waits on purpose; do not let the worker be killed meanwhile.
            self.cfg.set("timeout", max(30, int(args.publisher_timeout) + 30))

        def load(self):
            return app

    Server().run()


if __name__ == "__main__":
    sys.exit(main())
