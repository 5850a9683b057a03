"""Legal actions on a dossier (engine/actions.py): supplement request and receipt, refusal, withdrawal,
stop, extension (apology letter with a new due time).

    POST /api/v1/dossiers/{code}/supplement-request   {reason, documents: [..]}   receiver
    POST /api/v1/dossiers/{code}/supplement-received  {note}                      receiver
    POST /api/v1/dossiers/{code}/refuse               {reason}                    receiver (before processing)
    POST /api/v1/dossiers/{code}/withdraw             {reason}                    receiver (applicant's request)
    POST /api/v1/dossiers/{code}/stop                 {reason}                    receiver or agency leader
    POST /api/v1/dossiers/{code}/extend               {reason, new_due_at | extra_working_days}   receiver

Each answers 200 with the dossier's new state. 403: wrong role or agency; 404: no such dossier (or not
visible); 409: the dossier is closed, or the action does not fit its status (a second extension, a refusal
after processing started, an extension far from the due time); 422: a missing reason or a bad date, naming
the field. The module also installs, at application start, the wake-ups that schedule the background worker
at each new `next_timer_at` (engine/worker.py).
"""

from __future__ import annotations

import logging

import marshmallow as ma
from flask_smorest import Blueprint
from marshmallow import validate

from engine.actions import MAX_DOCUMENTS, MAX_REASON, LegalActions
from engine.dossier import MAX_EXTRA_DAYS, WHO_MAY

from .auth import authenticate, requires
from .common import Str, errors
from .context import actor, services
from .schemas import DossierSchema

log = logging.getLogger("motcua.api")

blp = Blueprint(
    "legal_actions",
    __name__,
    url_prefix="/api/v1/dossiers",
    description="Thao tác pháp lý trên hồ sơ / legal actions: bổ sung, từ chối, rút, dừng, gia hạn",
)
blp.before_request(authenticate)


def Reason(required=True):
    return ma.fields.String(
        required=required,
        allow_none=not required,
        validate=validate.Length(min=1, max=MAX_REASON),
        metadata={"description": "lý do, ghi vào nhật ký và gửi người nộp / reason"},
    )


class SupplementRequestSchema(ma.Schema):
    reason = Reason()
    documents = ma.fields.List(
        ma.fields.String(validate=validate.Length(min=1, max=500)),
        validate=validate.Length(max=MAX_DOCUMENTS),
        load_default=list,
        metadata={"description": "giấy tờ cần bổ sung / documents to supply", "example": ["Bản sao giấy chứng sinh"]},
    )


class SupplementReceivedSchema(ma.Schema):
    note = Str(validate=validate.Length(max=MAX_REASON))


class ReasonSchema(ma.Schema):
    reason = Reason()


class ExtendSchema(ma.Schema):
    reason = Reason()
    new_due_at = ma.fields.AwareDateTime(allow_none=True, metadata={"example": "2026-03-12T17:00:00+07:00"})
    extra_working_days = ma.fields.Float(
        allow_none=True,
        validate=validate.Range(min=0, min_inclusive=False, max=MAX_EXTRA_DAYS),
        metadata={"description": "counted from the current due time, or from now if that is past"},
    )


def _actions() -> LegalActions:
    svc = services()
    return LegalActions(svc.dossiers)


@blp.route("/<code>/supplement-request", methods=["POST"])
@requires(roles=WHO_MAY["request_supplement"][0])
@blp.doc(
    summary="Yêu cầu bổ sung hồ sơ / ask for missing documents (receiver)",
    description="Status 5, the deadline clock pauses. A second request is accepted but counts as late "
    "(national indicators).",
)
@blp.arguments(SupplementRequestSchema())
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def supplement_request(body, code):
    return _actions().request_supplement(actor(), code, body["reason"], body.get("documents"))


@blp.route("/<code>/supplement-received", methods=["POST"])
@requires(roles=WHO_MAY["supplement_received"][0])
@blp.doc(
    summary="Nhận hồ sơ bổ sung / the documents came back (receiver)",
    description="Back to the status before the request; the due time moves on by the working time paused.",
)
@blp.arguments(SupplementReceivedSchema())
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def supplement_received(body, code):
    return _actions().supplement_received(actor(), code, body.get("note"))


@blp.route("/<code>/refuse", methods=["POST"])
@requires(roles=WHO_MAY["refuse"][0])
@blp.doc(summary="Từ chối tiếp nhận / refuse at intake (receiver; before processing)")
@blp.arguments(ReasonSchema())
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def refuse(body, code):
    return _actions().refuse(actor(), code, body["reason"])


@blp.route("/<code>/withdraw", methods=["POST"])
@requires(roles=WHO_MAY["withdraw"][0])
@blp.doc(summary="Rút hồ sơ theo yêu cầu người nộp / withdraw at the applicant's request (receiver)")
@blp.arguments(ReasonSchema())
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def withdraw(body, code):
    return _actions().withdraw(actor(), code, body["reason"])


@blp.route("/<code>/stop", methods=["POST"])
@requires(roles=WHO_MAY["stop"][0])
@blp.doc(summary="Dừng xử lý / stop processing (receiver or agency leader)")
@blp.arguments(ReasonSchema())
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def stop(body, code):
    return _actions().stop(actor(), code, body["reason"])


@blp.route("/<code>/extend", methods=["POST"])
@requires(roles=WHO_MAY["extend"][0])
@blp.doc(
    summary="Xin lỗi và hẹn lại ngày trả / apology letter with a new due time (receiver; once)",
    description="Only when the dossier is overdue or has less than one working day left; give exactly one "
    "of `new_due_at` and `extra_working_days`. `original_due_at` keeps the legal due time.",
)
@blp.arguments(ExtendSchema())
@blp.response(200, DossierSchema)
@errors(blp, 401, 403, 404, 409, 422)
def extend(body, code):
    return _actions().extend(
        actor(),
        code,
        body["reason"],
        new_due_at=body.get("new_due_at"),
        extra_working_days=body.get("extra_working_days"),
    )


def init_app(app) -> None:
    """Schedule a worker wake-up at each `next_timer_at` this process commits, and a delivery after each commit
    that wrote outbox rows (engine/worker.py)."""
    svc = app.extensions["motcua"]
    try:
        from engine.worker import Worker, install_wakeups

        worker = Worker(svc.settings, db=svc.db, service=svc.dossiers)

        def schedule(when):
            if not app.testing:  # test clients leave the queue alone; tests/test_worker.py covers wake-ups
                worker.schedule_wakeup(when)

        def deliver():
            if not app.testing:  # the channel tests run the delivery task themselves
                worker.enqueue_delivery()

        install_wakeups(svc.db, schedule, deliver)
    except Exception:  # no queue: the worker's periodic sweep still finds every timer
        log.exception("worker wake-ups not installed; timers fire on the periodic sweep")
