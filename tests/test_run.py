"""run.py: options, start-up faults and scenarios, and the control API's protection beyond loopback."""
import subprocess
import sys
from pathlib import Path

from sandbox import cli as run

ROOT = Path(__file__).parent.parent


def test_help_explains_every_option():
    out = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for option in ("--host", "--port", "--seed", "--size", "--publisher-timeout", "--strict", "--admin-token",
                   "--faults", "--scenario", "--workspace-ttl", "--journal-size", "--workers", "--threads", "--dev",
                   "--backend", "--db", "--redis-url", "--server"):
        assert option in out


def test_loopback_detection_decides_the_control_api():
    assert run._is_loopback("127.0.0.1") and run._is_loopback("localhost") and run._is_loopback("::1")
    assert not run._is_loopback("0.0.0.0") and not run._is_loopback("10.1.2.3")


def test_startup_faults_file_and_scenario(monkeypatch):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    run.main(["--size", "5", "--faults", str(ROOT / "fixtures/faults/flaky-everything.yaml"),
              "--scenario", "fulfilment-refund"])
    world = served["app"].extensions["sandbox"].default
    assert [r.fault for r in world.faults.all()] == ["latency", "publisher-timeout", "rate-limit",
                                                    "redemption-update-failed"]
    assert world.store.get("rai_redemption_transactions", "686352a0b1c2d3e4f5a63831")["statusId"] == \
        "695e2f8b3358520a2ecf86e4"


def test_beyond_loopback_without_token_turns_control_api_off(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    run.main(["--size", "5", "--host", "0.0.0.0"])
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


def test_one_thread_serves_with_the_sync_worker_and_more_with_gthread(capsys):
    import pytest

    assert run.parse_args([]).threads == 1  # the sync worker: measured fastest (see sandbox/cli.py)
    assert run._server_name(run.parse_args([])).startswith("gunicorn sync, waiting in an event loop")
    assert run.gunicorn_worker_class(1) == "sandbox.serving.SandboxWorker"
    assert run._server_name(run.parse_args(["--threads", "4"])) == "gunicorn gthread"
    for bad in (["--workers", "0"], ["--threads", "x"]):
        with pytest.raises(SystemExit):
            run.parse_args(bad)
        assert "must be" in capsys.readouterr().err
