"""Errors as `application/problem+json` (RFC 9457), Vietnamese first and English second.

Every error body has the same shape (`ProblemSchema`):

    {"type": "urn:motcua:problem:<code>", "title": "Unprocessable Content", "status": 422,
     "code": "invalid", "detail": "<Vietnamese> / <English>", "message_vi": "...", "message_en": "...",
     "fields": {"applicant.name": "Thiếu trường bắt buộc / Missing data for required field."},
     "problems": [{"element": "Task_1", "message_vi": "...", "message_en": "..."}]}

`fields` (per-field messages) appears on 422s about request data; `problems` (each naming the BPMN element
or the form file) on a refused deployment. Domain errors (`engine.errors.MotcuaError`) keep their status;
request-parsing errors of webargs/marshmallow become 422 with `fields`; anything unexpected is a 500 whose
body says nothing about the internals (the traceback goes to the log).
"""

from __future__ import annotations

import http
import json
import logging
import re

import marshmallow as ma
from flask import Response, g, has_request_context
from sqlalchemy.exc import TimeoutError as SqlaTimeout
from werkzeug.exceptions import HTTPException

from engine.errors import MotcuaError

PROBLEM = "application/problem+json"
log = logging.getLogger("motcua.api")

# Vietnamese for the HTTP statuses this API answers with.
STATUS_VI = {
    400: "Yêu cầu không hợp lệ",
    401: "Chưa xác thực",
    403: "Không có quyền",
    404: "Không tìm thấy",
    405: "Phương thức không được hỗ trợ",
    406: "Không chấp nhận được định dạng",
    409: "Xung đột",
    413: "Dữ liệu quá lớn",
    415: "Kiểu nội dung không được hỗ trợ",
    422: "Dữ liệu không hợp lệ",
    429: "Quá nhiều yêu cầu",
    500: "Lỗi máy chủ",
    503: "Dịch vụ tạm thời không sẵn sàng",
}


class ProblemItemSchema(ma.Schema):
    """One problem of a refused procedure or form file."""

    element = ma.fields.String(allow_none=True, metadata={"description": "id của phần tử BPMN / BPMN element id"})
    file = ma.fields.String(allow_none=True, metadata={"description": "tệp biểu mẫu / form file"})
    path = ma.fields.String(allow_none=True, metadata={"description": "vị trí trong tệp / place in the file"})
    message_vi = ma.fields.String(required=True)
    message_en = ma.fields.String(required=True)


class ProblemSchema(ma.Schema):
    """An error (RFC 9457 problem details), Vietnamese first, English second."""

    type = ma.fields.String(required=True, metadata={"example": "urn:motcua:problem:not_found"})
    title = ma.fields.String(required=True, metadata={"example": "Not Found"})
    status = ma.fields.Integer(required=True, metadata={"example": 404})
    code = ma.fields.String(required=True, metadata={"example": "not_found"})
    detail = ma.fields.String(required=True, metadata={"description": "message_vi / message_en"})
    message_vi = ma.fields.String(required=True)
    message_en = ma.fields.String(required=True)
    field_errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        data_key="fields",
        metadata={"description": "per-field messages: path → 'Tiếng Việt / English'"},
    )
    problems = ma.fields.List(
        ma.fields.Nested(ProblemItemSchema),
        metadata={"description": "every problem of a refused procedure or form file"},
    )
    retry_after = ma.fields.Integer(metadata={"description": "seconds to wait (429, 503)"})
    request_id = ma.fields.String(
        metadata={"description": "the request's id, as in the X-Request-Id header and the logs (docs/operations.md)"}
    )


def problem(
    status: int,
    code: str,
    message_vi: str,
    message_en: str,
    *,
    fields: dict | None = None,
    problems: list | None = None,
    headers: dict | None = None,
    **extra,
) -> Response:
    try:
        title = http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {
        "type": f"urn:motcua:problem:{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": f"{message_vi} / {message_en}",
        "message_vi": message_vi,
        "message_en": message_en,
    }
    if fields:
        body["fields"] = {str(k): str(v) for k, v in fields.items()}
    if problems:
        body["problems"] = [_problem_item(p) for p in problems]
    body.update(extra)
    if has_request_context() and (rid := getattr(g, "request_id", None)):
        body["request_id"] = rid
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _problem_item(p) -> dict:
    if not isinstance(p, dict):
        return {"element": None, "message_vi": str(p), "message_en": str(p)}
    out = {k: p.get(k) for k in ("element", "file", "path") if k in p}
    out["message_vi"] = str(p.get("message_vi") or p.get("message") or "")
    out["message_en"] = str(p.get("message_en") or p.get("message") or out["message_vi"])
    return out


def from_motcua(exc: MotcuaError) -> Response:
    fields = problems = None
    details = exc.details
    if isinstance(details, dict):
        if isinstance(details.get("fields"), dict):
            fields = details["fields"]
        if isinstance(details.get("problems"), list):
            problems = details["problems"]
    elif isinstance(details, list):
        problems = details
    headers = {}
    extra = {}
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        headers["Retry-After"] = str(int(retry))
        extra["retry_after"] = int(retry)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="motcua"'
    return problem(
        exc.status, exc.code, exc.message_vi, exc.message_en, fields=fields, problems=problems, headers=headers, **extra
    )


# -- marshmallow / webargs messages in Vietnamese ---------------------------------------------------------

_VI = [
    (r"Missing data for required field\.", "Thiếu trường bắt buộc"),
    (r"Unknown field\.", "Trường không được phép"),
    (r"Field may not be null\.", "Không được để trống (null)"),
    (r"Not a valid string\.", "Phải là chuỗi ký tự"),
    (r"Not a valid integer\.", "Phải là số nguyên"),
    (r"Not a valid number\.", "Phải là số"),
    (r"Not a valid boolean\.", "Phải là true hoặc false"),
    (r"Not a valid (aware )?datetime\.", "Phải là thời điểm ISO 8601 có múi giờ, ví dụ 2026-02-13T10:00:00+07:00"),
    (r"Not a naive datetime\.|Not an aware datetime\.", "Phải là thời điểm ISO 8601 có múi giờ"),
    (r"Not a valid mapping type\.", "Phải là một đối tượng JSON"),
    (r"Not a valid list\.", "Phải là một danh sách"),
    (r"Invalid input type\.", "Kiểu dữ liệu không hợp lệ (cần một đối tượng JSON)"),
    (r"Invalid JSON body\.", "Nội dung JSON không hợp lệ"),
    (r"Must be one of: (.*)\.", r"Phải là một trong: \1"),
    (r"Must be greater than or equal to (\S+) and less than or equal to (\S+)\.", r"Phải từ \1 đến \2"),
    (r"Must be greater than or equal to (\S+)\.", r"Phải ≥ \1"),
    (r"Must be less than or equal to (\S+)\.", r"Phải ≤ \1"),
    (r"Length must be between (\d+) and (\d+)\.", r"Độ dài phải từ \1 đến \2 ký tự"),
    (r"Shorter than minimum length (\d+)\.", r"Phải có ít nhất \1 ký tự"),
    (r"Longer than maximum length (\d+)\.", r"Tối đa \1 ký tự"),
]
_VI = [(re.compile("^" + p + "$"), r) for p, r in _VI]


def vi_en(message: str) -> str:
    """'Vietnamese / English' for a marshmallow message (already bilingual messages pass through)."""
    message = str(message)
    if " / " in message:
        return message
    for pattern, repl in _VI:
        if pattern.match(message):
            return f"{pattern.sub(repl, message)} / {message}"
    return f"Giá trị không hợp lệ: {message} / {message}"


def flatten_messages(messages, prefix: str = "") -> dict[str, str]:
    """webargs' nested `{location: {field: {sub: [msg]}}}` as `{"field.sub": "VI / EN"}`."""
    out: dict[str, str] = {}
    if isinstance(messages, dict):
        for k, v in messages.items():
            key = "_form" if k == ma.decorators.VALIDATES_SCHEMA or k == "_schema" else str(k)
            path = f"{prefix}.{key}" if prefix and key != "_form" else (prefix or key)
            out.update(flatten_messages(v, path))
    elif isinstance(messages, (list, tuple)):
        if all(isinstance(m, str) for m in messages):
            out[prefix or "_form"] = "; ".join(vi_en(m) for m in messages)
        else:
            for m in messages:
                out.update(flatten_messages(m, prefix))
    else:
        out[prefix or "_form"] = vi_en(str(messages))
    return out


def from_http_exception(error: HTTPException) -> Response:
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") or data.get("errors")
    if messages is not None and error.code in (400, 422):
        # Request data refused by the schemas (webargs puts them under their location: json, query, ...).
        fields = {}
        for _location, msgs in messages.items() if isinstance(messages, dict) else [("", messages)]:
            fields.update(flatten_messages(msgs))
        return problem(
            422,
            "invalid",
            "Dữ liệu gửi lên không hợp lệ",
            "the request data is invalid",
            fields=fields,
            headers=data.get("headers"),
        )
    code = error.code or 500
    vi = STATUS_VI.get(code, "Lỗi")
    en = (error.description or error.name or "error").strip()
    if code == 413:
        vi, en = "Dữ liệu gửi lên quá lớn", "the request body is too large"
    elif code == 404:
        vi, en = "Không tìm thấy địa chỉ này", "no such resource"
    elif code == 405:
        vi, en = "Phương thức không được hỗ trợ cho địa chỉ này", "method not allowed on this resource"
    headers = dict(data.get("headers") or {})
    if code == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
    snake = re.sub(r"[^a-z0-9]+", "_", (error.name or "error").lower()).strip("_")
    return problem(code, snake, vi, en, headers=headers)


def from_workflow_error(exc: Exception) -> Response:
    """SpiffWorkflow stopped inside a step (e.g. a gateway condition reads a field the data lacks). The unit of
    work was rolled back, so nothing changed: a 422 naming the problem, not a 500. The engine already turns
    the step errors it knows into WorkflowDataError; this is the fallback for any other path.)"""
    text = str(exc).strip() or type(exc).__name__
    vi, _, en = text.partition(" / ") if " / " in text else (text, "", text)
    return problem(
        422,
        "workflow_error",
        f"Quy trình không thể tiếp tục với dữ liệu này: {vi}",
        f"the process cannot continue with this data: {en or vi}",
    )


def from_database_error(exc: Exception) -> Response:
    """The database cannot be reached (restarting, network, pool exhausted): 503 with Retry-After, quickly,
    never a 500 nor a hang. Nothing was committed: the client retries (with its Idempotency-Key). Any other
    database error is a fault of ours: 500."""
    if isinstance(exc, SqlaTimeout) or getattr(exc, "connection_invalidated", False) or _unreachable(exc):
        log.warning("database unavailable: %s", type(getattr(exc, "orig", None) or exc).__name__)
        return problem(
            503,
            "database_unavailable",
            "Cơ sở dữ liệu tạm thời không sẵn sàng; vui lòng thử lại sau giây lát",
            "the database is temporarily unavailable; retry in a moment",
            headers={"Retry-After": "2"},
            retry_after=2,
        )
    return internal_error(exc)


_UNREACHABLE = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "connection timeout",
    "timeout expired",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "no connection to the server",
    "consuming input failed",
    "connection to server",
    "ssl connection has been closed",
    "database is locked",
)


def _unreachable(exc: Exception) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(t in text for t in _UNREACHABLE)


def internal_error(exc: Exception) -> Response:
    log.exception("unhandled error: %s", exc)
    return problem(500, "internal_error", "Lỗi máy chủ; sự cố đã được ghi lại", "internal server error; it was logged")
