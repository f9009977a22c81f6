"""The error model: every failure is a named exception that knows its own wire format.

Vendors subclass `SandboxError` once for their envelope (`body()`), then once per documented error.
The core never builds an error body itself; it asks the mounted vendor for the error of a given status.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, as found by validation: where, and what to fix."""

    location: str  # body | path | query | header | auth
    field: str  # dotted path of the offending field, "" for the body as a whole
    message: str
    code: int | str | None = None  # the vendor's error code, when the spec names one (`x-error-code`)


class SandboxError(Exception):
    """Base of every error the sandbox answers with. Subclasses set `status` and render `body()`."""

    status: int = 500
    message: str = "Unexpected error"

    def __init__(self, message: str | None = None, problems: list[Problem] | tuple = (), headers=None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.problems = list(problems)
        self.headers = dict(headers or {})

    def body(self) -> dict:
        raise NotImplementedError

    # What the request journal and logs show: which rule decided the answer.
    @property
    def rule(self) -> str:
        return type(self).__name__
