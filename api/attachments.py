"""Attachments of a dossier (thành phần hồ sơ): upload and remove (receiver of its agency; removal only until
intake is completed), list with the checklist's states, and download (staff of its agency, supervisors,
admins). The rules live in engine/attachments.py; this is the HTTP shell.

POST takes multipart/form-data: `file` (the document) and optionally `document_key` (a key of the procedure's
documents checklist, `x-documents` of its intake form; that entry's size limit and accepted types apply).
Downloads are always served as attachments with `X-Content-Type-Options: nosniff`, with the content type the
bytes proved at upload.
"""

from __future__ import annotations

from urllib.parse import quote

import marshmallow as ma
from flask import request, send_file
from flask_smorest import Blueprint

from engine import attachments as engine_attachments
from engine.errors import InvalidInput

from .auth import authenticate, requires
from .common import DateTimeString, Str, errors
from .context import actor, services

blp = Blueprint(
    "attachments",
    __name__,
    url_prefix="/api/v1/dossiers",
    description="Giấy tờ đính kèm của hồ sơ / dossier attachments: tải lên, danh sách, tải về",
)
blp.before_request(authenticate)


class AttachmentSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    kind = ma.fields.String(
        required=True,
        metadata={"enum": ["document", "result"], "description": "giấy tờ / kết quả điện tử (x-result-files)"},
    )
    document_key = Str(metadata={"description": "mã giấy tờ trong danh mục (x-documents) / checklist key"})
    filename = ma.fields.String(required=True)
    content_type = ma.fields.String(required=True, metadata={"example": "application/pdf"})
    size = ma.fields.Integer(required=True, metadata={"description": "byte"})
    sha256 = ma.fields.String(required=True)
    uploaded_at = DateTimeString()
    uploaded_by = Str()


class DocumentStateSchema(ma.Schema):
    key = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    required = ma.fields.Boolean(required=True)
    description = Str()
    accept = ma.fields.List(ma.fields.String(), required=True, metadata={"example": ["application/pdf"]})
    max_bytes = ma.fields.Integer(allow_none=True)
    attached = ma.fields.Boolean(required=True, metadata={"description": "có tệp tải lên / a file was uploaded"})
    received_on_paper = ma.fields.Boolean(
        required=True, metadata={"description": "đã đánh dấu nhận bản giấy / ticked as received on paper"}
    )
    files = ma.fields.Integer(required=True)
    state = ma.fields.String(
        required=True,
        metadata={
            "enum": ["attached", "paper", "missing", "not_given"],
            "description": "đã có tệp / nhận bản giấy / thiếu (bắt buộc) / không nộp (không bắt buộc)",
        },
    )


class AttachmentListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AttachmentSchema), required=True)
    documents = ma.fields.List(
        ma.fields.Nested(DocumentStateSchema),
        required=True,
        metadata={"description": "danh mục giấy tờ của thủ tục và tình trạng / the checklist with each state"},
    )
    uploadable = ma.fields.Boolean(required=True, metadata={"description": "the caller may upload now"})
    removable = ma.fields.Boolean(
        required=True, metadata={"description": "the caller may remove documents now (before intake completes)"}
    )


UPLOAD_DOC = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "tệp PDF, JPEG hoặc PNG / a PDF, JPEG or PNG file",
                    },
                    "document_key": {
                        "type": "string",
                        "maxLength": 100,
                        "description": "mã giấy tờ trong danh mục của thủ tục / key in the procedure's "
                        "documents checklist",
                    },
                },
            }
        }
    },
}

DOWNLOAD_TYPES = ("application/pdf", "image/jpeg", "image/png", "application/octet-stream")
DOWNLOAD_DOC = {
    "200": {
        "description": "Nội dung tệp / the file's bytes",
        "headers": {
            "Content-Disposition": {"description": "attachment; filename*=UTF-8''…", "schema": {"type": "string"}},
            "X-Content-Type-Options": {"description": "nosniff", "schema": {"type": "string"}},
        },
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in DOWNLOAD_TYPES},
    }
}


@blp.route("/<code>/attachments", methods=["POST"])
@requires("receive")
@blp.doc(
    summary="Tải lên giấy tờ / upload a document (receiver of the dossier's agency)",
    requestBody=UPLOAD_DOC,
    description="413 when larger than the checklist entry's `max_bytes` (or the server's upload limit); 422 "
    "for an unsafe file name, an empty file, or a type the bytes do not prove (PDF, JPEG, PNG); "
    "409 when the dossier is finished.",
)
@blp.response(201, AttachmentSchema)
@errors(blp, 401, 403, 404, 409, 413, 422)
def upload(code):
    storage = request.files.get("file")
    if storage is None:
        raise InvalidInput(
            "Cần tệp trong trường 'file' (multipart/form-data)",
            "a file is required in the 'file' field (multipart/form-data)",
            {"fields": {"file": "Thiếu tệp / Missing file"}},
        )
    key = request.form.get("document_key") or None
    return engine_attachments.store(
        services().dossiers, actor(), code, key, storage.filename or "tep_dinh_kem", storage.mimetype, storage.stream
    )


@blp.route("/<code>/attachments", methods=["GET"])
@requires("staff")
@blp.doc(summary="Danh sách giấy tờ / a dossier's attachments (staff of its agency)")
@blp.response(200, AttachmentListSchema)
@errors(blp, 401, 403, 404)
def list_(code):
    return engine_attachments.attachments_overview(services().dossiers, actor(), code)


@blp.route("/<code>/attachments/<int:attachment_id>", methods=["DELETE"])
@requires("receive")
@blp.doc(
    summary="Xóa giấy tờ tải nhầm / remove a document uploaded by mistake (receiver, before intake completes)",
    description="204 when removed (an audit event records it). 409 once intake is completed (the documents "
    "are part of the record), for a result file, or when the dossier is finished.",
)
@blp.response(204)
@errors(blp, 401, 403, 404, 409)
def remove(code, attachment_id):
    engine_attachments.remove(services().dossiers, actor(), code, attachment_id)


@blp.route("/<code>/attachments/<int:attachment_id>", methods=["GET"])
@requires("staff")
@blp.doc(summary="Tải về giấy tờ / download an attachment (staff of the dossier's agency)", responses=DOWNLOAD_DOC)
@errors(blp, 401, 403, 404)
def download(code, attachment_id):
    view, path = engine_attachments.open_attachment(services().dossiers, actor(), code, attachment_id)
    resp = send_file(path, mimetype=view["content_type"], conditional=False, etag=False, max_age=0)
    resp.headers["Content-Disposition"] = content_disposition(view["filename"])
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the real (UTF-8) one in RFC 5987 `filename*`."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
