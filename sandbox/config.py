"""Settings of one sandbox instance. Every field can be set from run.py or by tests."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


def _data_root() -> Path:
    """Where specs/, fixtures/, scenarios/ and schemathesis.toml are. Installed (a wheel into a venv, `pip install
    --user`, a system install), they are package data, sandbox/data/, copied there by the build (setup.py) and read
    through importlib.resources, so they are found wherever the package is; in a checkout (or an editable install),
    the repository's own top-level folders."""
    packaged = resources.files(__package__).joinpath("data")
    if packaged.joinpath("specs").is_dir():
        if not isinstance(packaged, Path):  # a zip import: the loaders read files from disk
            raise RuntimeError(f"the sandbox's data must be on the file system, not in {packaged}")
        return packaged
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "specs").is_dir():
        return checkout
    raise RuntimeError(f"the sandbox's specs are missing: neither {packaged}/specs nor {checkout}/specs exists; "
                       "reinstall the package")


ROOT = _data_root()


# Every SANDBOX_* variable the sandbox reads, and what it is when unset: read here only (from_env), by Settings'
# defaults and run.py's options alike. The backend is SQLite wherever the sandbox runs (run.py's workers are
# several processes; an in-process app gets the same world); a caller wanting one process's memory says so.
ENVIRONMENT = {
    "SANDBOX_HOST": "127.0.0.1",
    "SANDBOX_PORT": "8080",
    "SANDBOX_BACKEND": "sqlite",
    "SANDBOX_REDIS_URL": "redis://127.0.0.1:6379/0",
    "SANDBOX_REDIS_PREFIX": "sandbox",
    "SANDBOX_ADMIN_TOKEN": None,
    "SANDBOX_ALLOWED_HOSTS": "",  # comma-separated
    "SANDBOX_CORS_ORIGINS": "",  # comma-separated
    "SANDBOX_LOG_LEVEL": "info",
    "SANDBOX_LOG_FORMAT": "text",
    "SANDBOX_URL": "http://127.0.0.1:8080",  # the sandbox `run.py verify` asks
}


def from_env(name: str) -> str | None:
    """The variable's value, or its default (ENVIRONMENT)."""
    value = os.environ.get(name)
    return ENVIRONMENT[name] if value is None else value


def _env_list(name: str) -> list[str]:
    """A comma-separated environment variable as a list (empty when unset)."""
    return [item.strip() for item in from_env(name).split(",") if item.strip()]


@dataclass
class Settings:
    # Where state lives: "memory" (one process), "sqlite" (the processes of one machine) or "redis" (many hosts).
    backend: str = field(default_factory=lambda: from_env("SANDBOX_BACKEND"))
    # The SQLite file (kept across restarts); none: a temporary one, removed when the sandbox stops.
    db: str | None = None
    # The Redis server of the redis backend, and the prefix of every key the sandbox writes there.
    redis_url: str = field(default_factory=lambda: from_env("SANDBOX_REDIS_URL"))
    redis_prefix: str = field(default_factory=lambda: from_env("SANDBOX_REDIS_PREFIX"))
    seed: int = 2026
    size: int = 100  # generated records per vendor (Returning.AI: purchase histories)
    # The default world's clock as it starts (and as a reset puts it back): frozen at this ISO-8601 moment; None:
    # the wall clock (core/clock.py).
    clock: str | None = None
    # The default world's rate limits (core/rate_limits.py): "documented" or "capillary=100/60,fabric=10/1"; None:
    # none (CI speed). A workspace names its own.
    rate_limits: str | None = None
    # How long a requested publisher timeout makes the client wait before its 502.
    publisher_timeout: float = 2.0
    # Requests kept in each world's journal (the oldest are dropped first).
    journal_size: int = 1000
    # How large one request may be (core/limits.py): beyond, 413 / 414 / 431 in the API's own envelope.
    max_body_bytes: int = 1024 * 1024
    max_import_bytes: int = 64 * 1024 * 1024  # POST /_sandbox/state/import: an exported world of 100k records
    max_url_bytes: int = 4096
    max_header_bytes: int = 16 * 1024
    max_headers: int = 64
    # Seconds a connection has to send a whole request before run.py's server closes it with a 408 (sandbox/serving/protocol.py).
    request_timeout: float = 10.0
    # Seconds a workspace may stay unused before it is dropped.
    workspace_ttl: float = 3600.0
    # Workspaces alive at once: each is a seeded world (up to 4 MB at size 500, plus its journal); the next
    # POST /_sandbox/workspaces is a 409 until one is deleted or expires.
    max_workspaces: int = 100
    # When set, the control API answers only requests that send it as X-Sandbox-Admin-Token.
    admin_token: str | None = None  # run.py: SANDBOX_ADMIN_TOKEN
    # Without an admin token, the control API is served only while this is true (run.py: bound to loopback).
    control_open: bool = True
    # The address the sandbox listens on, and the other names its Host header may carry (core/guard.py: besides
    # these, localhost and loopback addresses; any IP address when listening on all of them).
    host: str = ENVIRONMENT["SANDBOX_HOST"]  # run.py: SANDBOX_HOST
    allowed_hosts: list[str] = field(default_factory=lambda: _env_list("SANDBOX_ALLOWED_HOSTS"))
    # Origins (scheme://host[:port]) whose web pages may call the control API (CORS); none: only its own pages.
    cors_origins: list[str] = field(default_factory=lambda: _env_list("SANDBOX_CORS_ORIGINS"))
    # Hosts besides loopback that webhook subscriptions may target (webhooks/subscriptions.py: SSRF).
    webhook_hosts: list[str] = field(default_factory=list)
    # Behind a reverse proxy that sets X-Forwarded-For, -Proto, -Host and -Port (one hop): believe them (the served
    # specs' `servers`, the Host allow-list). Off, as any client could send them.
    trust_proxy: bool = False
    # Validation proxies (run.py proxy): spec name -> upstream base URL, served at /proxy/<spec>/...
    proxies: dict[str, str] = field(default_factory=dict)
    # Demo scenarios (YAML files) that POST /_sandbox/scenarios/<name> loads.
    scenarios_dir: Path = field(default_factory=lambda: ROOT / "scenarios")
    # How long a Capillary OAuth token lives.
    oauth_token_ttl: int = 300
    # Check every response against the spec and answer 500 when the sandbox would break its own contract.
    strict_responses: bool = False
    specs_dir: Path = field(default_factory=lambda: ROOT / "specs")
    fixtures_dir: Path = field(default_factory=lambda: ROOT / "fixtures")
