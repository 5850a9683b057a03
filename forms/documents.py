"""The documents checklist of an intake form (thành phần hồ sơ), declared in the schema as `x-documents`:

    "x-documents": [
      {"key": "to_khai", "name": "Tờ khai đăng ký khai sinh", "required": true,
       "accept": ["application/pdf", "image/jpeg", "image/png"], "max_bytes": 10485760}
    ]

`key` is an identifier (letters, digits, `_`, `-`, `.`), unique in the list; `name` is what people read
(Vietnamese); optional: `name_en`, `description`, `required` (default false), `accept` (default PDF, JPEG and
PNG: the types whose content `sniff_content_type` can verify, so only those are allowed) and `max_bytes`
(default 10 MiB, at most 100 MiB). Keys starting with `x-` are kept for front-ends; any other key is refused,
so a typo such as `requried` cannot silently make a document optional.
"""

from __future__ import annotations

import copy
import re

from .errors import FormError
from .files import ACCEPTABLE_TYPES, normalize_content_type, safe_filename, sniff_content_type

DOCUMENTS_KEYWORD = "x-documents"
DEFAULT_ACCEPT = ["application/pdf", "image/jpeg", "image/png"]
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
LIMIT_MAX_BYTES = 100 * 1024 * 1024
_KNOWN = {"key", "name", "name_en", "description", "required", "accept", "max_bytes"}
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def normalize_documents(raw, filename: str | None = None) -> list[dict]:
    """Check the shape of an `x-documents` list and fill in its defaults; FormError naming the entry."""
    if raw is None:
        return []

    def bad(where, vi, en):
        raise FormError.in_file(filename, vi, en, f"{DOCUMENTS_KEYWORD}{where}")

    if not isinstance(raw, list):
        bad("", "danh sách giấy tờ phải là một mảng", "the documents checklist must be an array")
    out, seen = [], set()
    for i, doc in enumerate(raw):
        where = f"[{i}]"
        if not isinstance(doc, dict):
            bad(where, "mỗi giấy tờ phải là một đối tượng", "each document must be an object")
        unknown = sorted(k for k in doc if k not in _KNOWN and not str(k).startswith("x-"))
        if unknown:
            bad(
                where,
                f"thuộc tính không được hỗ trợ: {', '.join(unknown)}",
                f"unsupported properties: {', '.join(unknown)}",
            )
        key = doc.get("key")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            bad(
                where,
                "thiếu 'key' hoặc 'key' không hợp lệ (chữ, số, _ - .)",
                "'key' is missing or invalid (letters, digits, _ - .)",
            )
        if key in seen:
            bad(where, f"giấy tờ '{key}' khai báo hai lần", f"document '{key}' is declared twice")
        seen.add(key)
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            bad(where, f"giấy tờ '{key}' thiếu tên ('name')", f"document '{key}' has no 'name'")
        for text_key in ("name_en", "description"):
            if text_key in doc and not isinstance(doc[text_key], str):
                bad(where, f"'{text_key}' phải là chuỗi ký tự", f"'{text_key}' must be a string")
        required = doc.get("required", False)
        if not isinstance(required, bool):
            bad(where, "'required' phải là true hoặc false", "'required' must be true or false")
        accept = doc.get("accept", DEFAULT_ACCEPT)
        if not isinstance(accept, list) or not accept or not all(isinstance(a, str) for a in accept):
            bad(
                where,
                "'accept' phải là danh sách kiểu tệp (MIME) không rỗng",
                "'accept' must be a non-empty list of MIME types",
            )
        normalized = []
        for a in accept:
            t = normalize_content_type(a)
            if t not in ACCEPTABLE_TYPES:
                bad(
                    where,
                    f"kiểu tệp '{a}' không được hỗ trợ (chỉ nhận {', '.join(sorted(ACCEPTABLE_TYPES))})",
                    f"file type '{a}' is not supported (only {', '.join(sorted(ACCEPTABLE_TYPES))})",
                )
            if t not in normalized:
                normalized.append(t)
        max_bytes = doc.get("max_bytes", DEFAULT_MAX_BYTES)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or not 0 < max_bytes <= LIMIT_MAX_BYTES:
            bad(
                where,
                f"'max_bytes' phải là số nguyên dương, tối đa {LIMIT_MAX_BYTES}",
                f"'max_bytes' must be a positive integer, at most {LIMIT_MAX_BYTES}",
            )
        entry = copy.deepcopy(doc)
        entry.update(
            {"key": key, "name": name.strip(), "required": required, "accept": normalized, "max_bytes": max_bytes}
        )
        out.append(entry)
    return out


def _documents_of(form) -> list[dict]:
    if hasattr(form, "documents"):
        return form.documents()
    if isinstance(form, dict):  # Form.to_dict() output, or a bare schema
        inner = form.get("schema")
        schema = inner if isinstance(inner, dict) else form
        return normalize_documents(schema.get(DOCUMENTS_KEYWORD))
    return normalize_documents(form)


def check_documents(form, provided) -> list[str]:
    """One message ("Vietnamese / English") per required document of `form` missing from `provided` (keys)."""
    provided = set(provided or ())
    missing = []
    for doc in _documents_of(form):
        if doc["required"] and doc["key"] not in provided:
            en_name = doc.get("name_en") or doc["name"]
            missing.append(
                f"Thiếu giấy tờ bắt buộc: {doc['name']} ({doc['key']}) / "
                f"Missing required document: {en_name} ({doc['key']})"
            )
    return missing


def check_attachment(document: dict, filename: str, declared: str | None, head: bytes, size: int) -> tuple[str, str]:
    """One uploaded file for one checklist entry: (safe file name, verified content type), or FormError.

    `head` is the first bytes of the file (a few KB is plenty), `size` its full length.
    """
    name = safe_filename(filename)
    label = document.get("name") or document.get("key")
    if not isinstance(size, int) or size <= 0:
        raise FormError(f"Tệp '{name}' ({label}) rỗng", f"file '{name}' ({label}) is empty")
    limit = document.get("max_bytes", DEFAULT_MAX_BYTES)
    if size > limit:
        raise FormError(
            f"Tệp '{name}' ({label}) quá lớn: {size:,} byte, tối đa {limit:,}",
            f"file '{name}' ({label}) is too large: {size:,} bytes, at most {limit:,}",
        )
    content_type = sniff_content_type(head, declared)
    accept = document.get("accept", DEFAULT_ACCEPT)
    if content_type not in accept:
        raise FormError(
            f"Tệp '{name}' ({label}) có kiểu {content_type}, không được nhận (chỉ nhận {', '.join(accept)})",
            f"file '{name}' ({label}) is {content_type}, which is not accepted (only {', '.join(accept)})",
        )
    return name, content_type
