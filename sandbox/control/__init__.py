"""The control API under /_sandbox (specs/sandbox.yaml)."""
from sandbox.core.mount import Mount

from . import handlers
from .auth import authenticate
from .errors import error_for_status

control = Mount(name="_sandbox", spec_file="sandbox.yaml", handlers=handlers, error_for_status=error_for_status,
                authenticate=authenticate, journaled=False)
