"""The periodic report over HTTP (supervisors and admins).

    GET /api/v1/reports/summary?from=YYYY-MM-DD&to=YYYY-MM-DD&agency=&procedure_code=&format=json|csv|xlsx
    GET /api/v1/reports/on-time-by-month?months=12&agency=&procedure_code=

The period is [from 00:00, to + 1 day 00:00) in UTC+7, at most 366 days; a bad date, from > to or a
longer period is a 422 whose `fields` names `from` or `to`. `format=csv` (UTF-8 with BOM) and
`format=xlsx` answer a file with Vietnamese headers. Every figure is defined in engine/reports.py and
docs/reports.md.
"""

from __future__ import annotations

import marshmallow as ma
from flask import Response
from flask_smorest import Blueprint
from marshmallow import validate

from engine import reports
from engine.errors import PermissionDenied

from .auth import authenticate, requires
from .common import DateTimeString, Str, errors
from .context import actor, read_session, services

blp = Blueprint(
    "reports", __name__, url_prefix="/api/v1/reports", description="Báo cáo định kỳ / periodic report (supervisors)"
)
blp.before_request(authenticate)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class SummaryArgs(ma.Schema):
    date_from = ma.fields.String(
        required=True,
        data_key="from",
        validate=validate.Length(max=40),
        metadata={"description": "ngày đầu kỳ / first day, YYYY-MM-DD (UTC+7)", "example": "2026-03-01"},
    )
    date_to = ma.fields.String(
        required=True,
        data_key="to",
        validate=validate.Length(max=40),
        metadata={"description": "ngày cuối kỳ / last day, YYYY-MM-DD (UTC+7), included", "example": "2026-03-31"},
    )
    agency = ma.fields.String(validate=validate.Length(min=1, max=64))
    procedure_code = ma.fields.String(validate=validate.Length(min=1, max=64))
    format = ma.fields.String(load_default="json", validate=validate.OneOf(["json", "csv", "xlsx"]))


class ReceivedSchema(ma.Schema):
    total = ma.fields.Integer(required=True)
    online = ma.fields.Integer(required=True)
    in_person = ma.fields.Integer(required=True)
    postal = ma.fields.Integer(required=True)


class CompletedSchema(ma.Schema):
    total = ma.fields.Integer(required=True)
    early = ma.fields.Integer(required=True, metadata={"description": "trước hạn / before the due day"})
    on_time = ma.fields.Integer(required=True, metadata={"description": "đúng hạn / on the due day"})
    late = ma.fields.Integer(required=True, metadata={"description": "quá hạn / after the due time"})


class InProcessSchema(ma.Schema):
    total = ma.fields.Integer(required=True)
    within = ma.fields.Integer(required=True, metadata={"description": "trong hạn at the period's end"})
    overdue = ma.fields.Integer(required=True, metadata={"description": "quá hạn at the period's end"})


class ShareSchema(ma.Schema):
    count = ma.fields.Integer(required=True)
    of = ma.fields.Integer(required=True)
    percent = ma.fields.Float(allow_none=True, required=True, metadata={"description": "%, null when of = 0"})


class Decision766Schema(ma.Schema):
    submitted_online = ma.fields.Nested(ShareSchema, required=True)
    paid_online = ma.fields.Nested(ShareSchema, required=True)
    electronic_result = ma.fields.Nested(ShareSchema, required=True)


class FiguresSchema(ma.Schema):
    received = ma.fields.Nested(ReceivedSchema, required=True)
    carried_over = ma.fields.Integer(required=True, metadata={"description": "từ kỳ trước chuyển sang"})
    completed = ma.fields.Nested(CompletedSchema, required=True)
    in_process = ma.fields.Nested(InProcessSchema, required=True)
    supplement_requested = ma.fields.Integer(required=True)
    refused = ma.fields.Integer(required=True)
    stopped = ma.fields.Integer(required=True)
    withdrawn = ma.fields.Integer(required=True)
    returned = ma.fields.Integer(required=True)
    on_time_rate = ma.fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "% (early + on time + in process within) / (completed + in process); null if none"},
    )
    avg_processing_hours = ma.fields.Float(
        required=True,
        allow_none=True,
        metadata={"description": "giờ làm việc trung bình / mean working hours to the result, paused time excluded"},
    )
    decision_766 = ma.fields.Nested(
        Decision766Schema,
        required=True,
        metadata={"description": "Quyết định 766: nộp, thanh toán trực tuyến, kết quả điện tử (engine/reports.py)"},
    )


class RowSchema(FiguresSchema):
    agency = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    procedure_name = Str(required=True)


class StepCompletedSchema(ma.Schema):
    total = ma.fields.Integer(required=True)
    on_time = ma.fields.Integer(required=True)
    late = ma.fields.Integer(required=True, metadata={"description": "completed_at > due_at"})


class StepInProcessSchema(ma.Schema):
    total = ma.fields.Integer(required=True, metadata={"description": "open at the period's end"})
    within = ma.fields.Integer(required=True)
    overdue = ma.fields.Integer(required=True)


class StepFiguresSchema(ma.Schema):
    handed_over = ma.fields.Integer(required=True, metadata={"description": "nhận bàn giao trong kỳ / reached it"})
    completed = ma.fields.Nested(StepCompletedSchema, required=True)
    in_process = ma.fields.Nested(StepInProcessSchema, required=True)
    on_time_rate = ma.fields.Float(required=True, allow_none=True)


class StepRowSchema(StepFiguresSchema):
    agency = ma.fields.String(required=True, metadata={"description": "cơ quan thực hiện / performing agency"})
    procedure_code = ma.fields.String(required=True)
    procedure_name = Str(required=True)


class StepsPerformedSchema(ma.Schema):
    rows = ma.fields.List(ma.fields.Nested(StepRowSchema), required=True)
    totals = ma.fields.Nested(StepFiguresSchema, required=True)


class SummarySchema(ma.Schema):
    date_from = ma.fields.String(required=True, data_key="from", metadata={"format": "date"})
    date_to = ma.fields.String(required=True, data_key="to", metadata={"format": "date"})
    period_start = DateTimeString(required=True)
    period_end = DateTimeString(required=True, metadata={"description": "excluded / không tính"})
    agency = Str(required=True)
    procedure_code = Str(required=True)
    rows = ma.fields.List(ma.fields.Nested(RowSchema), required=True)
    totals = ma.fields.Nested(FiguresSchema, required=True)
    steps_performed = ma.fields.Nested(
        StepsPerformedSchema,
        required=True,
        metadata={
            "description": "các bước mỗi cơ quan thực hiện cho hồ sơ của cơ quan khác (liên thông) / the steps each "
            "agency performed for other agencies' dossiers, by performing agency (docs/reports.md)"
        },
    )


@blp.route("/summary", methods=["GET"])
@requires("reports")
@blp.doc(
    summary="Báo cáo tình hình giải quyết hồ sơ / the period report (supervisor)",
    description="Per agency and procedure: received (online / in person / postal), carried over, completed "
    "early / on time / late, in process within / past the deadline at the period's end, supplement "
    "requested, refused, stopped, withdrawn, returned, on-time rate (Decision 766) and mean "
    "processing time in working hours; with totals. `steps_performed`: the steps each agency performed for "
    "other agencies' dossiers (inter-agency procedures), by performing agency (`agency=` keeps one). "
    "`format=csv|xlsx` for a file.",
    responses={
        "200": {
            "description": "the report (JSON), or a CSV / XLSX file with `format`",
            "content": {
                "application/json": {"schema": SummarySchema},
                "text/csv": {"schema": {"type": "string"}},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
@blp.arguments(SummaryArgs(), location="query")
@blp.response(200, SummarySchema)
@errors(blp, 401, 403, 422)
def summary(args):
    a = actor()
    if not a.is_supervisor:
        raise PermissionDenied("Chỉ lãnh đạo giám sát mới xem được báo cáo", "only supervisors may read the report")
    svc = services()
    with read_session() as s:
        report = reports.summary(
            s,
            args["date_from"],
            args["date_to"],
            agency=args.get("agency"),
            procedure_code=args.get("procedure_code"),
            calendar=svc.dossiers.calendar(s),
        )
    fmt = args["format"]
    if fmt == "json":
        report["date_from"], report["date_to"] = report.pop("from"), report.pop("to")
        return report
    name = f"bao-cao-{report['from']}_{report['to']}.{fmt}"
    if fmt == "csv":
        resp = Response(reports.to_csv(report), content_type="text/csv; charset=utf-8")
    else:
        resp = Response(reports.to_xlsx(report), mimetype=XLSX)
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


class MonthlyArgs(ma.Schema):
    months = ma.fields.Integer(
        load_default=12,
        validate=validate.Range(min=1, max=reports.MAX_MONTHS),
        metadata={"description": "số tháng gần nhất, tháng này tính cả / the last N months, this one included"},
    )
    agency = ma.fields.String(validate=validate.Length(min=1, max=64))
    procedure_code = ma.fields.String(validate=validate.Length(min=1, max=64))


class MonthSchema(ma.Schema):
    month = ma.fields.String(required=True, metadata={"example": "2026-03"})
    date_from = ma.fields.String(required=True, data_key="from", metadata={"format": "date"})
    date_to = ma.fields.String(required=True, data_key="to", metadata={"format": "date"})
    completed = ma.fields.Integer(required=True)
    completed_late = ma.fields.Integer(required=True)
    in_process = ma.fields.Integer(required=True, metadata={"description": "at the month's end (or today)"})
    in_process_overdue = ma.fields.Integer(required=True)
    on_time_rate = ma.fields.Float(required=True, allow_none=True, metadata={"description": "%, as in the report"})


class MonthlySchema(ma.Schema):
    agency = Str(required=True)
    procedure_code = Str(required=True)
    months = ma.fields.List(ma.fields.Nested(MonthSchema), required=True, metadata={"description": "oldest first"})


@blp.route("/on-time-by-month", methods=["GET"])
@requires("reports")
@blp.doc(
    summary="Tỷ lệ đúng hạn theo tháng / the on-time rate of each of the last months (supervisor)",
    description="For each calendar month (UTC+7) of the last `months` (12 by default), the period report's "
    "completed, late, in-process and on-time rate over that month, by the report's definitions "
    "(engine/reports.py, docs/reports.md). The supervisors' board draws it.",
)
@blp.arguments(MonthlyArgs(), location="query")
@blp.response(200, MonthlySchema)
@errors(blp, 401, 403, 422)
def on_time_by_month(args):
    with read_session() as s:
        out = reports.on_time_by_month(
            s, args["months"], agency=args.get("agency"), procedure_code=args.get("procedure_code")
        )
    for m in out["months"]:
        m["date_from"], m["date_to"] = m.pop("from"), m.pop("to")
    return out
