"""Procedures: the catalogue (staff, analysts), details and diagram (staff, analysts), deployment (an analyst
for their own agency's variant, an admin for any; docs/security.md).

A procedure code may have several variants, one per agency that offers it plus at most one province-wide;
details and diagram take `?agency=` (default: the caller's agency), and fall back to the province-wide one.

POST /procedures takes multipart/form-data: `file` is the BPMN, every other file part (e.g. `forms`,
repeated) is a form file deployed with it, named by its file name. 201 when a new version was created,
200 with `created: false` and the existing version when a version of the same meaning is already deployed
(by meaning, not bytes: layout, whitespace, attribute order do not count; docs/bpmn-conventions.md, 11),
422 listing every problem (each naming its BPMN element), 413 when the BPMN is larger than `settings.max_bpmn_bytes` (or the whole request larger
than `settings.max_upload_bytes`).
"""

from __future__ import annotations

import marshmallow as ma
from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import validate

from engine import queries
from engine.migration import migrate_page
from engine.paging import MAX_PER_PAGE
from engine.procedures import LEVELS, Upload, deploy_upload
from engine.queries import MAX_PER_PAGE_CATALOGUE

from .auth import authenticate, requires
from .common import DateTimeString, PageSchema, Str, errors
from .context import actor, read_session, services
from .errors import ProblemItemSchema
from .schemas import FormSchema

blp = Blueprint(
    "procedures",
    __name__,
    url_prefix="/api/v1/procedures",
    description="Thủ tục hành chính / procedures: danh mục, chi tiết, sơ đồ BPMN, triển khai",
)
blp.before_request(authenticate)


class ProcedureItemSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "1.001193"})
    name = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True, metadata={"description": "phiên bản hiện hành / current version"})
    agency = Str()
    deadline = Str(metadata={"example": "15 working days"})
    cutoff = Str(metadata={"example": "15:00"})
    level = Str(metadata={"example": "toan_trinh"})
    fee = ma.fields.Integer(allow_none=True, metadata={"description": "VND"})
    deployed_at = DateTimeString()


class ProcedurePageSchema(PageSchema):
    items = ma.fields.List(ma.fields.Nested(ProcedureItemSchema), required=True)


class VersionSchema(ma.Schema):
    version = ma.fields.Integer(required=True)
    deployed_at = DateTimeString()
    deployed_by = Str()
    filename = Str()
    content_hash = ma.fields.String(required=True)
    current = ma.fields.Boolean(required=True)


class UserTaskSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = Str()
    roles = ma.fields.List(ma.fields.String(), required=True)
    assignee = Str()
    form_key = Str()
    deadline = Str()
    status = Str()


class CalledProcedureSchema(ma.Schema):
    code = ma.fields.String(required=True)
    version = ma.fields.Integer(
        required=True, metadata={"description": "phiên bản hồ sơ mới sẽ chạy / version run now"}
    )
    name = Str()
    user_tasks = ma.fields.List(ma.fields.Nested(UserTaskSchema), required=True)


class ProcedureDetailSchema(ProcedureItemSchema):
    process_id = Str()
    dialect = Str()
    versions = ma.fields.List(ma.fields.Nested(VersionSchema), required=True)
    user_tasks = ma.fields.List(ma.fields.Nested(UserTaskSchema), required=True)
    forms = ma.fields.List(ma.fields.Nested(FormSchema), required=True)
    called = ma.fields.List(
        ma.fields.Nested(CalledProcedureSchema),
        metadata={
            "description": "thủ tục được gọi (call activity) và các bước / procedures it calls, with their steps"
        },
    )


class DeployResultSchema(ma.Schema):
    code = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    created = ma.fields.Boolean(
        required=True, metadata={"description": "false: a version of the same meaning was already deployed (returned)"}
    )
    name = Str()
    warnings = ma.fields.List(ma.fields.Nested(ProblemItemSchema), required=True)


class ProcedureListArgs(ma.Schema):
    q = ma.fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "đầu mã hoặc một phần tên / code prefix or part of the name"},
    )
    agency = ma.fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "cơ quan sở hữu; '-' = thủ tục toàn tỉnh / owning agency; '-' = province-wide"},
    )
    level = ma.fields.String(
        validate=validate.OneOf(sorted(LEVELS)),
        metadata={"description": "mức độ / level of service"},
    )
    page = ma.fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = ma.fields.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=MAX_PER_PAGE_CATALOGUE),
        metadata={"description": f"tối đa / at most {MAX_PER_PAGE_CATALOGUE}"},
    )


@blp.route("", methods=["GET"])
@requires("procedures")
@blp.doc(summary="Danh mục thủ tục / procedure catalogue (staff)")
@blp.arguments(ProcedureListArgs(), location="query")
@blp.response(200, ProcedurePageSchema)
@errors(blp, 401, 403, 422)
def catalogue(args):
    with read_session() as s:
        return queries.list_procedures(
            s, actor(), args.get("q"), args.get("agency"), args["page"], args["per_page"], level=args.get("level")
        ).to_dict()


UPLOAD_DOC = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary", "description": "tệp .bpmn / the BPMN file"},
                    "forms": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "tệp biểu mẫu đi kèm (.json) / form files deployed with it",
                    },
                },
            }
        }
    },
}


@blp.route("", methods=["POST"])
@requires("deploy")
@blp.doc(summary="Triển khai thủ tục / deploy a procedure (analyst, admin)", requestBody=UPLOAD_DOC)
@blp.alt_response(
    200,
    schema=DeployResultSchema,
    success=True,
    description="Không thay đổi so với phiên bản đã triển khai / unchanged: the existing version",
)
@blp.response(201, DeployResultSchema, description="Phiên bản mới / a new version was deployed")
@errors(blp, 401, 403, 413, 422)
def upload():
    files, svc = request.files, services()
    main = files.get("file")
    bpmn = Upload(main.filename, main.stream) if main is not None else None
    forms = [Upload(st.filename or field, st) for field, st in files.items(multi=True) if st is not main]
    body = deploy_upload(svc.db, actor(), bpmn, forms, svc.settings.max_bpmn_bytes)
    return body, 201 if body["created"] else 200


class VariantArgs(ma.Schema):
    agency = ma.fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "biến thể của cơ quan này, nếu không có thì biến thể toàn tỉnh; mặc định: cơ quan của "
            "người gọi / this agency's variant, else the province-wide one; default: the caller's agency"
        },
    )


@blp.route("/<code>", methods=["GET"])
@requires("procedures")
@blp.doc(summary="Chi tiết thủ tục / procedure details: versions, user tasks with roles, forms, deadlines")
@blp.arguments(VariantArgs(), location="query")
@blp.response(200, ProcedureDetailSchema)
@errors(blp, 401, 403, 404, 422)
def details(args, code):
    with read_session() as s:
        return queries.procedure_details(s, actor(), code, args.get("agency"))


@blp.route("/<code>/diagram", methods=["GET"])
@requires("procedures")
@blp.doc(
    summary="Sơ đồ BPMN / the BPMN XML of the current version",
    description="Served as a download (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`): "
    "the XML is written by analysts and is never rendered by the browser as a page.",
    responses={"200": {"description": "BPMN 2.0 XML", "content": {"application/xml": {"schema": {"type": "string"}}}}},
)
@blp.arguments(VariantArgs(), location="query")
@errors(blp, 401, 403, 404, 422)
def diagram(args, code):
    with read_session() as s:
        filename, xml = queries.procedure_diagram(s, actor(), code, args.get("agency"))
    resp = Response(xml, mimetype="application/xml")
    resp.headers["Content-Disposition"] = f'attachment; filename="{_ascii(filename)}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _ascii(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)


class MigrationArgs(ma.Schema):
    to_version = ma.fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1), metadata={"description": "phiên bản đích / target"}
    )
    dry_run = ma.fields.Boolean(
        load_default=False, metadata={"description": "chỉ kiểm tra, không thay đổi / check only, change nothing"}
    )
    agency = ma.fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "biến thể của cơ quan (mặc định: toàn tỉnh) / the agency's variant"},
    )
    after = ma.fields.Integer(
        load_default=0,
        strict=True,
        validate=validate.Range(min=0),
        metadata={"description": "con trỏ trang: next_after của trang trước / cursor: the previous page's next_after"},
    )
    limit = ma.fields.Integer(load_default=MAX_PER_PAGE, strict=True, validate=validate.Range(min=1, max=MAX_PER_PAGE))


class MigrationItemSchema(ma.Schema):
    code = ma.fields.String(required=True)
    from_version = ma.fields.Integer(allow_none=True)
    outcome = ma.fields.String(
        required=True, metadata={"description": "migrated | would_migrate | left_alone | conflicted"}
    )
    at = ma.fields.List(ma.fields.String(), metadata={"description": "các bước đang chờ / the elements it waits at"})
    missing = ma.fields.List(
        ma.fields.String(), metadata={"description": "bước không còn trong phiên bản đích / elements the target lacks"}
    )
    error = Str(metadata={"description": "sơ đồ mới không chạy tiếp được / why the new diagram cannot go on"})


class MigrationResultSchema(ma.Schema):
    code = ma.fields.String(required=True)
    to_version = ma.fields.Integer(required=True)
    dry_run = ma.fields.Boolean(required=True)
    total = ma.fields.Integer(
        required=True, metadata={"description": "hồ sơ còn phải xét từ con trỏ / still to look at"}
    )
    items = ma.fields.List(ma.fields.Nested(MigrationItemSchema), required=True)
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer(), required=True)
    next_after = ma.fields.Integer(allow_none=True, metadata={"description": "null: trang cuối / the last page"})


@blp.route("/<code>/migrations", methods=["POST"])
@requires("admin")
@blp.doc(
    summary="Chuyển hồ sơ đang xử lý sang phiên bản khác / migrate running dossiers to another version (admin)",
    description="Một trang tối đa `limit` hồ sơ, mỗi hồ sơ một giao dịch / one page of at most `limit` dossiers, "
    "each in its own transaction (docs/bpmn-conventions.md, 'Migrating running dossiers').",
)
@blp.arguments(MigrationArgs())
@blp.response(200, MigrationResultSchema)
@errors(blp, 401, 403, 404, 422)
def migrate(args, code):
    svc = services()
    return migrate_page(
        svc.dossiers,
        actor(),
        code,
        args["to_version"],
        dry_run=args["dry_run"],
        agency=args.get("agency"),
        after=args["after"],
        limit=args["limit"],
    )
