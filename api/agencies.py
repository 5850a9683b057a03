"""Agencies and their calendars over HTTP (administrators only; engine/agencies.py decides everything).

    GET /api/v1/agencies?page=&per_page=&parent=&q=   → a page of agencies by code
    GET /api/v1/agencies/{code}                        → one agency, its own days, the office hours it works by
    PUT /api/v1/agencies/{code}  {name, office_hours?, days?}   → created or replaced

The permission is checked before the body or the query is read (403 whatever they hold); a bad code, office
hours or day is a 422 whose `fields` names it. A change counts for due times computed after it; due times
already set are not moved (docs/deadlines.md, "Agencies and their calendars").
"""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate

from engine import agencies

from .auth import authenticate, requires
from .common import PageSchema, PagingArgs, Str, errors
from .context import actor, services

blp = Blueprint(
    "agencies",
    __name__,
    url_prefix="/api/v1/agencies",
    description="Cơ quan và lịch làm việc của cơ quan / agencies and their working calendars (admin)",
)
blp.before_request(authenticate)

HOURS_DOC = {
    "description": "giờ làm việc: danh sách [bắt đầu, kết thúc] hoặc chuỗi '07:00-11:30 13:30-17:00'; "
    "null = theo cơ quan cấp trên / office periods, or null for the parent's",
    "example": [["07:00", "11:30"], ["13:30", "17:00"]],
}


class ListArgs(PagingArgs):
    parent = Str(validate=validate.Length(max=64), metadata={"description": "mã cơ quan cấp trên / parent code"})
    q = Str(validate=validate.Length(max=100), metadata={"description": "tìm theo mã hoặc tên / code or name"})


class AgencySchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "000.31.14.H56"})
    name = ma.fields.String(required=True)
    level = ma.fields.Integer(required=True, metadata={"description": "1 tỉnh, 2 sở/huyện, 3 xã, 4 đơn vị"})
    level_name = ma.fields.String(required=True)
    parent = Str()
    office_hours = ma.fields.Raw(allow_none=True, metadata=HOURS_DOC)
    updated_by = Str()
    updated_at = Str(metadata={"format": "date-time"})


class AgencyPageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(AgencySchema), required=True)


class AgencyDaySchema(ma.Schema):
    date = ma.fields.String(required=True, metadata={"format": "date", "example": "2026-03-10"})
    weekday = ma.fields.String()
    working = ma.fields.Boolean(required=True, metadata={"description": "true: ngày làm bù / make-up working day"})
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))


class AgencyDetailSchema(AgencySchema):
    effective_office_hours = ma.fields.Raw(required=True, metadata={"description": "the hours it works by"})
    office_hours_from = Str(metadata={"description": "whose hours those are (null: the national default)"})
    days = ma.fields.List(ma.fields.Nested(AgencyDaySchema), required=True)


class AgencyInSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=300))
    office_hours = ma.fields.Raw(allow_none=True, load_default=None, metadata=HOURS_DOC)
    days = ma.fields.List(
        ma.fields.Dict(),
        load_default=list,
        metadata={
            "description": "các ngày riêng của cơ quan (thay toàn bộ) / the agency's own days (replaced): "
            "[{date, working, name}]",
            "example": [{"date": "2026-03-10", "working": False, "name": "Lễ hội địa phương"}],
        },
    )


@blp.route("", methods=["GET"])
@requires("admin")
@blp.doc(summary="Danh sách cơ quan / list agencies (admin)")
@blp.arguments(ListArgs(), location="query")
@blp.response(200, AgencyPageSchema)
@errors(blp, 401, 403, 422)
def list_agencies(args):
    return agencies.list_agencies(
        services().db, actor(), args["page"], args["per_page"], args.get("parent"), args.get("q")
    )


@blp.route("/<code>", methods=["GET"])
@requires("admin")
@blp.doc(summary="Một cơ quan và lịch của nó / one agency and its calendar (admin)")
@blp.response(200, AgencyDetailSchema)
@errors(blp, 401, 403, 404)
def get_agency(code):
    return agencies.get_agency(services().db, actor(), code)


@blp.route("/<code>", methods=["PUT"])
@requires("admin")
@blp.doc(
    summary="Thêm/sửa cơ quan, giờ làm việc và ngày riêng / create or replace an agency (admin)",
    description="Office hours and days are inherited downwards (province → department or district → commune); "
    "a commune follows its district unless it says otherwise. See docs/deadlines.md.",
)
@blp.arguments(AgencyInSchema())
@blp.response(200, AgencyDetailSchema)
@errors(blp, 401, 403, 422)
def put_agency(body, code):
    svc = services()
    return agencies.put_agency(svc.db, actor(), code, body, svc.dossiers)
