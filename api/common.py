"""Shared pieces of the blueprints: error documentation, paging arguments, schema helpers.

`errors(*codes)` documents the error responses of an operation (each as application/problem+json with
`ProblemSchema`), so that the OpenAPI document lists every status an operation can answer with and nothing
else (there is no catch-all `default` response).
"""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate

from engine.paging import MAX_PER_PAGE

from .errors import PROBLEM, ProblemSchema

DESCRIPTIONS = {
    400: "Yêu cầu không hợp lệ / Bad request",
    401: "Chưa đăng nhập hoặc token hết hạn / Missing, invalid or expired token",
    403: "Không có vai trò hoặc không cùng cơ quan / Wrong role or agency",
    404: "Không tìm thấy / Not found",
    409: "Xung đột: đã hoàn thành, người khác đang giữ, hoặc hồ sơ đã thay đổi / Conflict",
    413: "Tệp quá lớn / Upload too large",
    422: "Dữ liệu không hợp lệ, kèm lỗi từng trường / Invalid data, with per-field messages",
    429: "Quá nhiều yêu cầu / Rate limited",
    503: "Cơ sở dữ liệu không trả lời / Database unavailable",
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "giây cần chờ / seconds to wait",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}


def errors(blp: Blueprint, *codes: int):
    """Decorator: document the given error statuses of one operation."""

    def decorator(func):
        documented = func
        for code in sorted(codes, reverse=True):
            headers = RETRY_AFTER if code == 429 else WWW_AUTHENTICATE if code == 401 else None
            documented = blp.alt_response(
                code, schema=ProblemSchema, content_type=PROBLEM, description=DESCRIPTIONS[code], headers=headers
            )(documented)
        # flask-smorest's alt_response only documents, but through a wrapper per status that every request
        # then called through (five calls, each looking up the app and whether the view is a coroutine): the
        # view keeps the document and is called directly
        func._apidoc = documented._apidoc
        return func

    return decorator


class PagingArgs(ma.Schema):
    page = ma.fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "trang, từ 1 / page number, from 1"},
    )
    per_page = ma.fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=MAX_PER_PAGE),
        metadata={"description": f"số dòng mỗi trang, tối đa {MAX_PER_PAGE} / page size"},
    )


class PageSchema(ma.Schema):
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True, metadata={"description": "tổng số dòng khớp bộ lọc / rows matching"})


def DateTimeString(**kw):
    """An ISO 8601 time with offset, already formatted by the engine (UTC+7)."""
    kw.setdefault("allow_none", True)
    return ma.fields.String(metadata={"format": "date-time", **kw.pop("metadata", {})}, **kw)


def Str(**kw):
    kw.setdefault("allow_none", True)
    return ma.fields.String(**kw)
