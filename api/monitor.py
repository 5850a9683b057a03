"""Supervisors' overdue monitor over HTTP.

    GET /api/v1/monitor/overdue?agency=&procedure_code=&page=&tasks_page=&per_page=
    GET /api/v1/monitor/due-soon?agency=&procedure_code=&page=&per_page=

Supervisors and admins see every agency (and may filter by one); other staff see their own agency only
(asking for another one is 403). Overdue dossiers and overdue steps, the most overdue first, each with
how late it is (wall-clock and working hours) and who holds it, plus counts by agency and by procedure
(overdue, and due within the next 24 hours). The rules are in engine/monitor.py and docs/reports.md.
"""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate

from engine import monitor

from .auth import authenticate, requires
from .common import DateTimeString, PagingArgs, Str, errors
from .context import actor, read_session, services

blp = Blueprint(
    "monitor",
    __name__,
    url_prefix="/api/v1/monitor",
    description="Giám sát hồ sơ quá hạn / overdue monitoring (supervisors; staff: own agency)",
)
blp.before_request(authenticate)


class OverdueArgs(PagingArgs):
    agency = ma.fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "mã cơ quan / agency id (staff: only their own)"},
    )
    procedure_code = ma.fields.String(validate=validate.Length(min=1, max=64))
    tasks_page = ma.fields.Integer(
        validate=validate.Range(min=1, max=1_000_000),
        metadata={"description": "trang của danh sách bước quá hạn (mặc định = page) / the steps' page"},
    )


class DueSoonArgs(PagingArgs):
    agency = ma.fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "mã cơ quan / agency id (staff: only their own)"},
    )
    procedure_code = ma.fields.String(validate=validate.Length(min=1, max=64))


class HolderSchema(ma.Schema):
    task_id = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    claimed_by = Str(required=True, metadata={"description": "người đang giữ / who claimed it"})
    assignee = Str(required=True)
    roles = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "vai trò được giao"})
    due_at = DateTimeString(required=True)


class Lateness(ma.Schema):
    hours_late = ma.fields.Float(required=True, metadata={"description": "giờ trễ (đồng hồ) / wall-clock hours"})
    working_hours_late = ma.fields.Float(
        required=True,
        metadata={"description": "giờ làm việc trễ / working hours late (office hours of the working calendar)"},
    )


class OverdueDossierSchema(Lateness):
    code = ma.fields.String(required=True)
    agency = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    status_code = ma.fields.Integer(required=True)
    status_label = ma.fields.String(required=True)
    channel = ma.fields.Integer(required=True, metadata={"description": "1 trực tiếp, 2 trực tuyến, 3 bưu chính"})
    received_at = DateTimeString(required=True)
    due_at = DateTimeString(required=True)
    original_due_at = DateTimeString(required=True)
    extended = ma.fields.Boolean(required=True, metadata={"description": "đã hẹn lại / has a new appointment date"})
    supplement_count = ma.fields.Integer(required=True)
    held_by = ma.fields.List(
        ma.fields.Nested(HolderSchema),
        required=True,
        metadata={"description": "các bước đang mở / its ready steps and who holds them"},
    )


class OverdueTaskSchema(Lateness):
    id = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    spec_name = ma.fields.String(required=True)
    dossier_code = ma.fields.String(required=True)
    agency = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    claimed_by = Str(required=True)
    claimed_at = DateTimeString(required=True)
    assignee = Str(required=True)
    roles = ma.fields.List(ma.fields.String(), required=True)
    created_at = DateTimeString(required=True)
    due_at = DateTimeString(required=True)
    late_flagged_at = DateTimeString(
        metadata={"description": "khi bước bị báo quá hạn / when the step was flagged late and its holders told"}
    )


class CountSchema(ma.Schema):
    overdue_dossiers = ma.fields.Integer(required=True)
    due_soon_dossiers = ma.fields.Integer(required=True, metadata={"description": "đến hạn trong 24 giờ tới"})
    overdue_tasks = ma.fields.Integer(required=True)
    due_soon_tasks = ma.fields.Integer(required=True)


class AgencyCountSchema(CountSchema):
    agency = ma.fields.String(required=True)


class ProcedureCountSchema(CountSchema):
    procedure_code = ma.fields.String(required=True)


class CountsSchema(ma.Schema):
    now = DateTimeString(required=True)
    due_soon_hours = ma.fields.Integer(required=True)
    by_agency = ma.fields.List(ma.fields.Nested(AgencyCountSchema), required=True)
    by_procedure = ma.fields.List(ma.fields.Nested(ProcedureCountSchema), required=True)
    totals = ma.fields.Nested(CountSchema, required=True)


class DueSoonDossierSchema(ma.Schema):
    code = ma.fields.String(required=True)
    agency = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    status_label = ma.fields.String(required=True)
    applicant_name = Str(required=True)
    received_at = DateTimeString(required=True)
    due_at = DateTimeString(required=True)
    hours_left = ma.fields.Float(required=True, metadata={"description": "giờ còn lại (đồng hồ) / wall-clock hours"})
    held_by = ma.fields.List(ma.fields.Nested(HolderSchema), required=True)


class DueSoonSchema(ma.Schema):
    now = DateTimeString(required=True)
    due_soon_hours = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    items = ma.fields.List(ma.fields.Nested(DueSoonDossierSchema), required=True)


class OverdueSchema(ma.Schema):
    now = DateTimeString(required=True)
    page = ma.fields.Integer(required=True)
    tasks_page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total_dossiers = ma.fields.Integer(required=True, metadata={"description": "tổng hồ sơ quá hạn / for paging"})
    total_tasks = ma.fields.Integer(required=True, metadata={"description": "tổng bước quá hạn / for paging"})
    dossiers = ma.fields.List(ma.fields.Nested(OverdueDossierSchema), required=True)
    tasks = ma.fields.List(ma.fields.Nested(OverdueTaskSchema), required=True)
    counts = ma.fields.Nested(CountsSchema, required=True)


@blp.route("/overdue", methods=["GET"])
@requires("supervise")
@blp.doc(
    summary="Hồ sơ và bước quá hạn / overdue dossiers and steps, the most overdue first",
    description="Overdue dossiers (open, no result yet, not paused, due time passed) and overdue steps (ready, "
    "due time passed, dossier not paused), oldest due time first, one page of each; how late "
    "(wall-clock and working hours), who holds them; counts by agency and procedure, overdue and "
    "due within 24 hours. Supervisors: every agency; other staff: their own agency only.",
)
@blp.arguments(OverdueArgs(), location="query")
@blp.response(200, OverdueSchema)
@errors(blp, 401, 403, 422)
def overdue(args):
    svc = services()
    with read_session() as s:
        return monitor.overdue(
            s,
            actor(),
            lambda agency: svc.dossiers.calendar(s, agency),  # each row on its own agency's calendar
            agency=args.get("agency"),
            procedure_code=args.get("procedure_code"),
            page=args["page"],
            per_page=args["per_page"],
            tasks_page=args.get("tasks_page"),
        )


@blp.route("/due-soon", methods=["GET"])
@requires("supervise")
@blp.doc(
    summary="Hồ sơ sắp đến hạn / dossiers due within 24 hours, the soonest first",
    description="One page of the open, not paused dossiers not overdue yet whose due time falls within the "
    "next 24 hours (the board's 'due within 24 hours' count), with their ready steps and who holds "
    "them. Supervisors: every agency; other staff: their own agency only.",
)
@blp.arguments(DueSoonArgs(), location="query")
@blp.response(200, DueSoonSchema)
@errors(blp, 401, 403, 422)
def due_soon(args):
    with read_session() as s:
        return monitor.due_soon_page(
            s,
            actor(),
            agency=args.get("agency"),
            procedure_code=args.get("procedure_code"),
            page=args["page"],
            per_page=args["per_page"],
        )
