"""Capillary: points redemptions (seed 004) and the sibling points APIs."""
from sandbox.core.mount import Mount

from . import handlers
from .auth import authenticate, credential, rate_key
from .errors import error_for_status
from .records import INDEXES, OAUTH_CLIENTS, OAUTH_TOKENS, TILLS
from .seed import credentials, seed

vendor = Mount(
    name="capillary",
    spec_file="capillary.yaml",
    handlers=handlers,
    error_for_status=error_for_status,
    authenticate=authenticate,
    rate_key=rate_key,
    seed=seed,
    credentials=credentials,
    indexes=INDEXES,
    credential=credential,
    credential_fields={TILLS: ("username",), OAUTH_CLIENTS: ("key", "username"), OAUTH_TOKENS: ("token", "username")},
    faults={"redemption-update-failed": "750 \"Redemption update failed : {0}.\" on updateRedemption, after the "
                                        "lookups, before the write; nothing written."},
)
