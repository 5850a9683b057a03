"""The working calendar over HTTP: due-time calculator (staff), a year's special days (staff), and the
administrators' overrides (admin).

    GET    /api/v1/calendar/due?start=&deadline=&cutoff=&agency=   → {due_at, ...}
    GET    /api/v1/calendar/days?year=&agency=                      → {year, days: [{date, working, name, source}]}
    PUT    /api/v1/calendar/days/{date}   {working, name}           → the override (admin)
    DELETE /api/v1/calendar/days/{date}                             → 204 (admin; 404 if there was none)

A bad date, year, deadline or cut-off is a 422 whose `fields` names it. A change counts at once in this
process (the dossier service's calendar cache is invalidated) and within about a second in other processes
(engine/caches.py); due times
already set are not moved.
"""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate

from engine import calendar_admin

from .auth import authenticate, requires
from .common import Str, errors
from .context import actor, read_session, services

blp = Blueprint(
    "calendar",
    __name__,
    url_prefix="/api/v1/calendar",
    description="Lịch làm việc / working calendar: hạn xử lý, ngày nghỉ, ngày làm bù",
)
blp.before_request(authenticate)


class DueArgs(ma.Schema):
    start = Str(
        metadata={
            "description": "thời điểm tiếp nhận, ISO 8601 (mặc định: bây giờ; không có múi giờ = "
            "UTC+7) / receipt time (default now; no offset = UTC+7)",
            "example": "2026-02-13T10:00:00+07:00",
        }
    )
    deadline = ma.fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={
            "example": "3 working days",
            "description": "'N working days' | 'N working hours' | 'N days' "
            "(or Vietnamese: 'N ngày làm việc', 'N giờ làm việc', 'N ngày')",
        },
    )
    cutoff = Str(validate=validate.Length(max=20), metadata={"example": "15:00"})
    agency = Str(
        validate=validate.Length(max=64),
        metadata={"description": "mã cơ quan: tính theo lịch của cơ quan đó / agency code: its calendar is used"},
    )


class DueSchema(ma.Schema):
    due_at = ma.fields.String(required=True, metadata={"format": "date-time", "example": "2026-02-25T10:00:00+07:00"})
    start = ma.fields.String(required=True, metadata={"format": "date-time"})
    clock_start = Str(
        metadata={"format": "date-time", "description": "when the clock started (working-time deadlines)"}
    )
    deadline = ma.fields.String(required=True)
    deadline_hours = ma.fields.Float(allow_none=True, metadata={"description": "working hours; null for calendar days"})
    cutoff = Str()
    agency = Str()


class YearArgs(ma.Schema):
    year = ma.fields.Integer(
        required=True, validate=validate.Range(min=calendar_admin.MIN_YEAR, max=calendar_admin.MAX_YEAR)
    )
    agency = Str(
        validate=validate.Length(max=64),
        metadata={"description": "mã cơ quan: lịch của cơ quan đó / agency code: that agency's calendar"},
    )


class DaySchema(ma.Schema):
    date = ma.fields.String(required=True, metadata={"format": "date"})
    weekday = ma.fields.String(required=True)
    working = ma.fields.Boolean(required=True, metadata={"description": "true: make-up working day"})
    name = ma.fields.String(required=True)
    source = ma.fields.String(
        required=True,
        metadata={"description": "holidays | swap | override (national) | agency:<code> (an agency's own day)"},
    )
    updated_by = Str()


class DaysSchema(ma.Schema):
    year = ma.fields.Integer(required=True)
    days = ma.fields.List(ma.fields.Nested(DaySchema), required=True)


class DayInSchema(ma.Schema):
    working = ma.fields.Boolean(required=True, metadata={"description": "true: make-up working day; false: day off"})
    name = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=200), metadata={"example": "Nghỉ bù Quốc khánh"}
    )


@blp.route("/due", methods=["GET"])
@requires("staff")
@blp.doc(
    summary="Tính hạn xử lý / compute a due time by the working calendar",
    description="By the convention of docs/deadlines.md: office hours 07:00-11:30 and 13:30-17:00 (UTC+7) on "
    "working days, 1 working day = 8 working hours, clock starts at the next office period, after "
    "the cut-off at the next working day; calendar days end at 17:00 of a working day.",
)
@blp.arguments(DueArgs(), location="query")
@blp.response(200, DueSchema)
@errors(blp, 401, 403, 422)
def due(args):
    with read_session() as s:
        return calendar_admin.compute_due(
            s, args.get("start"), args["deadline"], args.get("cutoff"), args.get("agency")
        )


@blp.route("/days", methods=["GET"])
@requires("staff")
@blp.doc(
    summary="Ngày nghỉ và ngày làm bù của năm / a year's holidays and make-up working days",
    description="Holidays (package `holidays`, VN), the government's swaps and the administrators' overrides, "
    "each with its name and source; plain weekends are not listed.",
)
@blp.arguments(YearArgs(), location="query")
@blp.response(200, DaysSchema)
@errors(blp, 401, 403, 422)
def days(args):
    with read_session() as s:
        return {"year": args["year"], "days": calendar_admin.list_days(s, args["year"], args.get("agency"))}


@blp.route("/days/<day>", methods=["PUT"])
@requires("admin")
@blp.doc(summary="Thêm/sửa ngày nghỉ hoặc ngày làm bù / add or change an override (admin)")
@blp.arguments(DayInSchema())
@blp.response(200, DaySchema)
@errors(blp, 401, 403, 422)
def put_day(body, day):
    svc = services()
    return calendar_admin.put_day(svc.db, actor(), day, body["working"], body["name"], svc.dossiers)


@blp.route("/days/<day>", methods=["DELETE"])
@requires("admin")
@blp.doc(summary="Xoá điều chỉnh của một ngày / remove an override (admin)")
@blp.response(204)
@errors(blp, 401, 403, 404, 422)
def delete_day(day):
    svc = services()
    calendar_admin.remove_day(svc.db, actor(), day, svc.dossiers)
    return None
