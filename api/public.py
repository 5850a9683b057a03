"""Public lookup of a dossier by its code (no login): status, dates and steps; the applicant's own data only
when `id_number` matches theirs. One 404 for every unknown code. Rate-limited per client IP (30 lookups a
minute by default, in process) against enumeration of codes and guessing of identity numbers.
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask_smorest import Blueprint
from marshmallow import validate

from engine import queries, ratelimit

from .common import DateTimeString, errors
from .context import read_session, services
from .schemas import STATUSES, ApplicantSchema

blp = Blueprint(
    "public", __name__, url_prefix="/api/v1/public", description="Tra cứu công khai / public lookup (no login)"
)


class LookupArgs(ma.Schema):
    id_number = ma.fields.String(
        validate=validate.Length(min=1, max=32),
        metadata={"description": "số giấy tờ của người nộp / the applicant's id number"},
    )


class StepSchema(ma.Schema):
    name = ma.fields.String(required=True)
    state = ma.fields.String(required=True, metadata={"enum": ["ready", "completed"]})
    started_at = DateTimeString()
    completed_at = DateTimeString()
    due_at = DateTimeString()


class PublicDossierSchema(ma.Schema):
    code = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"enum": STATUSES})
    status_code = ma.fields.Integer(required=True)
    status_label = ma.fields.String(required=True)
    status_label_en = ma.fields.String(required=True)
    procedure_code = ma.fields.String(required=True)
    procedure_name = ma.fields.String(allow_none=True)
    received_at = DateTimeString(required=True)
    due_at = DateTimeString()
    processed_at = DateTimeString()
    returned_at = DateTimeString()
    finished = ma.fields.Boolean(required=True)
    steps = ma.fields.List(ma.fields.Nested(StepSchema), required=True)
    identity_verified = ma.fields.Boolean(required=True, metadata={"description": "id_number matched"})
    applicant = ma.fields.Nested(
        ApplicantSchema, allow_none=True, required=True, metadata={"description": "only when id_number matches"}
    )
    data = ma.fields.Dict(
        keys=ma.fields.String(),
        metadata={"description": "only when id_number matches: the fields the forms mark `x-public: true`"},
    )


@blp.route("/dossiers/<code>", methods=["GET"])
@blp.doc(security=[], summary="Tra cứu hồ sơ / look up a dossier by its code")
@blp.arguments(LookupArgs(), location="query")
@blp.response(200, PublicDossierSchema)
@errors(blp, 404, 422, 429)
def lookup(args, code):
    svc = services()
    ratelimit.check(svc.db, (svc.lookup_limiter, request.remote_addr or "-"))  # shared by every process
    with read_session() as s:
        return queries.public_lookup(s, code, args.get("id_number"))
