"""Strict JSON in and out: parsing form files, and checking that submitted data is plain, bounded JSON."""

from __future__ import annotations

import json
import math

from .errors import FORM_LEVEL, FormError, FormValidationError
from .messages import message

#: A form file larger than this is refused.
MAX_FORM_BYTES = 1024 * 1024
#: Submitted data larger than this (JSON-encoded, UTF-8) is refused.
MAX_DATA_BYTES = 256 * 1024
#: Submitted data with more keys than this (all levels together) is refused.
MAX_DATA_KEYS = 2000
#: Nesting deeper than this is refused, in form files and in data.
MAX_DEPTH = 64


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _depth(value) -> int:
    """Nesting depth, computed without recursion (a hostile file cannot blow the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_DEPTH:
            return d
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest


def parse_json_file(filename: str, content) -> object:
    """Bytes of a form file -> a JSON value; FormError naming the file for anything odd."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise FormError.in_file(filename, "nội dung tệp phải là dữ liệu nhị phân (bytes)", "the content must be bytes")
    content = bytes(content)
    if len(content) > MAX_FORM_BYTES:
        raise FormError.in_file(
            filename,
            f"tệp quá lớn ({len(content):,} byte; tối đa {MAX_FORM_BYTES:,})",
            f"the file is too large ({len(content):,} bytes; at most {MAX_FORM_BYTES:,})",
        )
    if not content.strip():
        raise FormError.in_file(filename, "tệp rỗng", "the file is empty")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormError.in_file(
            filename,
            f"tệp không phải văn bản UTF-8 (byte {exc.start})",
            f"the file is not UTF-8 text (byte {exc.start})",
        ) from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Duplicate as exc:
        raise FormError.in_file(
            filename,
            f"khóa '{exc}' xuất hiện hai lần trong cùng một đối tượng",
            f"the key '{exc}' appears twice in the same object",
        ) from None
    except json.JSONDecodeError as exc:
        raise FormError.in_file(
            filename,
            f"JSON không hợp lệ ở dòng {exc.lineno}, cột {exc.colno}: {exc.msg}",
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
        ) from None
    except ValueError as exc:  # NaN / Infinity, too many digits
        raise FormError.in_file(filename, f"JSON không hợp lệ: {exc}", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise FormError.in_file(filename, "cấu trúc lồng nhau quá sâu", "the structure is nested too deeply") from None
    if _depth(value) > MAX_DEPTH:
        raise FormError.in_file(
            filename,
            f"cấu trúc lồng nhau quá sâu (tối đa {MAX_DEPTH} cấp)",
            f"the structure is nested too deeply (at most {MAX_DEPTH} levels)",
        )
    return value


def _path(parts) -> str:
    return ".".join(str(p) for p in parts) or FORM_LEVEL


def plain_json(data, form_key: str | None = None):
    """A copy of `data` made only of dict/list/str/int/float/bool/None (tuples become lists).

    Refuses sets, bytes, NaN, infinities, non-text keys, text containing NUL (PostgreSQL cannot store it) or
    lone surrogates, nesting deeper than MAX_DEPTH, more than MAX_DATA_KEYS keys and more than MAX_DATA_BYTES
    once encoded; each refusal is a FormValidationError naming the field.
    """
    keys = 0

    def bad(parts, vi, en):
        raise FormValidationError({_path(parts): message((vi, en))}, form_key)

    def text_ok(s: str) -> bool:
        if "\x00" in s:
            return False
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True

    def copy(value, parts):
        nonlocal keys
        if len(parts) > MAX_DEPTH:
            bad(
                parts,
                f"Dữ liệu lồng nhau quá sâu (tối đa {MAX_DEPTH} cấp)",
                f"The data is nested too deeply (at most {MAX_DEPTH} levels)",
            )
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if not text_ok(value):
                bad(parts, "Văn bản chứa ký tự không hợp lệ", "The text contains an invalid character")
            return value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                bad(
                    parts,
                    "Phải là một số hữu hạn (không nhận NaN hay vô cực)",
                    "Must be a finite number (NaN and infinity are not JSON)",
                )
            return float(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str) or not text_ok(k):
                    bad(parts, "Tên trường phải là chuỗi ký tự hợp lệ", "Field names must be valid text")
                keys += 1
                if keys > MAX_DATA_KEYS:
                    bad(
                        [],
                        f"Dữ liệu có quá nhiều trường (tối đa {MAX_DATA_KEYS})",
                        f"The data has too many fields (at most {MAX_DATA_KEYS})",
                    )
                out[k] = copy(v, [*parts, k])
            return out
        if isinstance(value, (list, tuple)):
            return [copy(v, [*parts, i]) for i, v in enumerate(value)]
        bad(
            parts,
            f"Giá trị kiểu {type(value).__name__} không phải dữ liệu JSON",
            f"A {type(value).__name__} value is not JSON data",
        )

    result = copy(data, [])
    try:
        size = len(json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8"))
    except ValueError:  # an integer too long to write out
        bad([], "Dữ liệu chứa số quá lớn", "The data contains a number that is too large")
    if size > MAX_DATA_BYTES:
        bad(
            [],
            f"Dữ liệu quá lớn ({size:,} byte; tối đa {MAX_DATA_BYTES:,})",
            f"The data is too large ({size:,} bytes; at most {MAX_DATA_BYTES:,})",
        )
    return result
