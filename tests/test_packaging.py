"""Packaging: the wheel installs and serves from anywhere, its data read as package data; the package imports and
serves without fcntl (as on Windows); the SQLite writers' lock where there is no flock is filelock's."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox.storage import sqlite as sqlite_store
from sandbox.storage.sqlite import SQLiteStore

from services import free_port

ROOT = Path(__file__).parent.parent
SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
PATCH = "/returning-ai/v1/purchase-histories/ORD202641612055614747"

# Served by the memory backend and by SQLite, in a process where `import fcntl` fails: what a Windows user gets
# (and what they got before: nothing imported, not even --dev).
WITHOUT_FCNTL = """
import json, sys
sys.modules["fcntl"] = None
from sandbox import Settings, create_app
from sandbox.storage import sqlite as sqlite_store
answers = []
for backend in ("memory", "sqlite"):
    client = create_app(Settings(backend=backend, size=5)).test_client()
    r = client.patch("%s", json={"redemptionInstructions": "portable"}, headers={"Authorization": "Bearer XXXXXX"})
    answers.append([backend, r.status_code, r.get_json()["data"]["product"]["redemptionInstructions"]])
print(json.dumps({"flock": sqlite_store.FLOCK, "answers": answers}))
""" % PATCH


def test_the_package_imports_and_serves_without_fcntl():
    out = subprocess.run([sys.executable, "-c", WITHOUT_FCNTL], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {
        "flock": False, "answers": [["memory", 200, "portable"], ["sqlite", 200, "portable"]]}


@pytest.fixture
def portable_lock(monkeypatch):
    monkeypatch.setattr(sqlite_store, "FLOCK", False)


def test_the_portable_lock_makes_another_holder_wait(portable_lock, tmp_path):
    path = str(tmp_path / "db-lock")
    first, second = sqlite_store._LockFile(path), sqlite_store._LockFile(path)
    assert first.fd is None and second.fd is None  # filelock's, not flock on a descriptor
    first.acquire()
    taken = threading.Event()

    def take():
        second.acquire()
        taken.set()
        second.release()

    waiter = threading.Thread(target=take)
    waiter.start()
    assert not taken.wait(0.3)  # held by the first
    first.release()
    assert taken.wait(5)
    waiter.join(5)


def test_sqlite_read_check_write_serialises_with_the_portable_lock(portable_lock, tmp_path):
    store = SQLiteStore(str(tmp_path / "portable.db"))
    store.put("counters", "c", {"n": 0})

    def bump():
        for _ in range(25):
            with store.transaction():
                value = store.get("counters", "c")["n"]
                store.put("counters", "c", {"n": value + 1})

    with ThreadPoolExecutor(4) as pool:  # and an exception in any of them fails the test
        for done in [pool.submit(bump) for _ in range(4)]:
            done.result(timeout=60)
    assert store.get("counters", "c")["n"] == 100
    assert store._local.lock_file.fd is None  # the counting above went through filelock's lock


def _run(*command, **kwargs):
    out = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=180, **kwargs)
    assert out.returncode == 0, f"{command}: {out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel as a partner's pip builds it: from the sdist (so MANIFEST.in is tested too), with setup.py's step
    that copies the data into the package."""
    out = tmp_path_factory.mktemp("dist")
    clone = out / "clone"  # the working tree as a fresh clone has it (the build writes its egg-info there)
    for name in _run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT).splitlines():
        if (ROOT / name).is_file() and not name.startswith(("tests/", "bench/", "tools/")):
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    sdist = _run(sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(out)!r}))",
                 cwd=clone).strip().splitlines()[-1]
    with tarfile.open(out / sdist) as archive:
        archive.extractall(out / "src", filter="data")
    source = next((out / "src").iterdir())
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         out / "wheel", source)
    return next((out / "wheel").glob("redemption_sandbox-*.whl"))


def _link_dependencies(site: Path) -> None:
    """The dependencies, already installed in this venv, visible to another interpreter after its own packages (so
    the sandbox it imports is the one installed there): no download, and the test stays fast."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "zz_sandbox_test_dependencies.pth").write_text(SITE_PACKAGES + "\n")


def _wait_for(url: str, process, seconds=60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the installed sandbox exited: {process.stdout.read()}")
        try:
            return json.load(urllib.request.urlopen(url, timeout=2))
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered at {url}")


def test_the_wheel_installs_into_a_fresh_venv_and_serves_from_another_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    _link_dependencies(site)
    _run(python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # every declared dependency is met by the pinned ones (requirements.txt), filelock included
    unmet = _run(python, "-c", "from importlib import metadata\nfrom packaging.requirements import Requirement\n"
                 "for text in metadata.requires('redemption-sandbox'):\n    r = Requirement(text)\n"
                 "    if (r.marker is None or r.marker.evaluate()) and metadata.version(r.name) not in r.specifier:\n"
                 "        print(text)", cwd=elsewhere)
    assert unmet == ""
    # Issue 32 point 2: serving needs no test stack; Schemathesis (and Hypothesis with it) only with [contract]
    extras = _run(python, "-c", "from importlib import metadata\nfor text in metadata.requires('redemption-sandbox'):\n"
                  "    print(text)", cwd=elsewhere).splitlines()
    assert [t for t in extras if "extra ==" in t] == ['schemathesis<5,>=4.32; extra == "contract"']
    assert not [t for t in extras if t.split()[0].lower().startswith(("schemathesis", "hypothesis", "pytest"))
                and "extra ==" not in t]
    where = json.loads(_run(python, "-c", "import json, sandbox, sandbox.config as c; print(json.dumps("
                            "[sandbox.__file__, str(c.ROOT), sandbox.__version__]))", cwd=elsewhere))
    assert where[0].startswith(str(site)) and where[1] == str(site / "sandbox" / "data")
    port = free_port()
    server = subprocess.Popen([venv / "bin" / "redemption-sandbox", "--port", str(port), "--backend", "memory",
                               "--workers", "1", "--size", "5", "--scenario", "voucher-typo-reissue"], cwd=elsewhere,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(f"{base}/_sandbox/health", server)["status"] == "ok"
        scenarios = json.load(urllib.request.urlopen(f"{base}/_sandbox/scenarios", timeout=5))
        assert "voucher-typo-reissue" in json.dumps(scenarios)
        spec = urllib.request.urlopen(f"{base}/_sandbox/specs/returning-ai.yaml", timeout=5).read().decode()
        assert "updatePurchaseHistory" in spec
        request = urllib.request.Request(f"{base}{PATCH}", method="PATCH", data=b'{"redemptionInstructions": "x"}',
                                         headers={"Authorization": "Bearer XXXXXX", "Content-Type": "application/json"})
        assert json.load(urllib.request.urlopen(request, timeout=5))["data"]["product"]["redemptionInstructions"] == "x"
        page = urllib.request.urlopen(f"{base}/", timeout=5).read().decode()
        assert "demo.js" in page  # the UI's package data
        version = _run(venv / "bin" / "redemption-sandbox", "--version", cwd=elsewhere)
        assert version.strip() == f"redemption-sandbox {where[2]}"
    finally:
        server.terminate()
        server.wait(15)
    assert not list(elsewhere.iterdir())  # it wrote nothing where it was started


def test_a_user_install_finds_its_data(wheel, tmp_path):
    """`pip install --user` put the data under the user base's share/, and the sandbox looked under sys.prefix:
    FileNotFoundError. Package data is found beside the package, wherever that is."""
    userbase = tmp_path / "userbase"
    # The interpreter this venv was made from (--user is refused inside a venv), with this venv's packages (pip
    # among them, whether or not that interpreter has its own) after its own: the sandbox is only in the user site.
    env = {**os.environ, "PYTHONUSERBASE": str(userbase), "PIP_BREAK_SYSTEM_PACKAGES": "1", "PYTHONPATH": SITE_PACKAGES}
    base_python = sys._base_executable
    _run(base_python, "-m", "pip", "install", "-q", "--user", "--no-index", "--no-deps", "--no-warn-script-location",
         wheel, env=env)
    lines = _run(base_python, "-c", WITHOUT_FCNTL.replace('sys.modules["fcntl"] = None', "") +
                 "import sandbox; print(json.dumps(sandbox.__file__))", cwd=tmp_path, env=env).splitlines()
    assert json.loads(lines[-2])["answers"] == [["memory", 200, "portable"], ["sqlite", 200, "portable"]]
    assert json.loads(lines[-1]).startswith(str(userbase))


WORKFLOW = ROOT / ".github" / "workflows" / "partner-contract.yml"


def _step(name_starts: str) -> dict:
    import yaml

    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["against-the-sandbox"]["steps"]
    return next(s for s in steps if s.get("name", "").startswith(name_starts))


def _bash(script: str, tmp_path: Path, **env) -> subprocess.CompletedProcess:
    fake_bin = tmp_path / "bin"  # a redemption-sandbox and a pip that only say they ran
    fake_bin.mkdir(exist_ok=True)
    for tool in ("redemption-sandbox", "pip"):
        (fake_bin / tool).write_text(f"#!/bin/sh\necho {tool} ran \"$@\" >> {tmp_path}/ran.txt\n")
        (fake_bin / tool).chmod(0o755)
    return subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{fake_bin}:{os.environ['PATH']}", **env})


def test_the_partner_workflow_refuses_its_placeholder_install_line(tmp_path):
    install = _step("Install the sandbox")["run"]
    refused = _bash(install, tmp_path, SANDBOX_PACKAGE="redemption-sandbox @ git+https://github.com/OWNER/x.git")
    assert refused.returncode == 1 and "set SANDBOX_PACKAGE" in refused.stdout
    assert not (tmp_path / "ran.txt").exists()
    assert _bash(install, tmp_path, SANDBOX_PACKAGE="redemption-sandbox==0.1.0").returncode == 0
    assert (tmp_path / "ran.txt").read_text() == "pip ran install redemption-sandbox==0.1.0\n"


def test_the_partner_workflow_health_wait_fails_when_nothing_answers_and_passes_when_it_does(tmp_path):
    from sandbox.testing import start_sandbox

    wait = _step("Start it")["run"]
    nothing = _bash(wait, tmp_path, SANDBOX_URL=f"http://127.0.0.1:{free_port()}", SANDBOX_WAIT_SECONDS="2")
    assert nothing.returncode == 1 and "did not answer within 2 s" in nothing.stdout
    with start_sandbox() as sandbox:
        answered = _bash(wait, tmp_path, SANDBOX_URL=sandbox.base_url, SANDBOX_WAIT_SECONDS="10")
    assert answered.returncode == 0, answered.stdout


def test_the_partner_workflow_does_not_fuzz_the_sandbox_by_default():
    contract = _step("The vendor contract")
    assert contract["if"] == "${{ vars.PARTNER_BASE_URL != '' }}"
    assert "vars.PARTNER_BASE_URL" in contract["run"] and "SANDBOX_URL" not in contract["run"]
    assert "127.0.0.1" not in contract["run"]
