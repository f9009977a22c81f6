"""What a vendor folder (or the control API) provides to plug into the sandbox.

A vendor is a spec plus a module of handlers named after its operationIds, an error factory for its
envelope, an authenticator, and the data it seeds. The core mounts every vendor the same way, so adding
one never touches the core.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Callable

from .errors import SandboxError


@dataclass
class Mount:
    name: str  # URL prefix, and the `vendor` of its credentials
    spec_file: str  # file name under specs/
    handlers: ModuleType  # one function per operationId, in snake_case
    # The vendor's error for a status the core decides (400 validation, 404/405 routing, 429/500 faults, crash),
    # called as (status, message, problems, headers=None).
    error_for_status: Callable[..., SandboxError]
    # Checks the request's credentials for an operation, as of `now` (the world's time: an expired one is refused),
    # called as (world, request, operation, now); returns the caller (principal) or raises.
    authenticate: Callable | None = None
    # Whose count a request is in, where the world has rate limits: (principal, request) -> str or None (not
    # counted). Default: the request's credential (`credential`).
    rate_key: Callable | None = None
    # Fills the store with the vendor's world: (store, faker, size, fixtures, credential_suffix) -> None.
    seed: Callable | None = None
    # Demo credentials for GET /_sandbox/credentials: (store) -> list of dicts.
    credentials: Callable | None = None
    # Secondary indexes the vendor's lookups need: collection -> fields.
    indexes: dict[str, list[str]] = field(default_factory=dict)
    # Request headers copied onto every response of this mount (fabric's x-fabric-request-id).
    echo_headers: tuple[str, ...] = ()
    # The credential a request presents (a bearer token, a till's username, an OAuth token), or None: its suffix
    # says which world the request acts on (core/world.py), whichever world's store may hold it.
    credential: Callable | None = None
    # Collections whose keys are credentials, and the fields of their records that hold one: no world may be given
    # (by an import, a scenario) a credential that is not its own.
    credential_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The vendor's own faults (beyond core.faults.GENERIC_FAULTS): name -> what it does.
    faults: dict[str, str] = field(default_factory=dict)
    # Whether its requests are recorded in the world's journal (the control API's are not).
    journaled: bool = True

    def __post_init__(self):
        if self.rate_key is None and self.credential is not None:
            credential = self.credential
            self.rate_key = lambda principal, request: credential(request)
