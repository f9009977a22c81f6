"""Errors of the control API: {"error": {"code", "message"}}."""
from sandbox.core.errors import Problem, RequestContext, SandboxError


class ControlError(SandboxError):
    def body(self, context: RequestContext) -> dict:
        return {"error": {"code": self.status, "message": self.message}}


class NotFound(ControlError):
    status = 404


class Conflict(ControlError):
    status = 409


def error_for_status(status: int, message: str, problems: list[Problem], headers=None) -> ControlError:
    error = ControlError(message, problems, headers)
    error.status = status
    return error
