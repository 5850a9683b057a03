"""Dossiers: receive one (receiver), list them with filters and paging, read one, read its audit trail, see and
retry its connector incidents.

Who: staff of the dossier's agency; supervisors and admins see every agency (engine.auth.Actor).
"""

from __future__ import annotations

from flask_smorest import Blueprint

from engine import connectors, queries

from . import idempotency
from .auth import authenticate, requires
from .common import PagingArgs, errors
from .context import actor, read_session, services
from .hotpath import hot
from .schemas import (
    DossierListArgs,
    DossierPageSchema,
    DossierSchema,
    HistorySchema,
    IdempotencyHeaders,
    IncidentSchema,
    NewDossierSchema,
)

blp = Blueprint(
    "dossiers",
    __name__,
    url_prefix="/api/v1/dossiers",
    description="Hồ sơ / dossiers: tiếp nhận, tra cứu, lịch sử xử lý",
)
blp.before_request(authenticate)


class DossierListQuery(DossierListArgs, PagingArgs):
    pass


@blp.route("", methods=["POST"])
@requires("receive")
@hot  # the decorators below document it; the request runs a cheaper path (api/hotpath.py)
@blp.doc(
    summary="Tiếp nhận hồ sơ / receive a dossier (receiver)",
    description="201 with the new dossier, its due time and its first open tasks. An admin may give "
    "`received_at` in the past (bringing over a dossier from a previous system) and `agency`. "
    "Send `Idempotency-Key` to make retries safe.",
)
@blp.arguments(IdempotencyHeaders(), location="headers")
@blp.arguments(NewDossierSchema())
@blp.response(201, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def create(headers, body):
    a, svc = actor(), services()

    def call():
        return svc.dossiers.start_dossier(
            a,
            body["procedure_code"],
            body["applicant"],
            body.get("channel", 1),
            body.get("data") or {},
            received_at=body.get("received_at"),
            agency=body.get("agency"),
        )

    payload = {**body, "received_at": body.get("received_at").isoformat() if body.get("received_at") else None}
    return idempotency.run(headers.get("idempotency_key"), "POST /api/v1/dossiers", payload, 201, call)


@blp.route("", methods=["GET"])
@requires("staff")
@blp.doc(
    summary="Danh sách hồ sơ / list dossiers",
    description="Filters combine with AND. `q` matches a code prefix or part of the applicant's name. "
    "Staff see their own agency (asking for another one is a 403); supervisors see all. "
    "Ordered by `sort` (default newest first).",
)
@blp.arguments(DossierListQuery(), location="query")
@blp.response(200, DossierPageSchema)
@errors(blp, 401, 403, 422)
def list_(args):
    page, per_page = args.pop("page"), args.pop("per_page")
    with read_session() as s:
        return queries.list_dossiers(s, actor(), args, page, per_page).to_dict()


@blp.route("/<code>", methods=["GET"])
@requires("staff")
@blp.doc(summary="Chi tiết hồ sơ / a dossier: status, due dates, open tasks, data, timeline")
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404)
def get(code):
    return services().dossiers.get_dossier(actor(), code)


@blp.route("/<code>/history", methods=["GET"])
@requires("staff")
@blp.doc(summary="Lịch sử xử lý / audit trail: who did what, when, from which status to which")
@blp.response(200, HistorySchema)
@errors(blp, 401, 403, 404)
def history(code):
    with read_session() as s:
        return queries.dossier_history(s, actor(), code)


@blp.route("/<code>/incidents", methods=["GET"])
@requires("staff")
@blp.doc(summary="Bước dịch vụ đang gọi hoặc gặp sự cố / a dossier's open connector calls and incidents")
@blp.response(200, IncidentSchema(many=True))
@errors(blp, 401, 403, 404)
def incidents(code):
    return connectors.incidents(services().dossiers.db, actor(), code)


@blp.route("/<code>/incidents/<incident_id>/retry", methods=["POST"])
@requires("staff")
@blp.doc(summary="Thử lại cuộc gọi kết nối bị sự cố / retry a failed connector call (the worker calls again)")
@blp.response(200, IncidentSchema)
@errors(blp, 401, 403, 404, 409, 422)
def retry_incident(code, incident_id):
    return connectors.retry_incident(services().dossiers.db, actor(), code, incident_id)
