"""The task inbox: ready tasks the caller may work on; one task with its form; claim, unclaim, complete.

Completion answers with the dossier's new state, its next open tasks included. Conflicts are 409: the task
is already completed, someone else holds it, or the dossier changed since the caller read it (`version` in
the body or `If-Match: "<version>"`). Form errors are 422 with one message per field.
"""

from __future__ import annotations

from flask_smorest import Blueprint

from engine import queries
from engine.errors import InvalidInput

from . import idempotency
from .auth import authenticate, requires
from .common import PagingArgs, errors
from .context import actor, read_session, services
from .hotpath import hot
from .schemas import (
    CompleteHeaders,
    CompleteSchema,
    DossierSchema,
    TaskDetailSchema,
    TaskListArgs,
    TaskPageSchema,
    TaskSchema,
)

blp = Blueprint(
    "tasks",
    __name__,
    url_prefix="/api/v1/tasks",
    description="Hộp việc / task inbox: nhận, trả lại, hoàn thành bước xử lý",
)
blp.before_request(authenticate)


class TaskListQuery(TaskListArgs, PagingArgs):
    pass


@blp.route("", methods=["GET"])
@requires("staff")
@blp.doc(
    summary="Hộp việc / inbox: ready tasks I may work on",
    description="Ready tasks of the caller's agency with one of the caller's roles, or assigned to / held by "
    "the caller; supervisors and admins see every agency. `mine=true`: only those I hold or am "
    "assigned. Most urgent first (due time, then age).",
)
@blp.arguments(TaskListQuery(), location="query")
@blp.response(200, TaskPageSchema)
@errors(blp, 401, 403, 422)
def inbox(args):
    with read_session() as s:
        return queries.list_tasks(
            s,
            actor(),
            mine=args["mine"],
            role=args.get("role"),
            overdue=args.get("overdue"),
            page=args["page"],
            per_page=args["per_page"],
            procedure_code=args.get("procedure_code"),
            q=args.get("q"),
        ).to_dict()


@blp.route("/<task_id>", methods=["GET"])
@requires("staff")
@blp.doc(summary="Một công việc / a task: its form, current values, due date, dossier summary")
@blp.response(200, TaskDetailSchema)
@errors(blp, 401, 403, 404)
def get(task_id):
    svc = services()
    with read_session() as s:
        return queries.task_detail(s, actor(), task_id, svc.dossiers.runtimes)


@blp.route("/<task_id>/claim", methods=["POST"])
@requires("staff", task=True)
@blp.doc(summary="Nhận việc / claim a task", description="409 if someone else holds it or it is no longer open.")
@blp.response(200, TaskSchema)
@errors(blp, 401, 403, 404, 409)
def claim(task_id):
    return services().dossiers.claim(actor(), task_id)


@blp.route("/<task_id>/unclaim", methods=["POST"])
@requires("staff", task=True)
@blp.doc(summary="Trả lại việc / give a task back", description="409 if someone else holds it.")
@blp.response(200, TaskSchema)
@errors(blp, 401, 403, 404, 409)
def unclaim(task_id):
    return services().dossiers.unclaim(actor(), task_id)


def _version(body: dict, headers: dict) -> int | None:
    version = body.get("version")
    raw = headers.get("if_match")
    if raw is not None:
        text = raw.strip()
        if text.startswith("W/"):
            text = text[2:]
        text = text.strip('"')
        if not text.isdigit() or len(text) > 12:
            raise InvalidInput(
                'If-Match phải là số phiên bản của hồ sơ, ví dụ "3"',
                'If-Match must be the dossier\'s version number, e.g. "3"',
                {"fields": {"If-Match": '"<version>"'}},
            )
        if version is not None and int(text) != version:
            raise InvalidInput(
                "If-Match và version khác nhau", "If-Match and version disagree", {"fields": {"version": "≠ If-Match"}}
            )
        version = int(text)
    return version


@blp.route("/<task_id>/complete", methods=["POST"])
@requires("staff", task=True)
@hot  # the decorators below document it; the request runs a cheaper path (api/hotpath.py)
@blp.doc(
    summary="Hoàn thành bước / complete a task with its data",
    description="200 with the dossier's new state and next open tasks. 409: already completed, held by "
    "someone else, or the dossier changed (`version` / `If-Match`). 422: the form rejects "
    "the data (`fields`). Send `Idempotency-Key` to make retries safe.",
)
@blp.arguments(CompleteHeaders(), location="headers")
@blp.arguments(CompleteSchema(), required=False)
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def complete(headers, body, task_id):
    version = _version(body, headers)
    a, svc = actor(), services()

    def call():
        return svc.dossiers.complete_task(a, task_id, body.get("data") or {}, expected_version=version)

    return idempotency.run(
        headers.get("idempotency_key"),
        f"POST /api/v1/tasks/{task_id}/complete",
        {"data": body.get("data") or {}, "version": version},
        200,
        call,
    )
