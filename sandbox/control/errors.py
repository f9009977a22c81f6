"""Errors of the control API: {"error": {"code", "message"}}."""
from sandbox.core.errors import Problem, RequestContext, SandboxError


class ControlError(SandboxError):
    def body(self, context: RequestContext) -> dict:
        return {"error": {"code": self.status, "message": self.message}}


class NotFound(ControlError):
    status = 404


class Conflict(ControlError):
    status = 409


class TooManyWorkspaces(Conflict):
    """A 409, not a 429: the refusal is about what the sandbox holds, not how fast it is asked; waiting helps only
    if a workspace happens to expire meanwhile."""

    def __init__(self, limit: int):
        super().__init__(f"This sandbox already has {limit} workspaces, the most it keeps: delete one you no longer "
                         "need (DELETE /_sandbox/workspaces/{workspaceId}; GET /_sandbox/workspaces lists them), or "
                         "start the sandbox with a higher --max-workspaces", [])


def error_for_status(status: int, message: str, problems: list[Problem], headers=None) -> ControlError:
    error = ControlError(message, problems, headers)
    error.status = status
    return error
