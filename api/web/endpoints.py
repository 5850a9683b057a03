"""The few endpoints the web pages need beyond the core API (documented in the OpenAPI document):

- `GET  /api/v1/procedures/{code}/counts`   ready tasks per BPMN element (live counts on the diagram view);
- `GET  /api/v1/dossiers/{code}/steps`      every step with due and actual times and its holder, the documents
                                            checklist and the procedure's facts (control slip, receipt);
- `POST /api/v1/procedures/validate`        the deploy checks without deploying: always 200 with
                                            `{valid, problems, warnings}` (the modeler marks the elements).
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask_smorest import Blueprint

from engine import queries
from engine.errors import InvalidInput, TooLarge

from ..auth import authenticate, requires
from ..common import Str, errors
from ..context import actor, read_session, services

blp = Blueprint(
    "web_api",
    __name__,
    url_prefix="/api/v1",
    description="Phục vụ trang web / for the web pages: counts per step, steps of a dossier, "
    "validation without deployment",
)
blp.before_request(authenticate)


class WebStepCountSchema(ma.Schema):
    ready = ma.fields.Integer(required=True, metadata={"description": "việc đang chờ / ready tasks"})
    overdue = ma.fields.Integer(required=True, metadata={"description": "trong đó quá hạn bước / of which overdue"})
    claimed = ma.fields.Integer(required=True, metadata={"description": "đã có người nhận / claimed"})
    waiting = ma.fields.Integer(
        metadata={"description": "hồ sơ đang chờ tại sự kiện (nộp lệ phí, bổ sung) / dossiers waiting at the event"}
    )


class WebCountsSchema(ma.Schema):
    code = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True, metadata={"description": "phiên bản hiện hành / current version"})
    now = Str(metadata={"format": "date-time"})
    agency = Str(metadata={"description": "cơ quan được đếm (null: mọi cơ quan) / agency counted, null = all"})
    counts = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Nested(WebStepCountSchema),
        required=True,
        metadata={"description": "theo id phần tử BPMN / by BPMN element id"},
    )
    total = ma.fields.Integer(required=True)


class WebStepSchema(ma.Schema):
    id = ma.fields.String(required=True)
    spec_name = ma.fields.String(required=True, metadata={"description": "id phần tử BPMN / BPMN element id"})
    title = ma.fields.String(required=True)
    agency = Str(metadata={"description": "cơ quan thực hiện / the performing agency (docs/bpmn-conventions.md 9.5)"})
    agency_name = Str(metadata={"description": "tên cơ quan thực hiện / the performing agency's name"})
    handed_over_from = Str(metadata={"description": "nhận bàn giao từ cơ quan / handed over from this agency"})
    working_hours = ma.fields.Float(metadata={"description": "giờ làm việc theo lịch cơ quan / on its calendar"})
    roles = ma.fields.List(ma.fields.String())
    state = ma.fields.String(required=True, metadata={"enum": ["ready", "completed", "cancelled"]})
    created_at = Str(metadata={"format": "date-time", "description": "giao, nhận / handed over"})
    due_at = Str(metadata={"format": "date-time", "description": "hạn bước / step deadline"})
    claimed_by = Str()
    claimed_at = Str(metadata={"format": "date-time"})
    completed_at = Str(metadata={"format": "date-time"})
    completed_by = Str()
    completed_by_name = Str()
    on_time = ma.fields.Boolean(allow_none=True)
    overdue = ma.fields.Boolean(required=True)


class WebDocumentSchema(ma.Schema):
    key = Str()
    name = Str()
    required = ma.fields.Boolean()
    description = Str()
    attached = ma.fields.Boolean()
    received_on_paper = ma.fields.Boolean()
    files = ma.fields.Integer()
    state = ma.fields.String(
        metadata={"enum": ["attached", "paper", "missing", "not_given"], "description": "engine/attachments.py"}
    )


class WebProcedureFactsSchema(ma.Schema):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    agency = Str()
    version = ma.fields.Integer()
    deadline = Str()
    cutoff = Str()
    fee = ma.fields.Raw(allow_none=True)
    level = Str()


class WebPersonSchema(ma.Schema):
    username = Str()
    full_name = Str()


class WebAgencyShareSchema(ma.Schema):
    agency = Str()
    name = Str(metadata={"description": "tên cơ quan / the agency's name"})
    steps = ma.fields.Integer()
    working_hours = ma.fields.Float()
    percent = ma.fields.Float(
        allow_none=True, metadata={"description": "phần trăm số giờ làm việc / percent of the agencies' working hours"}
    )


class WebStepsSchema(ma.Schema):
    code = ma.fields.String(required=True)
    fee = ma.fields.Raw(allow_none=True, metadata={"description": "lệ phí của hồ sơ (VND) / the dossier's fee"})
    agency = Str(metadata={"description": "cơ quan tiếp nhận / the receiving agency"})
    agency_name = Str(metadata={"description": "tên cơ quan tiếp nhận / the receiving agency's name"})
    procedure = ma.fields.Nested(WebProcedureFactsSchema, required=True)
    received_by = ma.fields.Nested(WebPersonSchema, allow_none=True)
    steps = ma.fields.List(ma.fields.Nested(WebStepSchema), required=True)
    agencies = ma.fields.List(
        ma.fields.Nested(WebAgencyShareSchema), metadata={"description": "phần của mỗi cơ quan / each agency's share"}
    )
    elapsed_working_hours = ma.fields.Float(
        metadata={
            "description": "giờ làm việc từ khi nhận đến khi kết thúc (hoặc bây giờ), theo lịch cơ quan tiếp nhận / "
            "working hours from receipt to the end (or now) on the receiving agency's calendar"
        }
    )
    documents = ma.fields.List(ma.fields.Nested(WebDocumentSchema), required=True)


class WebValidationProblemSchema(ma.Schema):
    element = Str()
    message_vi = Str()
    message_en = Str()


class WebValidationSchema(ma.Schema):
    valid = ma.fields.Boolean(required=True)
    code = Str()
    name = Str()
    process_id = Str()
    problems = ma.fields.List(ma.fields.Nested(WebValidationProblemSchema), required=True)
    warnings = ma.fields.List(ma.fields.Nested(WebValidationProblemSchema), required=True)


class WebValidateFormSchema(ma.Schema):
    file = ma.fields.Raw(
        required=True, metadata={"type": "string", "format": "binary", "description": "tệp .bpmn / the .bpmn file"}
    )
    forms = ma.fields.List(
        ma.fields.Raw(metadata={"type": "string", "format": "binary"}),
        metadata={"description": "tệp biểu mẫu kèm theo / form files deployed with it"},
    )


@blp.route("/procedures/<code>/counts", methods=["GET"])
@requires("procedures")
@blp.doc(summary="Số việc đang chờ theo từng bước / ready tasks per step of a procedure")
@blp.response(200, WebCountsSchema)
@errors(blp, 401, 403, 404)
def counts(code):
    with read_session() as s:
        return queries.step_counts(s, actor(), code)


@blp.route("/dossiers/<code>/steps", methods=["GET"])
@requires("staff")
@blp.doc(summary="Các bước của hồ sơ (phiếu kiểm soát, giấy tiếp nhận) / every step of a dossier")
@blp.response(200, WebStepsSchema)
@errors(blp, 401, 403, 404)
def steps(code):
    with read_session() as s:
        return queries.dossier_steps(s, actor(), code, services().dossiers.runtimes)


def _uploads():
    file = request.files.get("file")
    if file is None:
        raise InvalidInput(
            "Thiếu tệp BPMN (trường 'file')",
            "the BPMN file is missing (field 'file')",
            {"fields": {"file": "Trường bắt buộc / Required"}},
        )
    limit = services().settings.max_bpmn_bytes
    content = file.read(limit + 1)
    if len(content) > limit:
        raise TooLarge(f"Tệp BPMN quá lớn (tối đa {limit} byte)", f"the BPMN file is too large (at most {limit} bytes)")
    forms = {}
    for field, storage in request.files.items(multi=True):  # every other file is a form file, as on deploy
        if storage is file:
            continue
        forms[(storage.filename or field).replace("\\", "/").rsplit("/", 1)[-1]] = storage.read()
    return content, file.filename or "procedure.bpmn", forms, limit


@blp.route("/procedures/validate", methods=["POST"])
@requires("deploy")
@blp.doc(
    summary="Kiểm tra thủ tục mà không triển khai / validate a procedure without deploying it",
    requestBody={"required": True, "content": {"multipart/form-data": {"schema": WebValidateFormSchema}}},
)
@blp.response(200, WebValidationSchema)
@errors(blp, 401, 403, 413, 422)
def validate():
    actor().require("analyst")  # before reading any upload
    content, filename, forms, limit = _uploads()
    with read_session() as s:
        return queries.procedure_check(s, actor(), content, filename, forms, limit)
