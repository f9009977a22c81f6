"""The command line: serve the sandbox (the default), or run its contract-testing tools.

    python run.py                       # http://127.0.0.1:8080 with the default seeded data
    python run.py --seed 7 --size 500   # another world, larger
    python run.py contract --spec returning-ai --base-url http://127.0.0.1:8080/returning-ai/v1

Installed as a package, the same command is `redemption-sandbox`.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import logging
import math
import os
import sys
import textwrap
from pathlib import Path

from . import Settings, __version__, create_app
from .arguments import Parser, YAMLFile, usage_error, yaml_file
from .config import from_env
from .control.fault_rules import refusal
from .control.scenarios import ScenarioRefused, load_scenario, scenarios
from .vendors import VENDORS

from .core import logs, rate_limits
from .core.clock import ClockRefused, ClockState, moment_ms
from .core.faults import TooManyRules
from .core.spec import load_spec
from .storage.backends import BACKENDS, BackendUnavailable
from .serving.launch import DEFAULT_THREADS, DEFAULT_WORKERS, SERVERS, port_problem, serve, server_name

TOOLS = ("contract", "compat", "verify")  # the subcommands that run a tool; `proxy` serves



# The subcommands, as `run.py --help` lists them; anything else on the command line is a server option.
COMMANDS = {
    "contract": "run a vendor's contract (its spec) against any server: Schemathesis, JUnit XML and a Markdown "
                "report with curl commands that reproduce each failure",
    "proxy": "serve the sandbox with a validation proxy in front of a real server (takes every server option too)",
    "compat": "list the breaking changes between two versions of a spec; exit 1 if any (a CI gate)",
    "verify": "assert what a client sent to a running sandbox (method, path, query, headers, JSON body); when it "
              "did not, print the closest requests with what differs; exit 1",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Option defaults shown, and the epilog's list of commands kept as written."""


def _commands_epilog() -> str:
    lines = ["commands (each has its own --help, e.g. `run.py contract --help`):",
             "  (none)      serve the sandbox with the options above"]
    lines += [textwrap.fill(summary, 100, initial_indent=f"  {name:<11} ", subsequent_indent=" " * 14)
              for name, summary in COMMANDS.items()]
    return "\n".join(lines)


def _wrapped(text: str) -> str:
    """A description as the help formatter would wrap it (the raw formatter keeps the epilog's layout)."""
    return textwrap.fill(text, 100)


def parse_args(argv=None, proxy: bool = False) -> argparse.Namespace:
    """The server's options; with proxy, `run.py proxy`'s: --spec and --upstream, then the same server options."""
    if proxy:
        parser = Parser(
            prog=f"{Path(sys.argv[0]).name} proxy", formatter_class=_HelpFormatter,
            description=_wrapped("Serve the sandbox with /proxy/<spec>/... forwarding a partner's traffic, unchanged, "
                                 "to a real server, recording per exchange whether request and response conform to "
                                 "the spec (GET /_sandbox/proxy/findings). Every server option applies."))
        parser.add_argument("--spec", required=True, choices=[vendor.name for vendor in VENDORS],
                            help="the vendor whose spec the traffic is checked against")
        parser.add_argument("--upstream", required=True, help="the real server's API base URL, e.g. "
                            "https://staging.example/v3")
    else:
        parser = Parser(
            epilog=_commands_epilog(), formatter_class=_HelpFormatter,
            description=_wrapped("Serve the Returning.AI, fabric and Capillary partner APIs from their OpenAPI specs, "
                                 "with seeded data, documented errors and on-demand faults."),
        )
    parser.add_argument("--version", action="version", version=f"redemption-sandbox {__version__}")
    # Each option that sets a Settings field is named as the field (its dest): main() copies them over by name.
    world = parser.add_argument_group("world", "the data served")
    world.add_argument("--seed", type=_seed, default=Settings.seed,
                       help="seed of the generated data: the same seed always gives the same data")
    world.add_argument("--size", type=_size, default=Settings.size,
                       help="how many records to generate per vendor (Returning.AI: purchase histories)")
    world.add_argument("--clock", type=_moment, metavar="ISO-8601",
                       help="start the default world's clock frozen at this moment (e.g. 2027-01-01T00:00:00Z), for "
                            "byte-identical answers; POST /_sandbox/clock moves it (default: the wall clock)")
    world.add_argument("--reseed", action="store_true",
                       help="reseed a world the backend already holds (a --db file from an earlier run, a shared "
                            "Redis) with --seed and --size, instead of serving it as it is")
    world.add_argument("--scenario", metavar="NAME",
                       help="load a demo scenario from scenarios/ at start-up (GET /_sandbox/scenarios lists them)")
    world.add_argument("--faults", type=yaml_file, metavar="FILE",
                       help="YAML list of fault rules to set at start-up, as POST /_sandbox/faults takes them (each "
                            "checked as it does: a rule it would refuse stops the start)")
    world.add_argument("--publisher-timeout", type=_timeout, default=Settings.publisher_timeout,
                       help="seconds a request with 'X-Sandbox-Fault: publisher-timeout' waits before its 502")
    world.add_argument("--strict", action="store_true", dest="strict_responses",
                       help="check every response against the spec; a response that breaks it becomes a 500")
    world.add_argument("--workspace-ttl", type=_expiry, default=Settings.workspace_ttl,
                       help="seconds an unused workspace lives before it is dropped")
    world.add_argument("--max-workspaces", type=_at_least_one, default=Settings.max_workspaces,
                       help="workspaces alive at once; POST /_sandbox/workspaces beyond it is a 409 until one is "
                            "deleted or expires")
    world.add_argument("--journal-size", type=_at_least_one, default=Settings.journal_size,
                       help="requests kept in each world's journal")
    storage = parser.add_argument_group("storage", "where state lives")
    storage.add_argument("--backend", choices=BACKENDS, default=from_env("SANDBOX_BACKEND"),
                         help="sqlite (shared by the worker processes of this machine), redis (shared by sandbox "
                              "instances on many hosts) or memory (one process only; with --workers 1 or --dev) "
                              "(env SANDBOX_BACKEND)")
    storage.add_argument("--db", metavar="FILE",
                         help="with --backend sqlite: the database file, kept across restarts (default: a temporary "
                              "one). A world already in it is served as it is: --seed and --size apply to a new one")
    storage.add_argument("--redis-url", default=from_env("SANDBOX_REDIS_URL"),
                         help="with --backend redis: the server every instance shares (env SANDBOX_REDIS_URL; the "
                              "keys' prefix: env SANDBOX_REDIS_PREFIX)")
    serving = parser.add_argument_group("serving", "how it is served")
    serving.add_argument("--host", default=from_env("SANDBOX_HOST"), help="address to listen on (env SANDBOX_HOST)")
    serving.add_argument("--port", type=_port, default=from_env("SANDBOX_PORT"),  # checked as given
                         help="port to listen on (env SANDBOX_PORT)")
    serving.add_argument("--server", choices=SERVERS, default="gunicorn",
                         help="gunicorn with uvicorn workers (the default: held answers hold nothing, transport "
                              "faults reset or close the real connection) or granian (Rust; transport faults answer "
                              "an empty 502 as in-process calls do, held answers hold a thread, and it needs a shared "
                              "backend)")
    serving.add_argument("--workers", type=_at_least_one, default=DEFAULT_WORKERS,
                         help="worker processes (they share state through the backend)")
    serving.add_argument("--threads", type=_at_least_one, default=None,
                         help="gunicorn (default 4): threads of each worker for whole-world operations (reset, "
                              "workspaces, import, export, verify), so that different worlds' run at once while the "
                              "worker's event loop serves every other request; granian (default 1): request threads "
                              "of each worker")
    serving.add_argument("--dev", action="store_true",
                         help="use Flask's development server (one process, auto-reload off) instead of gunicorn")
    limits_ = parser.add_argument_group("limits", "how large, how slow and how often a request may be")
    limits_.add_argument("--rate-limits", type=_rate_limits, metavar="documented|VENDOR=N/SECONDS,...",
                         help="limit the default world's requests per credential: documented (Capillary 100 a minute, "
                              "as its demo clusters; Returning.AI and fabric 600, the sandbox's choice) or your own, "
                              "e.g. capillary=5/60; over it a 429 in the vendor's envelope (default: no limits)")
    limits_.add_argument("--max-body-bytes", type=_at_least_one, default=Settings.max_body_bytes,
                         help="the largest request body a vendor endpoint accepts (larger: 413 in its envelope)")
    limits_.add_argument("--max-import-bytes", type=_at_least_one, default=Settings.max_import_bytes,
                         help="the largest body POST /_sandbox/state/import accepts (an exported world)")
    limits_.add_argument("--max-url-bytes", type=_at_least_one, default=Settings.max_url_bytes,
                         help="the longest path and query accepted (longer: 414 in the API's envelope; the server "
                              "itself refuses request lines over 8,190 bytes)")
    limits_.add_argument("--max-header-bytes", type=_at_least_one, default=Settings.max_header_bytes,
                         help="the most header bytes accepted in all (more: 431 in the API's envelope)")
    limits_.add_argument("--request-timeout", type=_some_timeout, default=Settings.request_timeout,
                         help="seconds a connection has to send a whole request before it is closed (slow or "
                              "stalled clients never hold a worker meanwhile)")
    security = parser.add_argument_group("security", "who may call what")
    security.add_argument("--admin-token", default=from_env("SANDBOX_ADMIN_TOKEN"),
                          help="require this token (header X-Sandbox-Admin-Token) on the control API "
                               "(env SANDBOX_ADMIN_TOKEN); without one the control API is served only on loopback")
    security.add_argument("--allowed-host", action="append", dest="allowed_hosts", metavar="NAME",
                          default=Settings().allowed_hosts,
                          help="a name the Host header may carry besides the --host address, localhost and loopback "
                               "addresses (e.g. a team server's DNS name); repeat for more (env "
                               "SANDBOX_ALLOWED_HOSTS, comma-separated). Any other Host is refused: the DNS-rebinding "
                               "defence")
    security.add_argument("--webhook-host", action="append", dest="webhook_hosts", metavar="NAME", default=[],
                          help="a host webhook subscriptions may target besides loopback (127.0.0.1, ::1, localhost); "
                               "repeat for more. Default: loopback only, so no web page can make the sandbox send "
                               "requests into your network")
    security.add_argument("--cors-origin", action="append", dest="cors_origins", metavar="ORIGIN",
                          default=Settings().cors_origins,
                          help="an origin (scheme://host[:port]) whose web pages may call the control API (CORS); "
                               "repeat for more (env SANDBOX_CORS_ORIGINS, comma-separated). Default: none, only the "
                               "sandbox's own pages")
    security.add_argument("--trust-proxy", action="store_true",
                          help="believe X-Forwarded-For, -Proto, -Host and -Port (one reverse proxy in front, e.g. "
                               "one that terminates HTTPS); without it they are ignored, as any client could send them")
    logging_ = parser.add_argument_group("logging")
    logging_.add_argument("--log-level", choices=logs.LEVELS, default=from_env("SANDBOX_LOG_LEVEL"),
                          help="info: a line per request and the warnings; warning: the warnings only (a Redis "
                               "outage, a damaged world); debug adds the servers' own detail (env SANDBOX_LOG_LEVEL)")
    logging_.add_argument("--log-format", choices=logs.FORMATS, default=from_env("SANDBOX_LOG_FORMAT"),
                          help="text lines, or one JSON object a line (time, level, logger, message; a request's "
                               "method, path, status, durationMs, vendor, operation, world, fault) (env "
                               "SANDBOX_LOG_FORMAT)")
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = DEFAULT_THREADS[args.server]
    if args.backend == "memory" and args.workers > 1 and not args.dev:
        parser.error("--backend memory keeps state in one process: add --workers 1, or use --backend sqlite")
    if args.backend == "memory" and args.server == "granian" and not args.dev:
        parser.error("--server granian runs the app in worker processes of its own: use --backend sqlite or redis")
    return args


def _within(kind, low: float, high: float | None = None, above: bool = False):
    """An option's type: a number of `kind` (int or float) from `low` (or `above` it) to `high`. NaN and the
    infinities are refused: a NaN expiry would never expire, an infinite timeout never time out."""
    def shown(number) -> str:
        return f"{number:,.0f}" if float(number).is_integer() else f"{number:g}"

    least = f"more than {shown(low)}" if above else f"{shown(low)} or more"
    wanted = least if high is None else f"{least} and at most {shown(high)}" if above else \
        f"from {shown(low)} to {shown(high)}"
    what = "whole number" if kind is int else "number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {what}, not {text!r}") from None
        if not math.isfinite(value) or value < low or (above and value == low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value

    return parse


_port = _within(int, 1, 65535)
_at_least_one = _within(int, 1)
# Bounded above too: a timeout past what the system's clocks and sockets hold (about 9e9 s) fails where it is used.
_timeout = _within(float, 0, 3600)
_some_timeout = _within(float, 0, 3600, above=True)
_expiry = _within(float, 0, 30 * 86400, above=True)
# As the control API takes them (POST /_sandbox/reset, a state import: specs/sandbox.yaml): a world any run makes can
# be reset to and exported and imported again.
_seed = _within(int, 0, 4_294_967_295)
_size = _within(int, 0, 20_000)


def _rate_limits(text: str) -> str:
    """As the control API takes them (core/rate_limits.py)."""
    try:
        rate_limits.parse_option(text, [vendor.name for vendor in VENDORS])
    except rate_limits.BadLimits as refused:
        raise argparse.ArgumentTypeError(str(refused)) from None
    return text


def _moment(text: str) -> str:
    """As POST /_sandbox/clock takes a moment (core/clock.py)."""
    try:
        moment_ms(text, "--clock")
    except ClockRefused as refused:
        raise argparse.ArgumentTypeError(str(refused)) from None
    return text


def banner(base: str, app, scenario: str | None = None) -> str:
    sandbox = app.extensions["sandbox"]
    lines = [f"Redemption API sandbox listening on {base} (seed {sandbox.seed}, size {sandbox.size})",
             f"  state         {sandbox.backend.describe()}"]
    for vendor in sandbox.vendors:
        spec = sandbox.specs[vendor.spec_file.removesuffix(".yaml")]
        lines.append(f"  {vendor.name:<13} base URL {base}{spec.base_paths[0]}   spec {base}/_sandbox/specs/{spec.name}.yaml")
    clock = sandbox.default.clock.state().view()
    if clock["frozen"] or clock["offsetSeconds"]:
        lines.append(f"  clock         {clock['now']}{' (frozen)' if clock['frozen'] else ''}   {base}/_sandbox/clock")
    if scenario:
        lines.append(f"  scenario      {scenario} loaded (its story: {base}/_sandbox/scenarios)")
    rules = sandbox.default.faults.all()
    if rules:
        lines.append(f"  fault rules   {len(rules)} active: " + "; ".join(_rule_text(rule) for rule in rules[:5])
                     + ("; ..." if len(rules) > 5 else "") + f"   {base}/_sandbox/faults")
    lines.append(f"  credentials   {base}/_sandbox/credentials")
    lines.append(f"  demo page     {base}/   API reference  {base}/docs/")
    lines.append(f"  reset         POST {base}/_sandbox/reset   events  {base}/_sandbox/events")
    return "\n".join(lines)


def _rule_text(rule) -> str:
    """A fault rule in a few words: fabric updateRedemption server-error (50%, 2 more)."""
    terms = [f"{rule.probability:.0%}"] if rule.probability < 1 else []
    terms += [f"{rule.count} more"] if rule.count is not None else []
    terms += [f"{rule.latency_ms} ms"] if rule.latency_ms else []
    terms += ["applied"] if rule.applied else []
    return f"{rule.vendor} {rule.operation} {rule.fault}" + (f" ({', '.join(terms)})" if terms else "")


def main(argv=None) -> int | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        from .kit import compat, contract, verify
        return {"contract": contract, "compat": compat, "verify": verify}[argv[0]].main(argv[1:])
    if argv and not argv[0].startswith("-") and argv[0] != "proxy":
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        usage_error(f"no command {argv[0]!r}" + (f" (did you mean {close[0]}?)" if close else "") + "; the commands: "
                    f"{', '.join(COMMANDS)}, or none to serve (see {Path(sys.argv[0]).name} --help)")
    proxying = bool(argv) and argv[0] == "proxy"
    args = parse_args(argv[1:] if proxying else argv, proxy=proxying)
    proxies = {args.spec: args.upstream} if proxying else {}
    # Before anything is seeded or printed: a port another server holds is one line and exit status 1, not a
    # banner that says "listening" followed by the server's own failure.
    problem = port_problem(args.host, args.port)
    if problem:
        sys.exit(problem)
    logs.configure(args.log_level, args.log_format)
    # granian's worker processes import the app anew: they configure the same log from these (granian_app)
    os.environ["SANDBOX_LOG_LEVEL"], os.environ["SANDBOX_LOG_FORMAT"] = args.log_level, args.log_format
    settings = settings_from(args, proxies)
    rules = _fault_rules(args.faults, settings.specs_dir) if args.faults else []
    try:
        app = create_app(settings)
    except (BackendUnavailable, ScenarioRefused) as exc:
        sys.exit(str(exc))
    world = app.extensions["sandbox"].default
    world_note = _existing_world(world, args)
    if args.scenario:
        found = scenarios(settings.scenarios_dir)
        if args.scenario not in found:
            sys.exit(f"No scenario {args.scenario}; available: {', '.join(found)}")
        load_scenario(world, found[args.scenario])
    try:
        for rule in rules:
            world.faults.add_rule(rule)
    except TooManyRules as full:
        usage_error(f"--faults {args.faults.path}: {full}")
    print(banner(f"http://{args.host}:{args.port}", app, args.scenario), flush=True)
    if world_note:
        print(world_note, flush=True)
    print("  serving       " + ("Flask's development server (--dev)" if args.dev else
                                 server_name(args)), flush=True)
    for spec, upstream in proxies.items():
        print(f"  proxy         http://{args.host}:{args.port}/proxy/{spec}/... -> {upstream}   "
              f"findings http://{args.host}:{args.port}/_sandbox/proxy/findings", flush=True)
    print(_control_notice(settings), flush=True)
    print("  hosts         " + ", ".join([args.host, "localhost", "loopback addresses", *settings.allowed_hosts])
          + (" and any IP address" if args.host in ("0.0.0.0", "::") else "") + "; any other Host is refused"
          + (f"; CORS open to {', '.join(settings.cors_origins)}" if settings.cors_origins else ""), flush=True)
    if args.dev:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its access log: the sandbox logs each request
        app.extensions["sandbox"].sender.ensure_running()
        app.run(host=args.host, port=args.port, threaded=True)
        return
    serve(app, args)


def _fault_rules(file: YAMLFile, specs_dir: Path) -> list:
    """run.py --faults: a YAML list of rules, each checked as POST /_sandbox/faults checks it, before anything is
    seeded or served."""
    if file.data is None:
        return []
    if not isinstance(file.data, list):
        usage_error(f"--faults {file.path} must hold a YAML list of fault rules, as POST /_sandbox/faults takes them: "
                    "- {vendor: fabric, operation: updateRedemption, fault: server-error}")
    specs = {"sandbox": load_spec(specs_dir / "sandbox.yaml"),
             **{vendor.name: load_spec(specs_dir / vendor.spec_file) for vendor in VENDORS}}
    for number, rule in enumerate(file.data, 1):
        why = refusal(specs, rule)
        if why:
            usage_error(f"--faults {file.path}, rule {number}: {why}")
    return file.data


def _existing_world(world, args) -> str | None:
    """A world the backend already held keeps its seed, size and clock (--reseed reseeds it); say so when they
    differ from the ones asked for, so that `--seed 7` on an existing --db is never silently ignored."""
    start = None if args.clock is None else moment_ms(args.clock, "--clock")
    limits = rate_limits.parse_option(args.rate_limits, [v.name for v in VENDORS]) if args.rate_limits else {}
    held_limits = world.clock.start_limits()
    if (world.seed, world.size, world.clock.state().start, held_limits) == (args.seed, args.size, start, limits):
        return None
    held = (f"seed {world.seed}, size {world.size}, clock {world.clock.state().view()['start'] or 'the wall clock'}"
            + (f", rate limits {_limits_text(held_limits)}" if held_limits else ""))
    asked = (f"seed {args.seed}, size {args.size}, clock {args.clock or 'the wall clock'}"
             + (f", rate limits {_limits_text(limits)}" if limits else ""))
    if args.reseed:
        world.clock.start(ClockState.starting_at(start), limits)  # the reset puts them back: the world starts so
        world.reset(args.seed, args.size, restart=True)
        return f"  state note    reseeded the world it held ({held}) with {asked} (--reseed)"
    return (f"  state note    the backend already held a world ({held}): serving it as it is, not {asked}; add "
            f"--reseed to reseed it, or POST /_sandbox/reset {{\"seed\": {args.seed}, \"size\": {args.size}}}")


def _limits_text(limits: dict) -> str:
    return ",".join(f"{vendor}={limit['requests']}/{limit['windowSeconds']}" for vendor, limit in limits.items())


def settings_from(args, proxies: dict) -> Settings:
    """The app's settings: every option named as a Settings field (its dest), copied over by name."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if hasattr(args, f.name)}
    return Settings(**given, control_open=_is_loopback(args.host), proxies=proxies)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _control_notice(settings: Settings) -> str:
    if settings.admin_token:
        return "  control API   requires the admin token (X-Sandbox-Admin-Token)"
    if settings.control_open:
        return "  control API   open: no admin token, and the sandbox listens on loopback only"
    return "  control API   OFF: listening beyond loopback without --admin-token"
