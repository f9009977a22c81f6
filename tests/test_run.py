"""run.py: options, start-up faults and scenarios, and the control API's protection beyond loopback."""
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox
from sandbox import cli as run
from services import free_port

ROOT = Path(__file__).parent.parent


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for option in ("--host", "--port", "--seed", "--size", "--publisher-timeout", "--strict", "--admin-token",
                   "--faults", "--scenario", "--workspace-ttl", "--max-workspaces", "--journal-size", "--workers",
                   "--threads", "--dev", "--backend", "--db", "--redis-url", "--server"):
        assert option in out


@pytest.mark.parametrize("option, value, says", [
    # As the control API takes them: a world any run makes can be reset to, exported and imported again.
    ("--seed", "-1", "must be from 0 to 4,294,967,295, not -1"),
    ("--size", "20001", "must be from 0 to 20,000, not 20001"),
    # The journal's bound: 0 or less would mean no bound on one backend and no journal on another.
    ("--journal-size", "0", "must be 1 or more, not 0"),
    ("--workspace-ttl", "nan", "must be more than 0 and at most 2,592,000, not nan"),  # a NaN expiry never expires
    ("--request-timeout", "inf", "must be more than 0 and at most 3,600, not inf"),  # a slow client held for ever
    ("--request-timeout", "1e10", "must be more than 0 and at most 3,600, not 1e10"),  # past a socket's timeouts
    ("--publisher-timeout", "-1", "must be from 0 to 3,600, not -1"),
    ("--port", "65536", "must be from 1 to 65,535, not 65536"),
    ("--workers", "two", "must be a whole number, not 'two'"),
])
def test_an_option_out_of_range_is_refused_saying_what_it_takes(option, value, says, capsys):
    with pytest.raises(SystemExit) as refused:
        run.parse_args([option, value])
    assert refused.value.code == 2 and f"argument {option}: {says}" in capsys.readouterr().err


def test_a_port_from_the_environment_is_checked_as_the_option_is(monkeypatch, capsys):
    monkeypatch.setenv("SANDBOX_PORT", "9090")
    assert run.parse_args([]).port == 9090
    monkeypatch.setenv("SANDBOX_PORT", "http")
    with pytest.raises(SystemExit):
        run.parse_args([])
    assert "argument --port: must be a whole number, not 'http'" in capsys.readouterr().err


def test_loopback_detection_decides_the_control_api():
    assert run._is_loopback("127.0.0.1") and run._is_loopback("localhost") and run._is_loopback("::1")
    assert not run._is_loopback("0.0.0.0") and not run._is_loopback("10.1.2.3")


def test_startup_faults_file_and_scenario(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    port = free_port()
    run.main(["--size", "5", "--port", str(port), "--faults", str(ROOT / "fixtures/faults/flaky-everything.yaml"),
              "--scenario", "fulfilment-refund"])
    world = served["app"].extensions["sandbox"].default
    assert [r.fault for r in world.faults.all()] == ["latency", "publisher-timeout", "rate-limit",
                                                    "redemption-update-failed"]
    # Issue 32 point 4: the banner says what is switched on, so a demo's first failure is no surprise.
    banner = capsys.readouterr().out
    assert f"  scenario      fulfilment-refund loaded (its story: http://127.0.0.1:{port}/_sandbox/scenarios)" in banner
    assert "  fault rules   4 active: " in banner and "capillary updateRedeemPoints redemption-update-failed" in banner
    assert world.store.get("rai_redemption_transactions", "686352a0b1c2d3e4f5a63831")["statusId"] == \
        "695e2f8b3358520a2ecf86e4"


def test_beyond_loopback_without_token_turns_control_api_off(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    run.main(["--size", "5", "--host", "0.0.0.0", "--port", str(free_port())])
    assert "control API   OFF" in capsys.readouterr().out
    assert served["app"].test_client().get("/_sandbox/health").status_code == 403


def test_memory_backend_refuses_several_workers(capsys):
    import pytest

    with pytest.raises(SystemExit):
        run.parse_args(["--backend", "memory"])
    assert "--workers 1" in capsys.readouterr().err
    assert run.parse_args(["--backend", "memory", "--workers", "1"]).backend == "memory"
    with pytest.raises(SystemExit):  # granian's workers are processes of their own, even just one
        run.parse_args(["--backend", "memory", "--workers", "1", "--server", "granian"])
    assert "--server granian" in capsys.readouterr().err


def test_serves_on_sqlite_with_several_workers_by_default():
    args = run.parse_args([])
    assert args.backend == "sqlite" and args.workers >= 2 and not args.dev


def test_unreachable_redis_is_a_clear_start_up_error():
    out = subprocess.run([sys.executable, "run.py", "--backend", "redis", "--redis-url", "redis://127.0.0.1:1/0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "Cannot use Redis at redis://127.0.0.1:1/0" in out.stderr and "Traceback" not in out.stderr


def test_unusable_database_file_is_a_clear_start_up_error(tmp_path):
    old = tmp_path / "old.db"
    import sqlite3

    with sqlite3.connect(old) as db:  # the layout before worlds shared one file
        db.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, collection TEXT, key TEXT, data TEXT)")
    for db_file, says in ((old, "written by an earlier version"), (tmp_path / "no" / "dir.db", "Cannot open")):
        out = subprocess.run([sys.executable, "run.py", "--db", str(db_file)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 1 and says in out.stderr and "Traceback" not in out.stderr


def test_threads_are_for_whole_world_operations_under_gunicorn_and_for_requests_under_granian(capsys):
    import pytest

    assert run.parse_args([]).threads == 4 and run.parse_args(["--server", "granian"]).threads == 1
    assert run.server_name(run.parse_args(["--threads", "2"])).startswith("gunicorn with uvicorn workers")
    assert "2 thread(s) for whole-world operations" in run.server_name(run.parse_args(["--threads", "2"]))
    for bad in (["--workers", "0"], ["--threads", "x"]):
        with pytest.raises(SystemExit):
            run.parse_args(bad)
        assert "must be" in capsys.readouterr().err


def test_help_lists_every_subcommand_and_the_version():
    out = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands = out.split("commands (", 1)[1]
    for name in ("contract", "proxy", "compat", "verify"):
        assert f"\n  {name} " in commands
    assert "--version" in out
    version = subprocess.run([sys.executable, "run.py", "--version"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    assert version == f"redemption-sandbox {sandbox.__version__}\n" and sandbox.__version__.count(".") == 2


@pytest.mark.parametrize("command, says", [
    # the proxy's own options and every server option
    (["proxy"], ["--spec", "--upstream", "the real server's API base URL", "--port", "--backend", "--db",
                 "--admin-token", "--workers"]),
    (["compat"], ["OLD", "NEW", "the spec clients were written against", "Exit status 1"]),
    (["contract"], ["--spec", "--base-url", "--auth", "--operation", "--exclude", "CONTRACT_AUTHORIZATION",
                    "2 when nothing answers"]),
    (["verify"], ["--url", "--method", "--path", "--query", "--header", "--body", "--subset", "--body-path",
                  "--count", "--at-least", "Exit status 0 when verified, 1 when not, 2 when"]),
])
def test_every_subcommand_has_complete_help(command, says):
    out = subprocess.run([sys.executable, "run.py", *command, "--help"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    for text in says:
        assert text in " ".join(out.split()), text


def test_a_busy_port_is_one_line_and_exit_status_1_before_any_banner():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = subprocess.run([sys.executable, "run.py", "--port", str(port)], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == (f"Port {port} on 127.0.0.1 is already in use (another sandbox?): stop that server, or "
                          f"choose another port with --port\n")
    assert run.port_problem("127.0.0.1", port) is None  # let go: free again


def test_an_existing_database_keeps_its_world_and_says_so_or_reseeds(tmp_path, monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    db = str(tmp_path / "kept.db")

    def start(*options):
        run.main(["--db", db, "--port", str(free_port()), *options])
        return served["app"].extensions["sandbox"], capsys.readouterr().out

    first, out = start("--size", "5")
    assert (first.seed, first.size) == (2026, 5) and "state note" not in out
    kept, out = start("--seed", "7", "--size", "6")
    assert (kept.seed, kept.size) == (2026, 5)
    assert ("the backend already held a world (seed 2026, size 5, clock the wall clock): serving it as it is, not "
            "seed 7, size 6, clock the wall clock; add --reseed to reseed it") in out
    reseeded, out = start("--seed", "7", "--size", "6", "--reseed")
    assert (reseeded.seed, reseeded.size) == (7, 6)
    assert ("reseeded the world it held (seed 2026, size 5, clock the wall clock) with seed 7, size 6, clock the "
            "wall clock (--reseed)") in out
    again, out = start("--seed", "7", "--size", "6")
    assert (again.seed, again.size) == (7, 6) and "state note" not in out
    again.reset()  # a reseeded world starts anew: a reset without a seed or size comes back to 7 and 6
    assert (again.seed, again.size) == (7, 6)
    # Issue 28 point 1: the clock is the world's, like its seed: kept, or reseeded with it, and the banner shows it.
    frozen, out = start("--seed", "7", "--size", "6", "--clock", "2027-01-01T00:00:00Z", "--reseed")
    assert frozen.default.clock.state().view() == {"now": "2027-01-01T00:00:00.000Z", "frozen": True,
                                                    "offsetSeconds": frozen.default.clock.state().view()["offsetSeconds"],
                                                    "start": "2027-01-01T00:00:00.000Z"}
    assert "clock         2027-01-01T00:00:00.000Z (frozen)" in out
    kept, out = start("--seed", "7", "--size", "6", "--clock", "2027-01-01T00:00:00Z")
    assert "state note" not in out and kept.default.clock.state().start == 1798761600000


def test_every_option_and_environment_variable_is_in_the_readme(capsys):
    """Issue 27 point 3: the README named 21 of run.py's 27 options; every option --help lists, and every SANDBOX_*
    variable the sandbox reads (config.ENVIRONMENT, its one place), is in its options section."""
    import re

    from sandbox.config import ENVIRONMENT

    with pytest.raises(SystemExit):
        run.parse_args(["--help"])
    flags = set(re.findall(r"(--[a-z][a-z-]+)", capsys.readouterr().out)) - {"--help"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Requirements and options"):]
    section = section[:section.index("\n## ", 5)]
    assert sorted(f for f in flags if f"`{f}`" not in section) == []
    assert sorted(name for name in ENVIRONMENT if f"`{name}`" not in section) == []


def test_every_option_that_sets_a_setting_reaches_it():
    """run.py copies the options named as Settings fields over by name (issue 27 point 3: it was a hand-written list
    of 20): each changed option reaches the app's settings."""
    args = run.parse_args(["--strict", "--journal-size", "7", "--trust-proxy", "--max-url-bytes", "5000", "--db",
                           "x.db", "--workspace-ttl", "9", "--allowed-host", "team.example", "--host", "0.0.0.0",
                           "--request-timeout", "3", "--admin-token", "t", "--publisher-timeout", "0.5"])
    settings = run.settings_from(args, {"fabric": "http://upstream"})
    assert (settings.strict_responses, settings.journal_size, settings.trust_proxy, settings.max_url_bytes,
            settings.db, settings.workspace_ttl, settings.allowed_hosts[-1], settings.host, settings.request_timeout,
            settings.admin_token, settings.publisher_timeout) == (True, 7, True, 5000, "x.db", 9.0, "team.example",
                                                                  "0.0.0.0", 3.0, "t", 0.5)
    assert settings.control_open is False and settings.proxies == {"fabric": "http://upstream"}
