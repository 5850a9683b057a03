"""Reads the web pages need beyond the core API, as plain functions over a session and an actor.

- `step_counts`: ready tasks per BPMN element of a procedure (the live counts on the diagram view);
- `dossier_steps`: every step of a dossier with its due and actual times and who held it (the process
  control slip), plus the documents checklist and the procedure facts (the receipt and appointment slip);
- `validate_upload`: the deploy checks without deploying (the modeler's "Kiểm tra").
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select

from engine.auth import Actor
from engine.dossiers import visible_dossier
from engine.errors import InvalidInput, NotFound, ProcedureInvalid
from engine.models import Attachment, Procedure, ProcedureVersion, Task, User, utcnow
from engine.procedures import load_procedure


def _iso(dt: datetime | None) -> str | None:
    from engine.dossiers import iso

    return iso(dt)


def _procedure(session, code: str) -> Procedure:
    proc = session.scalars(select(Procedure).where(Procedure.code == code)).first()
    if proc is None:
        raise NotFound(f"Không có thủ tục mã '{code}'", f"no procedure with code '{code}'")
    return proc


def step_counts(session, actor: Actor, code: str, now: datetime | None = None) -> dict:
    """`{code, version, now, agency, counts: {element_id: {ready, overdue, claimed}}, total}`.

    Ready tasks of every version (element ids are kept across versions by the modeler), grouped by the
    task's BPMN element id (`tasks.spec_name`). Supervisors and admins count every agency, others their own.
    """
    proc = _procedure(session, code)
    now = now or utcnow()
    q = (
        select(
            Task.spec_name,
            func.count(),
            func.sum(case((Task.due_at < now, 1), else_=0)),
            func.sum(case((Task.claimed_by.is_not(None), 1), else_=0)),
        )
        .where(Task.procedure_code == code, Task.state == "ready")
        .group_by(Task.spec_name)
    )
    agency = None
    if not actor.is_supervisor:
        agency = actor.agency
        q = q.where(Task.agency == agency)
    counts = {
        name: {"ready": int(n), "overdue": int(late or 0), "claimed": int(claimed or 0)}
        for name, n, late, claimed in session.execute(q)
    }
    return {
        "code": proc.code,
        "version": proc.current_version,
        "now": _iso(now),
        "agency": agency,
        "counts": counts,
        "total": sum(c["ready"] for c in counts.values()),
    }


def _documents(version: ProcedureVersion, attached: set[str]) -> list[dict]:
    """The documents checklist (`x-documents`) of the version's forms, intake form first."""
    order = [ut.get("form_key") for ut in (version.user_tasks or []) if ut.get("form_key")]
    forms = version.forms or {}
    keys = [k for k in order if k in forms] + sorted(k for k in forms if k not in order)
    out, seen = [], set()
    for key in dict.fromkeys(keys):
        schema = (forms[key] or {}).get("schema") or {}
        for doc in schema.get("x-documents") or []:
            if not isinstance(doc, dict) or doc.get("key") in seen:
                continue
            seen.add(doc.get("key"))
            out.append(
                {
                    "key": doc.get("key"),
                    "name": doc.get("name"),
                    "required": bool(doc.get("required")),
                    "description": doc.get("description"),
                    "attached": doc.get("key") in attached,
                }
            )
    return out


def dossier_steps(session, actor: Actor, code: str, now: datetime | None = None) -> dict:
    """Every step of a dossier, oldest first, for the process control slip and the receipt."""
    d = visible_dossier(session, actor, code)
    now = now or utcnow()
    version = session.get(ProcedureVersion, d.procedure_version_id)
    proc = session.get(Procedure, version.procedure_id)
    tasks = list(session.scalars(select(Task).where(Task.dossier_id == d.id).order_by(Task.created_at, Task.id)))
    people = {t.completed_by for t in tasks} | {t.claimed_by for t in tasks} | {d.created_by}
    people.discard(None)
    names = (
        dict(session.execute(select(User.username, User.full_name).where(User.username.in_(people))).all())
        if people
        else {}
    )
    steps = []
    for t in tasks:
        on_time = None
        if t.due_at is not None and t.completed_at is not None:
            on_time = t.completed_at <= t.due_at
        steps.append(
            {
                "id": t.id,
                "spec_name": t.spec_name,
                "title": t.title,
                "roles": list(t.roles or []),
                "state": t.state,
                "created_at": _iso(t.created_at),
                "due_at": _iso(t.due_at),
                "claimed_by": t.claimed_by,
                "claimed_at": _iso(t.claimed_at),
                "completed_at": _iso(t.completed_at),
                "completed_by": t.completed_by,
                "completed_by_name": names.get(t.completed_by) if t.completed_by else None,
                "on_time": on_time,
                "overdue": bool(t.state == "ready" and t.due_at is not None and t.due_at < now),
            }
        )
    attached = set(session.scalars(select(Attachment.document_key).where(Attachment.dossier_id == d.id)))
    meta = version.meta or {}
    return {
        "code": d.code,
        "procedure": {
            "code": proc.code,
            "name": proc.name,
            "agency": proc.agency,
            "version": version.version,
            "deadline": meta.get("deadline"),
            "cutoff": meta.get("cutoff"),
            "fee": meta.get("fee"),
            "level": meta.get("level"),
        },
        "received_by": {"username": d.created_by, "full_name": names.get(d.created_by)} if d.created_by else None,
        "steps": steps,
        "documents": _documents(version, attached),
    }


def validate_upload(actor: Actor, content: bytes, filename: str, form_files: dict[str, bytes], max_bytes: int) -> dict:
    """`{valid, code, name, process_id, problems: [{element, message_vi, message_en}], warnings}`."""
    actor.require("analyst")
    try:
        loaded = load_procedure(content, filename or "procedure.bpmn", form_files, max_bytes)
    except ProcedureInvalid as exc:
        return {
            "valid": False,
            "code": None,
            "name": None,
            "process_id": None,
            "problems": list(exc.details or [])
            or [{"element": None, "message_vi": exc.message_vi, "message_en": exc.message_en}],
            "warnings": [],
        }
    except InvalidInput as exc:  # a form file refused, or another input problem: name it, no element
        problems = []
        details = exc.details if isinstance(exc.details, dict) else {}
        for p in details.get("problems") or []:
            problems.append({"element": None, "message_vi": p.get("message_vi"), "message_en": p.get("message_en")})
        if not problems:
            problems = [{"element": None, "message_vi": exc.message_vi, "message_en": exc.message_en}]
        return {"valid": False, "code": None, "name": None, "process_id": None, "problems": problems, "warnings": []}
    return {
        "valid": True,
        "code": loaded.code,
        "name": loaded.name,
        "process_id": loaded.process_id,
        "problems": [],
        "warnings": list(loaded.warnings),
    }
