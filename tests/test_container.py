"""The container image (Containerfile), built and run with podman as scripts/container.sh does where no registry is
reachable: it serves health and the vendor APIs on 8080 with the admin token from the environment, keeps its SQLite
world in the volume across a restart, stops promptly on SIGTERM, and carries no test stack.

One test, so that pytest-xdist never gives two processes a build each. The first run makes the base with mmdebstrap
(about a minute) and the image (30-45 s); later runs find both cached and take about 20 s."""
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from services import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "container.sh"
IMAGE = "localhost/redemption-sandbox:latest"
BASE = "localhost/sandbox-base:bookworm"
ORDER = "ORD202641612055614747"
PATCH = f"/returning-ai/v1/purchase-histories/{ORDER}"
TOKEN = "container-test-" + uuid.uuid4().hex
INSTALL = "bash scripts/container.sh build installs it (Debian's podman, runc and mmdebstrap)"


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """podman with the script's runtime, cgroup manager and configuration."""
    done = subprocess.run(["bash", str(SCRIPT), "podman", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def image():
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: {INSTALL}")
    if shutil.which("mmdebstrap") is None and podman("image", "exists", BASE, check=False).returncode != 0:
        pytest.skip(f"mmdebstrap is not installed and there is no base image {BASE} to build on: {INSTALL}")
    built = subprocess.run(["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=1200,
                           check=False)
    assert built.returncode == 0, f"scripts/container.sh build:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
    return IMAGE


@pytest.fixture
def volume():
    name = "sandbox-test-" + uuid.uuid4().hex[:12]
    podman("volume", "create", name)
    yield name
    podman("volume", "rm", "--force", name, check=False)


def call(base: str, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    """(status, headers, JSON body) of one request, error statuses included."""
    request = urllib.request.Request(base + path, method=method, headers=headers or {},
                                     data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, json.load(refused)


def admin(base: str, path: str):
    return call(base, "GET", path, headers={"X-Sandbox-Admin-Token": TOKEN})


@contextmanager
def container(image: str, volume: str):
    """The image serving on a free loopback port with the admin token and the volume, once its health answers:
    yields (name, base URL); removed after, however the test went."""
    name, port = "sandbox-test-" + uuid.uuid4().hex[:12], free_port()
    podman("run", "--detach", "--name", name, "--publish", f"127.0.0.1:{port}:8080",
           "--env", f"SANDBOX_ADMIN_TOKEN={TOKEN}", "--volume", f"{volume}:/data", image)
    base = f"http://127.0.0.1:{port}"

    def healthy():
        state = podman("container", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name).stdout
        if not state.startswith("running"):
            logs = podman("logs", name, check=False)
            raise AssertionError(f"the container is {state}:\n{logs.stdout}\n{logs.stderr}")
        try:
            status, _, health = admin(base, "/_sandbox/health")
        except OSError:  # not listening yet
            return None
        return health if status == 200 else None

    try:
        health = wait_for(healthy, timeout=60, what=f"the container's health at {base}")
        assert health["status"] == "ok" and health["backend"]["kind"] == "sqlite"
        yield name, base
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def test_the_image_serves_keeps_its_state_in_the_volume_and_stops_promptly(image, volume):
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "sandbox" and "8080/tcp" in config["ExposedPorts"] and "/data" in config["Volumes"]
    assert inspected["Size"] < 350e6  # 282 MB measured on the Debian base: its Python and the runtime only
    installed = podman("run", "--rm", "--entrypoint", "python3", image, "-c",
                       "import importlib.util as u; print([m for m in ('pytest', 'hypothesis', 'schemathesis', 'pip')"
                       " if u.find_spec(m)])").stdout
    assert installed.strip() == "[]"

    instructions = "Collect at the main counter between 10am and 6pm. " + uuid.uuid4().hex
    with container(image, volume) as (name, base):
        # the README's first call, with only the host changed
        status, _, answer = call(base, "PATCH", PATCH, {"redemptionInstructions": instructions},
                                 {"Authorization": "Bearer XXXXXX"})
        assert status == 200 and answer["data"]["product"]["redemptionInstructions"] == instructions
        status, headers, refusal = call(base, "GET", "/_sandbox/health")
        assert status == 401 and "X-Sandbox-Admin-Token" in headers["WWW-Authenticate"], refusal
        podman("healthcheck", "run", name)  # the image's HEALTHCHECK passes: it sends the token
        started = time.monotonic()
        podman("stop", "--time", "10", name)
        stopping = time.monotonic() - started
        # SIGTERM ended it (exit status 0), well before podman's SIGKILL after 10 s would have (137)
        assert podman("container", "inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        assert stopping < 8, f"podman stop took {stopping:.1f} s"

    with container(image, volume) as (_, base):
        status, _, state = admin(base, "/_sandbox/state/rai_purchase_histories")
        assert status == 200
        record = next(r for r in state["records"] if r["purchaseID"] == ORDER)
        assert record["product"]["redemptionInstructions"] == instructions
