"""fabric: Offers redemptions, v3 (seed 003)."""
from sandbox.core.authorization import bearer_credential
from sandbox.core.mount import Mount

from . import handlers
from .auth import authenticate
from .errors import error_for_status
from .records import INDEXES, TOKENS
from .seed import credentials, seed

vendor = Mount(
    name="fabric",
    spec_file="fabric.yaml",
    handlers=handlers,
    error_for_status=error_for_status,
    authenticate=authenticate,
    seed=seed,
    credentials=credentials,
    indexes=INDEXES,
    echo_headers=("x-fabric-request-id",),
    credential=bearer_credential,
    credential_fields={TOKENS: ("token",)},
)
