"""Domain errors. Each carries a Vietnamese message first and an English one second.

The HTTP shell maps them onto status codes (see api/errors.py); the CLI prints them.
"""

from __future__ import annotations


class MotcuaError(Exception):
    """Base class: `message_vi` / `message_en` are shown to people; `details` is machine-readable."""

    status = 400
    code = "error"

    def __init__(self, message_vi: str, message_en: str | None = None, details=None):
        super().__init__(message_en or message_vi)
        self.message_vi = message_vi
        self.message_en = message_en or message_vi
        self.details = details

    @property
    def message(self) -> str:
        return f"{self.message_vi} / {self.message_en}"


class NotFound(MotcuaError):
    status = 404
    code = "not_found"


class PermissionDenied(MotcuaError):
    status = 403
    code = "forbidden"


class Conflict(MotcuaError):
    """Two people changed the same thing: one wins, the other gets this (HTTP 409)."""

    status = 409
    code = "conflict"


class InvalidInput(MotcuaError):
    """Bad input, with per-field or per-element problems in `details` (HTTP 422)."""

    status = 422
    code = "invalid"


class ProcedureInvalid(InvalidInput):
    """A BPMN file that cannot be deployed. `details` is a list of problems, each naming the element."""

    code = "procedure_invalid"


class TooLarge(MotcuaError):
    status = 413
    code = "too_large"


class WorkflowDataError(InvalidInput):
    """The process cannot continue with the data given (e.g. a condition reads a missing field): HTTP 422."""

    code = "workflow_error"
