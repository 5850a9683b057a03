"""Turn jsonschema's errors into one short message per field, Vietnamese first, then English.

Field paths are dotted: `ho_ten`, `dia_chi.tinh`, `con.0.ho_ten` (array items by index). Problems that
belong to no field use the key `_form`.
"""

from __future__ import annotations

from jsonschema.exceptions import ValidationError

from .errors import FORM_LEVEL
from .patterns import search

REQUIRED = ("Trường bắt buộc", "This field is required")
NOT_ALLOWED = ("Trường không được phép", "This field is not allowed")
INVALID = ("Giá trị không hợp lệ", "Invalid value")
NOT_A_CHOICE = ("Giá trị không nằm trong danh sách cho phép", "Not one of the allowed options")

_TYPES = {
    "string": ("Phải là chuỗi ký tự", "Must be text"),
    "integer": ("Phải là số nguyên", "Must be a whole number"),
    "number": ("Phải là số", "Must be a number"),
    "boolean": ("Phải là đúng hoặc sai", "Must be true or false"),
    "array": ("Phải là danh sách", "Must be a list"),
    "object": ("Phải là một nhóm trường (đối tượng)", "Must be an object"),
    "null": ("Phải để trống", "Must be empty"),
}

_FORMATS = {
    "date": ("Ngày không hợp lệ (định dạng YYYY-MM-DD)", "Invalid date (expected YYYY-MM-DD)"),
    "date-time": (
        "Thời điểm không hợp lệ (ISO 8601 có múi giờ, ví dụ 2025-07-15T09:30:00+07:00)",
        "Invalid date and time (ISO 8601 with an offset, e.g. 2025-07-15T09:30:00+07:00)",
    ),
    "datetime-local": (
        "Thời điểm không hợp lệ (ví dụ 2025-07-15T09:30)",
        "Invalid date and time (e.g. 2025-07-15T09:30)",
    ),
    "time": ("Giờ không hợp lệ (định dạng HH:MM)", "Invalid time (expected HH:MM)"),
    "email": ("Địa chỉ email không hợp lệ", "Invalid email address"),
    "cccd": (
        "Số CCCD phải gồm đúng 12 chữ số, 3 số đầu là mã tỉnh từ 001 đến 096",
        "A citizen ID (CCCD) is exactly 12 digits, the first 3 a province code from 001 to 096",
    ),
    "phone-vn": (
        "Số điện thoại không hợp lệ (0 hoặc +84, theo sau là 9 chữ số; số cố định: mã vùng 02x và 8 chữ số)",
        "Invalid Vietnamese phone number (0 or +84 followed by 9 digits; landlines: 02x area code and 8 digits)",
    ),
    "vnd": ("Số tiền phải là số nguyên không âm (đồng)", "The amount must be a non-negative whole number of VND"),
}

# Which error wins when one field has several: the most basic problem first.
_PRIORITY = {
    "required": 0,
    "dependentRequired": 0,
    "additionalProperties": 1,
    "unevaluatedProperties": 1,
    "false": 1,
    "type": 2,
    "const": 3,
    "enum": 3,
    "oneOf": 4,
    "anyOf": 4,
    "format": 5,
}


def _fmt_number(n) -> str:
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    return f"{n:,}".replace(",", ".") if isinstance(n, int) else str(n)


def _join(path) -> str:
    return ".".join(str(p) for p in path)


def _child(path, name) -> str:
    return _join([*path, name]) if path else str(name)


def _field(path) -> str:
    return _join(path) if len(path) else FORM_LEVEL


def _is_choice_list(subschemas) -> bool:
    return bool(subschemas) and all(isinstance(s, dict) and "const" in s for s in subschemas)


def _type_message(expected):
    kinds = [expected] if isinstance(expected, str) else list(expected or [])
    kinds = [k for k in kinds if k != "null"] or kinds
    if len(kinds) == 1 and kinds[0] in _TYPES:
        return _TYPES[kinds[0]]
    if set(kinds) == {"integer", "number"}:
        return _TYPES["number"]
    return INVALID


def _one(error: ValidationError):
    """(field path, (vi, en)) for one error, or several for errors that name several fields."""
    kw, val, path = error.validator, error.validator_value, list(error.absolute_path)
    inst = error.instance
    if kw == "required":
        missing = [name for name in val if isinstance(inst, dict) and name not in inst]
        return [(_child(path, name), REQUIRED) for name in missing] or [(_field(path), REQUIRED)]
    if kw == "dependentRequired":
        out = []
        for name, deps in (val or {}).items():
            if isinstance(inst, dict) and name in inst:
                out += [(_child(path, d), REQUIRED) for d in deps if d not in inst]
        return out or [(_field(path), REQUIRED)]
    if kw in ("additionalProperties", "unevaluatedProperties") and isinstance(inst, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        declared = set(schema.get("properties") or {})
        patterns = list((schema.get("patternProperties") or {}).keys())
        extras = [k for k in inst if k not in declared and not any(search(p, k) for p in patterns)]
        if kw == "unevaluatedProperties":
            extras = extras or list(inst)
        return [(_child(path, k), NOT_ALLOWED) for k in extras] or [(_field(path), NOT_ALLOWED)]
    if kw is False or kw == "false" or error.validator is None:
        return [(_field(path), NOT_ALLOWED)]
    if kw == "type":
        return [(_field(path), _type_message(val))]
    if kw == "format":
        return [(_field(path), _FORMATS.get(val, (f"Không đúng định dạng {val}", f"Not a valid {val}")))]
    if kw == "const":
        if val is True and inst is False:
            return [(_field(path), ("Phải đánh dấu ô này", "This box must be ticked"))]
        return [(_field(path), NOT_A_CHOICE)]
    if kw == "enum":
        return [(_field(path), NOT_A_CHOICE)]
    if kw in ("oneOf", "anyOf"):
        if _is_choice_list(val):
            return [(_field(path), NOT_A_CHOICE)]
        return [(_field(path), INVALID)]
    if kw == "minLength":
        return [(_field(path), (f"Phải có ít nhất {val} ký tự", f"Must be at least {val} characters long"))]
    if kw == "maxLength":
        return [(_field(path), (f"Không được dài quá {val} ký tự", f"Must be at most {val} characters long"))]
    if kw == "minimum":
        n = _fmt_number(val)
        return [(_field(path), (f"Phải lớn hơn hoặc bằng {n}", f"Must be at least {val}"))]
    if kw == "maximum":
        n = _fmt_number(val)
        return [(_field(path), (f"Phải nhỏ hơn hoặc bằng {n}", f"Must be at most {val}"))]
    if kw == "exclusiveMinimum":
        return [(_field(path), (f"Phải lớn hơn {_fmt_number(val)}", f"Must be greater than {val}"))]
    if kw == "exclusiveMaximum":
        return [(_field(path), (f"Phải nhỏ hơn {_fmt_number(val)}", f"Must be less than {val}"))]
    if kw == "multipleOf":
        return [(_field(path), (f"Phải là bội số của {_fmt_number(val)}", f"Must be a multiple of {val}"))]
    if kw == "pattern":
        return [(_field(path), ("Không đúng định dạng yêu cầu", "Does not match the required format"))]
    if kw == "minItems":
        return [(_field(path), (f"Phải có ít nhất {val} mục", f"Must have at least {val} item(s)"))]
    if kw == "maxItems":
        return [(_field(path), (f"Không được quá {val} mục", f"Must have at most {val} item(s)"))]
    if kw == "uniqueItems":
        return [(_field(path), ("Các mục không được trùng nhau", "Items must not repeat"))]
    if kw == "minProperties":
        return [(_field(path), (f"Phải có ít nhất {val} trường", f"Must have at least {val} field(s)"))]
    if kw == "maxProperties":
        return [(_field(path), (f"Không được quá {val} trường", f"Must have at most {val} field(s)"))]
    return [(_field(path), INVALID)]


def field_messages(errors, limit: int = 200) -> dict[str, str]:
    """One message per field ("Vietnamese / English"), the most basic problem of each field winning."""
    best: dict[str, tuple[int, tuple[str, str]]] = {}
    for error in errors:
        prio = _PRIORITY.get(error.validator, 6)
        for field, (vi, en) in _one(error):
            if field not in best or prio < best[field][0]:
                best[field] = (prio, (vi, en))
        if len(best) >= limit:
            break
    return {field: f"{vi} / {en}" for field, (_, (vi, en)) in best.items()}


def message(pair: tuple[str, str]) -> str:
    return f"{pair[0]} / {pair[1]}"
