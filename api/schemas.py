"""Marshmallow schemas of the resources, shared by the blueprints (requests and responses).

Response schemas mirror the views of engine/views.py; times are strings already in
ISO 8601 at UTC+7 (format date-time). Request bodies refuse unknown fields (additionalProperties: false).
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from engine.queries import SORTS
from engine.statuses import CHANNEL_NAMES, Channel, Status

from .common import DateTimeString, PageSchema, Str
from .fastdump import FastDump

STATUSES = [s.value for s in Status]
CHANNELS = [int(c) for c in Channel]


# -- tasks ---------------------------------------------------------------------------------------------------


class TaskSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True, metadata={"description": "tên bước / step name"})
    spec_name = ma.fields.String(required=True, metadata={"description": "id của userTask trong BPMN"})
    roles = ma.fields.List(ma.fields.String(), required=True)
    assignee = Str()
    state = ma.fields.String(required=True, metadata={"enum": ["ready", "completed", "cancelled"]})
    claimed_by = Str()
    due_at = DateTimeString()
    overdue = ma.fields.Boolean(required=True)
    created_at = DateTimeString()
    completed_at = DateTimeString()
    completed_by = Str()
    dossier_code = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    agency = ma.fields.String(required=True)
    form_key = Str()


class TaskPageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(TaskSchema), required=True)


# -- dossiers ------------------------------------------------------------------------------------------------


class ApplicantSchema(ma.Schema):
    name = ma.fields.String(required=True)
    id_number = Str()
    phone = Str()
    email = Str()


class EventSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    at = DateTimeString()
    actor = Str()
    action = ma.fields.String(required=True, metadata={"example": "task.completed"})
    from_status = Str()
    to_status = Str()
    task_id = Str()
    details = ma.fields.Dict(keys=ma.fields.String())


class _StatusFields(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "H56.31.14-250715-0001"})
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    status_code = ma.fields.Integer(required=True, metadata={"minimum": 1, "maximum": 10})
    status_label = ma.fields.String(required=True, metadata={"description": "Tiếng Việt"})
    status_label_en = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)


class DossierSchema(_StatusFields, FastDump):
    """A dossier with its open tasks (and, on GET /dossiers/{code}, its timeline). The answer of the two hot
    operations: dumped by a plan compiled from these fields (api/fastdump.py)."""

    agency = ma.fields.String(required=True)
    channel = ma.fields.Integer(required=True, metadata={"enum": CHANNELS})
    applicant = ma.fields.Nested(ApplicantSchema, required=True)
    data = ma.fields.Dict(keys=ma.fields.String(), required=True)
    data_view = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String()),
        metadata={
            "description": "dữ liệu theo nhãn của biểu mẫu: [{form, title, fields: [{key, label, kind, value, "
            "text|texts|fields|columns+rows, staff_only}]}] / the data as its forms label it (GET only)"
        },
    )
    received_at = DateTimeString(required=True)
    due_at = DateTimeString()
    original_due_at = DateTimeString()
    overdue = ma.fields.Boolean(required=True)
    finished = ma.fields.Boolean(required=True)
    finished_at = DateTimeString()
    processed_at = DateTimeString()
    returned_at = DateTimeString()
    supplement_count = ma.fields.Integer()
    paused = ma.fields.Boolean()
    extended = ma.fields.Boolean()
    tasks = ma.fields.List(
        ma.fields.Nested(TaskSchema), required=True, metadata={"description": "các bước đang mở / open tasks"}
    )
    version = ma.fields.Integer(required=True, metadata={"description": "for If-Match / `version` on completion"})
    timeline = ma.fields.List(ma.fields.Nested(EventSchema))


class DossierSummarySchema(_StatusFields):
    agency = ma.fields.String(required=True)
    channel = ma.fields.Integer(required=True)
    applicant_name = ma.fields.String(required=True)
    received_at = DateTimeString(required=True)
    due_at = DateTimeString()
    overdue = ma.fields.Boolean(required=True)
    finished = ma.fields.Boolean(required=True)
    finished_at = DateTimeString()
    version = ma.fields.Integer(required=True)


class DossierPageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(DossierSummarySchema), required=True)


class HistorySchema(ma.Schema):
    code = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    events = ma.fields.List(ma.fields.Nested(EventSchema), required=True)


class IncidentSchema(ma.Schema):
    """A service task's connector call still open on a dossier: pending, running, or an incident to retry."""

    id = ma.fields.String(required=True)
    element = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    connector = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"enum": ["pending", "running", "incident"]})
    attempts = ma.fields.Integer(required=True)
    error = ma.fields.String(allow_none=True)
    created_at = ma.fields.String(allow_none=True)


class ChannelField(ma.fields.Field):
    """1 in person, 2 online, 3 postal (or the names in_person, online, postal)."""

    default_error_messages = {
        "invalid": "Kênh nộp: 1, 2, 3, in_person, online, postal / channel: 1, 2, 3, in_person, online, postal"
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int) and value in CHANNELS:
            return value
        if isinstance(value, str) and value in CHANNEL_NAMES:
            return int(CHANNEL_NAMES[value])
        raise self.make_error("invalid")


class ApplicantInSchema(ma.Schema):
    name = ma.fields.String(required=True, validate=validate.Length(min=1, max=200))
    id_number = ma.fields.String(
        allow_none=True,
        validate=validate.Length(max=32),
        metadata={"description": "số CCCD/CMND/hộ chiếu; dùng để tra cứu công khai"},
    )
    phone = ma.fields.String(allow_none=True, validate=validate.Length(max=32))
    email = ma.fields.String(allow_none=True, validate=validate.Length(max=200))


class NewDossierSchema(ma.Schema):
    procedure_code = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=64), metadata={"example": "1.001193"}
    )
    applicant = ma.fields.Nested(ApplicantInSchema, required=True)
    channel = ChannelField(
        load_default=1,
        metadata={
            "oneOf": [{"type": "integer", "enum": CHANNELS}, {"type": "string", "enum": list(CHANNEL_NAMES)}],
            "description": "1 trực tiếp / in person, 2 trực tuyến / online, 3 bưu chính / postal",
        },
    )
    data = ma.fields.Dict(
        keys=ma.fields.String(), load_default=dict, metadata={"description": "dữ liệu biểu mẫu tiếp nhận / intake data"}
    )
    received_at = ma.fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "chỉ quản trị viên: ngày tiếp nhận thực tế khi chuyển từ hệ thống cũ / admin only"},
    )
    agency = ma.fields.String(
        allow_none=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "chỉ quản trị viên / admin only"},
    )


class DossierListArgs(ma.Schema):
    status = ma.fields.List(
        ma.fields.String(validate=validate.OneOf(STATUSES)),
        metadata={"description": "lặp lại để chọn nhiều / repeat for several"},
    )
    overdue = ma.fields.Boolean()
    due_before = ma.fields.AwareDateTime(metadata={"description": "hạn trước thời điểm này / due before"})
    procedure_code = ma.fields.String(validate=validate.Length(min=1, max=64))
    agency = ma.fields.String(validate=validate.Length(min=1, max=64))
    q = ma.fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "đầu mã hồ sơ hoặc tên người nộp / code prefix or applicant name"},
    )
    sort = ma.fields.String(load_default="-received_at", validate=validate.OneOf(list(SORTS)))


# -- task detail -----------------------------------------------------------------------------------------------


class FormSchema(ma.Schema):
    key = ma.fields.String(required=True)
    title = Str()
    schema = ma.fields.Dict(keys=ma.fields.String(), required=True, metadata={"description": "JSON Schema 2020-12"})
    ui_schema = ma.fields.Dict(keys=ma.fields.String(), allow_none=True)


class TaskDetailSchema(ma.Schema):
    task = ma.fields.Nested(TaskSchema, required=True)
    form = ma.fields.Nested(
        FormSchema,
        allow_none=True,
        required=True,
        metadata={"description": "null: the task completes with free JSON data"},
    )
    values = ma.fields.Dict(
        keys=ma.fields.String(),
        required=True,
        metadata={"description": "giá trị hiện có, lấy từ dữ liệu hồ sơ / current values"},
    )
    can_work = ma.fields.Boolean(required=True, metadata={"description": "the caller may claim/complete it"})
    dossier = ma.fields.Nested(DossierSummarySchema, required=True)


class TaskListArgs(ma.Schema):
    mine = ma.fields.Boolean(load_default=False, metadata={"description": "chỉ việc tôi đang giữ / only mine"})
    role = ma.fields.String(validate=validate.Length(min=1, max=100))
    overdue = ma.fields.Boolean()
    procedure_code = ma.fields.String(validate=validate.Length(min=1, max=64))
    q = ma.fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "đầu mã hồ sơ hoặc mã thủ tục / dossier or procedure code prefix"},
    )


class CompleteSchema(ma.Schema):
    data = ma.fields.Dict(keys=ma.fields.String(), load_default=dict)
    version = ma.fields.Integer(
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={
            "description": "phiên bản hồ sơ đã đọc; 409 nếu đã thay đổi / the dossier version read; 409 if it changed"
        },
    )


class CompleteHeaders(ma.Schema):
    if_match = ma.fields.String(
        data_key="If-Match",
        validate=validate.Length(min=1, max=40),
        metadata={"description": 'phiên bản hồ sơ, ví dụ "3" / the dossier version, e.g. "3"'},
    )
    idempotency_key = ma.fields.String(data_key="Idempotency-Key", validate=validate.Length(min=1, max=200))


class IdempotencyHeaders(ma.Schema):
    idempotency_key = ma.fields.String(
        data_key="Idempotency-Key",
        validate=validate.Length(min=1, max=200),
        metadata={"description": "retry-safe key: a retry returns the first result"},
    )
