"""Domain errors. Each carries a Vietnamese message first and an English one second.

The HTTP shell maps them onto status codes (see api/errors.py); the CLI prints them.
"""

from __future__ import annotations

# The root of every domain error and the 422 are defined in forms/, the bottom layer, so that a form's
# errors are InvalidInput too without forms/ importing engine/.
from forms.errors import InvalidInput as InvalidInput
from forms.errors import MotcuaError as MotcuaError


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

    @classmethod
    def dossier_changed(cls) -> Conflict:
        """The optimistic version check failed: the row changed since it was read."""
        return cls(
            "Hồ sơ vừa được người khác thay đổi; vui lòng tải lại và thử lại.",
            "The dossier was changed by someone else meanwhile; reload and try again.",
        )

    @classmethod
    def task_held(cls, holder: str) -> Conflict:
        """A task claimed by someone else: only its holder works on it."""
        return cls(f"Công việc đang do '{holder}' giữ", f"the task is held by '{holder}'")


class ProcedureInvalid(InvalidInput):
    """A BPMN file that cannot be deployed. `details` is a list of problems, each naming the element."""

    code = "procedure_invalid"


class TooLarge(MotcuaError):
    status = 413
    code = "too_large"


class WorkflowDataError(InvalidInput):
    """The process cannot continue with the data given (e.g. a condition reads a missing field): HTTP 422."""

    code = "workflow_error"
