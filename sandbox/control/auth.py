"""Who may use the control API: anyone on loopback, or whoever holds the admin token when one is set."""
import hmac

from .errors import ControlError

ADMIN_HEADER = "X-Sandbox-Admin-Token"


class Unauthorized(ControlError):
    status = 401
    # RFC 9110: every 401 names its scheme; the admin token is a header of the sandbox's own, named as the scheme.
    default_headers = {"WWW-Authenticate": 'X-Sandbox-Admin-Token realm="sandbox control API"'}


class Forbidden(ControlError):
    status = 403


def authenticate(world, request, operation, now):
    settings = world.settings
    if settings.admin_token:
        sent = request.headers.get(ADMIN_HEADER, "")
        if not hmac.compare_digest(sent.encode(), settings.admin_token.encode()):
            raise Unauthorized(f"Send the admin token as {ADMIN_HEADER}")
    elif not settings.control_open:
        raise Forbidden("The control API is off: the sandbox listens beyond loopback without an admin token; "
                        "restart it with --admin-token")
    return None
