"""The errors of the forms package, and the root of every domain error of the project.

`MotcuaError` (Vietnamese message first, English second, machine-readable `details`, the HTTP `status` the
shell answers with) and `InvalidInput` (422) are defined here, in the bottom layer, so that the two form
errors below are InvalidInput without forms/ importing engine/; engine/errors.py re-exports both and adds
the other domain errors.

- `FormError`: a form file (or an attachment's name or type) that cannot be accepted. Raised at deploy time
  or upload time. `details` is `{"problems": [{"file", "path", "message_vi", "message_en"}, ...]}`.
- `FormValidationError`: data submitted through a form that the form rejects. `details` is
  `{"fields": {"field.path": "Vietnamese message / English message", ...}}`.
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


class InvalidInput(MotcuaError):
    """Bad input, with per-field or per-element problems in `details` (HTTP 422)."""

    status = 422
    code = "invalid"


#: The `fields` key used for problems that concern the submission as a whole, not one field.
FORM_LEVEL = "_form"


class FormError(InvalidInput):
    """A form definition, an attachment name or an attachment type that is refused."""

    code = "form_invalid"

    @classmethod
    def in_file(cls, filename: str | None, vi: str, en: str, path: str | None = None) -> FormError:
        """One problem in one file: the messages name the file (and the place in it, if known)."""
        where_vi = where_en = ""
        if filename:
            where_vi = f"Biểu mẫu '{filename}'"
            where_en = f"Form file '{filename}'"
        if path:
            where_vi += f" (tại {path})" if where_vi else f"Tại {path}"
            where_en += f" (at {path})" if where_en else f"At {path}"
        message_vi = f"{where_vi}: {vi}" if where_vi else vi
        message_en = f"{where_en}: {en}" if where_en else en
        return cls(
            message_vi,
            message_en,
            {"problems": [{"file": filename, "path": path, "message_vi": message_vi, "message_en": message_en}]},
        )

    @property
    def problems(self) -> list[dict]:
        details = self.details if isinstance(self.details, dict) else {}
        return list(
            details.get("problems")
            or [{"file": None, "path": None, "message_vi": self.message_vi, "message_en": self.message_en}]
        )

    @classmethod
    def combine(cls, errors: list[FormError]) -> FormError:
        """Several files' problems as one error whose messages list every problem (deploy shows them all)."""
        if len(errors) == 1:
            return errors[0]
        problems = [p for e in errors for p in e.problems]
        vi = f"{len(problems)} lỗi trong các tệp biểu mẫu: " + "; ".join(p["message_vi"] for p in problems)
        en = f"{len(problems)} problem(s) in the form files: " + "; ".join(p["message_en"] for p in problems)
        return cls(vi, en, {"problems": problems})


class FormValidationError(InvalidInput):
    """Submitted data rejected by a form; `details["fields"]` maps each field path to one message."""

    code = "form_data_invalid"

    def __init__(self, fields: dict[str, str], form_key: str | None = None):
        self.fields = dict(fields)
        n = len(self.fields)
        name_vi = f" biểu mẫu '{form_key}'" if form_key else ""
        name_en = f" of form '{form_key}'" if form_key else ""
        names = ", ".join(list(self.fields)[:10]) + (", ..." if n > 10 else "")
        super().__init__(
            f"Dữ liệu{name_vi} không hợp lệ ở {n} trường: {names}",
            f"The data{name_en} is invalid in {n} field(s): {names}",
            {"fields": self.fields},
        )
