"""The shapes in which dossiers, tasks and audit events leave the engine: plain dicts, times in ISO 8601 at
UTC+7 (`iso`). The HTTP schemas (api/schemas.py) mirror them."""

from __future__ import annotations

from datetime import datetime

from .calendar import VN_TZ
from .domain import dossier_overdue, step_overdue
from .models import utcnow
from .statuses import Status


def iso(dt: datetime | None) -> str | None:
    """An instant as ISO 8601 at UTC+7, or None."""
    return dt.astimezone(VN_TZ).isoformat() if dt else None


def _status_fields(d) -> dict:
    st = Status(d.status)
    return {
        "code": d.code,
        "status": st.value,
        "status_code": st.code,
        "status_label": st.label_vi,
        "status_label_en": st.label_en,
        "procedure_code": d.procedure_code,
        "agency": d.agency,
        "channel": d.channel,
    }


def task_view(t, dossier_paused: bool = False, now: datetime | None = None) -> dict:
    """A task; `dossier_paused`: its dossier is paused for a supplement (its steps are then not overdue)."""
    return {
        "id": t.id,
        "name": t.title,
        "spec_name": t.spec_name,
        "roles": t.roles,
        "assignee": t.assignee,
        "state": t.state,
        "claimed_by": t.claimed_by,
        "due_at": iso(t.due_at),
        "overdue": step_overdue(t, now or utcnow(), dossier_paused),
        "created_at": iso(t.created_at),
        "completed_at": iso(t.completed_at),
        "completed_by": t.completed_by,
        "dossier_code": t.dossier_code,
        "procedure_code": t.procedure_code,
        "agency": t.agency,
        "form_key": t.form_key,
    }


def dossier_view(d, open_tasks) -> dict:
    """A dossier with its form data and open tasks."""
    now = utcnow()
    paused = d.paused_at is not None
    return {
        **_status_fields(d),
        "applicant": {
            "name": d.applicant_name,
            "id_number": d.applicant_id_number,
            "phone": d.applicant_phone,
            "email": d.applicant_email,
        },
        "data": d.data or {},
        "received_at": iso(d.received_at),
        "due_at": iso(d.due_at),
        "original_due_at": iso(d.original_due_at),
        "overdue": dossier_overdue(d, now),
        "finished": d.finished,
        "finished_at": iso(d.finished_at),
        "processed_at": iso(d.processed_at),
        "returned_at": iso(d.returned_at),
        "supplement_count": d.supplement_count,
        "paused": paused,
        "extended": d.extended_at is not None,
        "tasks": [task_view(t, paused, now) for t in open_tasks],
        "version": d.version,
    }


def dossier_summary(d, now: datetime | None = None) -> dict:
    """A dossier as a list shows it: no form data, no tasks."""
    return {
        **_status_fields(d),
        "applicant_name": d.applicant_name,
        "received_at": iso(d.received_at),
        "due_at": iso(d.due_at),
        "overdue": dossier_overdue(d, now or utcnow()),
        "finished": d.finished,
        "finished_at": iso(d.finished_at),
        "version": d.version,
    }


def event_view(e) -> dict:
    return {
        "id": e.id,
        "at": iso(e.at),
        "actor": e.actor,
        "action": e.action,
        "from_status": e.from_status,
        "to_status": e.to_status,
        "task_id": e.task_id,
        "details": e.details or {},
    }
