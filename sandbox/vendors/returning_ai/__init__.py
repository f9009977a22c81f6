"""Returning.AI: purchase histories (seeds 000, 001)."""
from sandbox.core.authorization import bearer_credential
from sandbox.core.mount import Mount

from . import handlers
from .auth import authenticate
from .errors import error_for_status
from .records import API_KEYS, INDEXES
from .seed import credentials, seed

vendor = Mount(
    name="returning-ai",
    spec_file="returning-ai.yaml",
    handlers=handlers,
    error_for_status=error_for_status,
    authenticate=authenticate,
    seed=seed,
    credentials=credentials,
    indexes=INDEXES,
    credential=bearer_credential,
    credential_fields={API_KEYS: ("key",)},
    faults={
        "store-unavailable": "502: the upstream store service is unreachable (seed 000); strikes when the update is "
                             "published, after 404 and 409; nothing written.",
        "publisher-timeout": "502 after waiting the publisher timeout (seed 000); strikes when the update is "
                             "published; nothing written (applied: the message was delivered before the timeout: "
                             "the update happens, the 502 all the same).",
    },
)
