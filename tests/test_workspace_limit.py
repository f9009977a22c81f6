"""At most --max-workspaces workspaces at once: the next POST /_sandbox/workspaces is a 409 that creates nothing."""
from pathlib import Path

import pytest

from helpers import strict_app
from sandbox import cli as run
from sandbox.control.errors import TooManyWorkspaces
from services import free_port


def _ids(client) -> list[str]:
    return [w["id"] for w in client.get("/_sandbox/workspaces").get_json()["workspaces"]]


def test_a_workspace_beyond_the_limit_is_a_409_and_nothing_is_created(backend_settings):
    # Strict: the 409 must be the one specs/sandbox.yaml documents, or it would be a 500.
    app = strict_app(size=5, max_workspaces=2, **backend_settings)
    client, sandbox = app.test_client(), app.extensions["sandbox"]
    first, second = (client.post("/_sandbox/workspaces", json={"size": 0}).get_json() for _ in range(2))
    before = _ids(client)
    assert sorted(before) == sorted([first["id"], second["id"]])

    refused = client.post("/_sandbox/workspaces", json={"size": 0})
    assert refused.status_code == 409
    assert refused.get_json() == {"error": {"code": 409, "message": (
        "This sandbox already has 2 workspaces, the most it keeps: delete one you no longer need (DELETE "
        "/_sandbox/workspaces/{workspaceId}; GET /_sandbox/workspaces lists them), or start the sandbox with a higher "
        "--max-workspaces")}}
    assert _ids(client) == before
    assert len(sandbox.registry.all(sandbox.SUFFIXES)) == 2  # no credential suffix registered for it either

    assert client.delete(f"/_sandbox/workspaces/{first['id']}").status_code == 200
    third = client.post("/_sandbox/workspaces", json={"size": 0})
    assert third.status_code == 201
    assert sorted(_ids(client)) == sorted([second["id"], third.get_json()["id"]])
    assert client.post("/_sandbox/workspaces", json={"size": 0}).status_code == 409


def test_workers_creating_at_once_never_pass_the_limit(backend_settings, monkeypatch):
    """Another worker takes the last place while this one seeds: this one's workspace is undone, not registered."""
    sandbox = strict_app(size=5, max_workspaces=1, **backend_settings).extensions["sandbox"]
    opened, original = [], sandbox._open

    def open_while_another_worker_creates(*args, **kwargs):
        world = original(*args, **kwargs)
        opened.append(world)
        monkeypatch.setattr(sandbox, "_open", original)
        opened.append(sandbox.create_workspace(size=0))  # the other worker, done first
        return world

    monkeypatch.setattr(sandbox, "_open", open_while_another_worker_creates)
    with pytest.raises(TooManyWorkspaces):
        sandbox.create_workspace(size=0)
    undone, other = opened
    assert [w.id for w in sandbox.workspaces()] == [other.id]
    assert [r["workspace"] for r in sandbox.registry.all(sandbox.SUFFIXES)] == [other.id]
    assert undone.id not in sandbox.worlds and undone.id not in sandbox._touched
    if sandbox.settings.backend == "sqlite":  # its seeded data dropped from the backend: on SQLite, its own file
        assert not Path(sandbox.backend.path_for(undone.id)).exists()
    else:
        assert undone.vanished()


def test_run_py_sets_the_limit(monkeypatch, capsys):
    served = {}
    monkeypatch.setattr(run, "serve", lambda app, args: served.update(app=app))
    run.main(["--size", "5", "--port", str(free_port()), "--max-workspaces", "3"])
    assert served["app"].extensions["sandbox"].settings.max_workspaces == 3
    with pytest.raises(SystemExit):
        run.parse_args(["--max-workspaces", "0"])
    assert "must be 1 or more" in capsys.readouterr().err
