"""Attachments of a dossier (thành phần hồ sơ) and the documents checklist of intake.

Files are stored once by content: `var/attachments/<sha[:2]>/<sha256>`, written to a temporary file in
`var/attachments/tmp/` and renamed into place atomically; the same bytes uploaded twice are one file on disk
and two `Attachment` rows. The name people gave a file is kept only in the database (after
`forms.safe_filename`), never used as a path.

Who may do what:
- upload: staff of the dossier's agency with the role `receiver` (or an admin), while the dossier is not
  finished (else 409);
- list and download: any staff of the dossier's agency, supervisors and admins; another agency's dossier is
  404 (it is not shown to exist), a user of the agency without a staff role (e.g. `citizen`) gets 403;
- remove: who may upload, a document (not a result file), until intake is completed (`intake_done`: a step
  whose form shows the documents checklist was completed) — after that the documents are part of the
  record (409). The row goes with an audit event and a `removed_blobs` row naming its bytes, in one
  transaction; `collect_removed` (the worker's sweep) deletes the file later, once no attachment refers to
  those bytes (they are shared by content) and the file has not been written or reused for a grace period
  (docs/operations.md, "Removed documents").

Each checklist entry's state (`document_states`): `attached` (a file uploaded), `paper` (ticked as received
on paper in the intake form's `documents_received`), else `missing` (required) or `not_given` (optional).

Limits: a document of the procedure's checklist (`x-documents` of its intake form) has that entry's
`max_bytes` and `accept`; a file under any other key (or none) has `settings.max_upload_bytes` and the
default types (PDF, JPEG, PNG). Too large → TooLarge (413); a type the bytes do not prove, or a declared
type the bytes contradict → InvalidInput (422); an unsafe file name (folders, `..`, NUL…) → 422.

This module does not import Flask.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

import forms as forms_lib
from forms.documents import DEFAULT_ACCEPT

from . import report_counts
from .auth import Actor, visible_dossier
from .errors import Conflict, InvalidInput, NotFound, PermissionDenied, TooLarge
from .models import Attachment, Event, RemovedBlob, Task, utcnow
from .views import iso

DOCUMENTS_FIELD = "documents_received"
HEAD_BYTES = 8192
CHUNK = 64 * 1024
_SHA = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def storage_root(settings) -> Path:
    return Path(settings.var_dir) / "attachments"


def blob_path(settings, sha256: str) -> Path:
    if not _SHA.fullmatch(sha256 or ""):
        raise NotFound("Không tìm thấy tệp", "file not found")
    return storage_root(settings) / sha256[:2] / sha256


def attachment_view(a: Attachment) -> dict:
    return {
        "id": a.id,
        "kind": a.kind or "document",
        "document_key": a.document_key,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "uploaded_at": iso(a.uploaded_at),
        "uploaded_by": a.uploaded_by,
    }


def attachment_public_view(a: Attachment) -> dict:
    """An attachment as its applicant sees it: no officer's name, no storage hash."""
    return {
        "id": a.id,
        "kind": a.kind or "document",
        "document_key": a.document_key,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "uploaded_at": iso(a.uploaded_at),
    }


# -- the documents checklist ------------------------------------------------------------------------------
def checklist(runtime) -> list[dict]:
    """The documents checklist (thành phần hồ sơ) of a procedure version: the `x-documents` of every form,
    the forms of its user tasks in their order first (the intake form), then the others by key; a key
    declared by two forms counts once, as the first declares it. The one checklist of intake checks, uploads,
    the receipt and the pages."""
    forms = runtime.forms or {}
    order = [ut.get("form_key") for ut in (runtime.user_tasks or {}).values() if ut.get("form_key")]
    keys = [k for k in order if k in forms] + sorted(k for k in forms if k not in order)
    out, seen = [], set()
    for key in dict.fromkeys(keys):
        for doc in forms[key].documents():
            if doc["key"] not in seen:
                seen.add(doc["key"])
                out.append(doc)
    return out


def intake_form(runtime):
    """The form an applicant's submission is checked against: the one declaring the applicant's fields
    (`x-applicant-fields`), else the one declaring the documents checklist; None if neither exists."""
    forms = list((runtime.forms or {}).values())
    for form in forms:
        if form.applicant_fields():
            return form
    for form in forms:
        if form.documents():
            return form
    return None


def result_files(runtime) -> list[dict]:
    """The electronic result files the procedure's steps declare (`x-result-files` of their forms)."""
    out, seen = [], set()
    for form in (runtime.forms or {}).values():
        for doc in form.result_files():
            if doc["key"] not in seen:
                seen.add(doc["key"])
                out.append(doc)
    return out


def intake_done(s, dossier_id: int, runtime) -> bool:
    """Whether intake is completed: a completed step of the dossier has a form showing the documents
    checklist (one declaring `x-documents`)."""
    keys = [k for k, form in (runtime.forms or {}).items() if form.documents()]
    if not keys:
        return False
    return (
        s.scalar(
            select(Task.id)
            .where(Task.dossier_id == dossier_id, Task.state == "completed", Task.form_key.in_(keys))
            .limit(1)
        )
        is not None
    )


def document_states(s, dossier, runtime) -> list[dict]:
    """The procedure's checklist with each entry's state on this dossier (see the module docstring) and how
    many files were uploaded for it: what the receipt, the control slip and the dossier page show."""
    counts: dict[str, int] = {}
    for key in s.scalars(
        select(Attachment.document_key).where(
            Attachment.dossier_id == dossier.id, Attachment.kind == "document", Attachment.document_key.is_not(None)
        )
    ):
        counts[key] = counts.get(key, 0) + 1
    ticked = (dossier.data or {}).get(DOCUMENTS_FIELD) or []
    on_paper = {k for k in ticked if isinstance(k, str)} if isinstance(ticked, list) else set()
    out = []
    for doc in checklist(runtime):
        key = doc["key"]
        if counts.get(key):
            state = "attached"
        elif key in on_paper:
            state = "paper"
        else:
            state = "missing" if doc["required"] else "not_given"
        out.append(
            {
                "key": key,
                "name": doc["name"],
                "required": doc["required"],
                "description": doc.get("description"),
                "accept": list(doc.get("accept") or DEFAULT_ACCEPT),
                "max_bytes": doc.get("max_bytes"),
                "attached": bool(counts.get(key)),
                "received_on_paper": key in on_paper,
                "files": counts.get(key, 0),
                "state": state,
            }
        )
    return out


def provided_documents(s, dossier_id: int) -> set[str]:
    """Document keys with at least one uploaded attachment on the dossier."""
    return {
        k
        for k in s.scalars(
            select(Attachment.document_key)
            .where(Attachment.dossier_id == dossier_id, Attachment.document_key.is_not(None))
            .distinct()
        )
    }


def check_result_files(s, dossier, form) -> None:
    """Completing a step whose form declares required electronic result files (`x-result-files`): each is
    attached (kind `result`)."""
    results = form.result_files()
    if not any(d["required"] for d in results):
        return
    have = set(
        s.scalars(
            select(Attachment.document_key).where(Attachment.dossier_id == dossier.id, Attachment.kind == "result")
        )
    )
    absent = [d for d in results if d["required"] and d["key"] not in have]
    if absent:
        names = ", ".join(d["key"] for d in absent)
        raise InvalidInput(
            f"Chưa đính kèm kết quả điện tử bắt buộc: {names}",
            f"required electronic result files are missing: {names}",
            {"fields": {"result_files": "; ".join(f"{d['name']} ({d['key']})" for d in absent)}},
        )


def check_required_documents(s, dossier, runtime, form, data: dict) -> None:
    """Completing a form that shows the documents checklist (one that declares `x-documents`, the intake
    form): every required document of the procedure's `checklist` is uploaded or ticked in
    `documents_received`.

    The form may waive the check for some answers with `"x-documents-waived-when": {"decision": "refuse"}`
    (a refused intake needs no documents: missing documents are the reason to refuse).
    """
    if form is not None:
        check_result_files(s, dossier, form)
    if form is None or not isinstance(data, dict) or not form.documents():
        return
    waived = (form.schema or {}).get("x-documents-waived-when")
    if isinstance(waived, dict) and waived and all(data.get(k) == v for k, v in waived.items()):
        return
    docs = checklist(runtime)
    if not any(d["required"] for d in docs):
        return
    ticked = data.get(DOCUMENTS_FIELD) or []
    provided = {k for k in ticked if isinstance(k, str)} if isinstance(ticked, list) else set()
    provided |= provided_documents(s, dossier.id)
    missing = forms_lib.check_documents(docs, provided)
    if missing:
        names = ", ".join(d["key"] for d in docs if d["required"] and d["key"] not in provided)
        raise InvalidInput(
            f"Hồ sơ thiếu giấy tờ bắt buộc: {names}",
            f"required documents are missing: {names}",
            {"fields": {DOCUMENTS_FIELD: "; ".join(missing)}},
        )


# -- authorization --------------------------------------------------------------------------------------------
def _require_reader(actor: Actor) -> None:
    actor.require_staff()


# -- storing --------------------------------------------------------------------------------------------------
def _spool(root: Path, source, limit: int):
    """Copy `source` (bytes or a binary stream) to a temporary file; (tmp path, sha256, size, head).

    Stops reading at `limit + 1` bytes: the caller refuses a file larger than `limit`.
    """
    tmp_dir = root / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="up-")
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, (bytes, bytearray, memoryview)):
                chunks = iter([bytes(source)])
            else:
                chunks = iter(lambda: source.read(CHUNK), b"")
            for chunk in chunks:
                if not chunk:
                    break
                take = chunk[: limit + 1 - size]
                if len(head) < HEAD_BYTES:
                    head += take[: HEAD_BYTES - len(head)]
                digest.update(take)
                out.write(take)
                size += len(take)
                if size > limit:
                    break
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp), digest.hexdigest(), size, head


def _put_blob(settings, tmp: Path, sha: str) -> Path:
    path = blob_path(settings, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.utime(path)  # reused: touched, so `collect_removed` leaves it for its grace period
        tmp.unlink()
    except FileNotFoundError:
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)  # atomic; a concurrent upload of the same bytes writes the same content
    return path


#: how long a removed document's file stays after it was last written or reused (an upload of the same
#: bytes may be between storing the file and committing its row for that long)
REMOVED_GRACE = timedelta(hours=1)


def collect_removed(db, settings, now=None, grace: timedelta = REMOVED_GRACE, limit: int = 200) -> dict:
    """Delete the files of removed documents (table `removed_blobs`, oldest first, `limit` at a time) that no
    attachment refers to any more and nobody wrote or reused within `grace`. A crash anywhere loses nothing:
    until the removal commits there is no candidate (and the row still refers to the file); a candidate stays
    until its file is gone, so a crash between deleting a file and committing is done again next time.
    Returns {"deleted", "shared", "recent"}."""
    now = now or utcnow()
    cutoff = now - grace
    out = {"deleted": 0, "shared": 0, "recent": 0}
    with db.uow() as s:
        rows = s.scalars(
            select(RemovedBlob)
            .where(RemovedBlob.removed_at <= cutoff)  # ix_removed_blobs_removed_at
            .order_by(RemovedBlob.removed_at, RemovedBlob.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            if s.scalar(select(Attachment.id).where(Attachment.sha256 == row.sha256).limit(1)) is not None:
                out["shared"] += 1  # another attachment has the same bytes: the file is theirs too
                s.delete(row)
                continue
            if _delete_if_idle(settings, row.sha256, cutoff.timestamp()):
                out["deleted"] += 1
                s.delete(row)
            else:
                out["recent"] += 1  # written or reused within the grace period: looked at again later
    return out


def _delete_if_idle(settings, sha: str, cutoff: float) -> bool:
    """Delete the file unless it was written or touched after `cutoff`; True once it is gone. It is first moved
    aside (atomic), then its time read again: an upload that touched it meanwhile put it back in place."""
    path = blob_path(settings, sha)
    aside = path.with_name(sha + ".removed")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        if not aside.exists():  # gone already (or moved aside by a run that stopped before deleting it)
            return True
    if os.stat(aside).st_mtime > cutoff:
        os.replace(aside, path)  # the same bytes, whoever wrote them
        return False
    os.unlink(aside)
    return True


def _check_key(document_key):
    if document_key is not None:
        document_key = str(document_key).strip() or None
    if document_key is not None and not _KEY.fullmatch(document_key):
        raise InvalidInput(
            "Mã giấy tờ không hợp lệ (chữ, số, _ - ., tối đa 100 ký tự)",
            "invalid document key (letters, digits, _ - ., at most 100 characters)",
            {"fields": {"document_key": "invalid"}},
        )
    return document_key


def store(
    service, actor: Actor, code: str, document_key: str | None, filename: str, content_type: str | None, source
) -> dict:
    """Attach one file to a dossier; the new attachment's view. See the module docstring for the rules."""
    settings = service.settings
    document_key = _check_key(document_key)
    # Who and which dossier first (nothing is written for a refused caller).
    with service.db.read() as s:
        d = visible_dossier(s, actor, code)
        actor.require("receiver")
        if not actor.is_admin and d.agency != actor.agency:
            raise PermissionDenied(
                "Chỉ cán bộ tiếp nhận của cơ quan giải quyết được thêm giấy tờ",
                "only a receiver of the dossier's agency may add documents",
            )
        if d.finished:
            raise Conflict(
                "Hồ sơ đã kết thúc, không thể thêm giấy tờ", "the dossier is finished; no documents can be added"
            )
        rt = service.runtimes.get(s, d.procedure_version_id)
        docs = {doc["key"]: doc for doc in checklist(rt)}
        results = {doc["key"]: doc for doc in result_files(rt)}
    kind = "result" if document_key in results and document_key not in docs else "document"
    document = docs.get(document_key) or results.get(document_key) if document_key else None
    if document is None:
        document = {
            "key": document_key or "",
            "name": document_key or "tệp đính kèm",
            "accept": list(DEFAULT_ACCEPT),
            "max_bytes": settings.max_upload_bytes,
        }
    spooled = spool_checked(settings, document, filename, content_type, source)

    def owner(s):
        d = visible_dossier(s, actor, code, lock=True)
        if d.finished:
            raise Conflict(
                "Hồ sơ đã kết thúc, không thể thêm giấy tờ", "the dossier is finished; no documents can be added"
            )
        return d

    with service.db.uow() as s:
        return save_spooled(s, owner(s), spooled, document_key, kind, actor.username)


def spool_checked(settings, document: dict, filename, content_type, source) -> dict:
    """Read an upload into the content store, checked against its checklist entry (size, type by content,
    safe name); `{sha, size, filename, content_type}` to record with `save_spooled`. TooLarge (413) or
    InvalidInput (422) leave nothing behind."""
    safe = forms_lib.safe_filename(filename if filename is not None else "")
    limit = int(document["max_bytes"])
    root = storage_root(settings)
    tmp, sha, size, head = _spool(root, source, limit)
    try:
        if size > limit:
            raise TooLarge(
                f"Tệp '{safe}' quá lớn (tối đa {limit:,} byte)",
                f"the file '{safe}' is too large (at most {limit:,} bytes)",
                {"fields": {"file": f"> {limit} bytes"}, "max_bytes": limit},
            )
        safe, verified = forms_lib.check_attachment(document, safe, content_type, head, size)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _put_blob(settings, tmp, sha)
    return {"sha": sha, "size": size, "filename": safe, "content_type": verified}


def save_spooled(s, d, spooled: dict, document_key: str | None, kind: str, by: str) -> dict:
    """Record a spooled file on dossier `d` (locked by the caller), with its audit event."""
    now = utcnow()
    if kind == "result":  # the first electronic result counts in the report (engine/report_counts.py)
        had = s.execute(
            select(Attachment.id).where(Attachment.dossier_id == d.id, Attachment.kind == "result").limit(1)
        )
        report_counts.result_changed(s, d, had=had.first() is not None, has=True)
    a = Attachment(
        dossier_id=d.id,
        kind=kind,
        document_key=document_key,
        sha256=spooled["sha"],
        filename=spooled["filename"],
        content_type=spooled["content_type"],
        size=spooled["size"],
        uploaded_by=by,
        uploaded_at=now,
    )
    s.add(a)
    s.flush()
    s.add(
        Event(
            dossier_id=d.id,
            actor=by,
            action="attachment.added",
            at=now,
            from_status=d.status,
            to_status=d.status,
            details={
                "attachment_id": a.id,
                "kind": kind,
                "document_key": document_key,
                "filename": spooled["filename"],
                "content_type": spooled["content_type"],
                "size": spooled["size"],
                "sha256": spooled["sha"],
            },
        )
    )
    return attachment_view(a)


def list_attachments(service, actor: Actor, code: str) -> list[dict]:
    with service.db.read() as s:
        d = visible_dossier(s, actor, code)
        _require_reader(actor)
        rows = s.scalars(select(Attachment).where(Attachment.dossier_id == d.id).order_by(Attachment.id)).all()
        return [attachment_view(a) for a in rows]


def attachments_overview(service, actor: Actor, code: str) -> dict:
    """The dossier's attachments, its checklist's states and whether the caller may still remove documents:
    `{items, documents, removable}` (the dossier page's documents panel)."""
    with service.db.read() as s:
        d = visible_dossier(s, actor, code)
        _require_reader(actor)
        rows = s.scalars(select(Attachment).where(Attachment.dossier_id == d.id).order_by(Attachment.id)).all()
        rt = service.runtimes.get(s, d.procedure_version_id)
        may_upload = (actor.is_admin or "receiver" in actor.roles) and (actor.is_admin or d.agency == actor.agency)
        return {
            "items": [attachment_view(a) for a in rows],
            "documents": document_states(s, d, rt),
            "uploadable": bool(may_upload and not d.finished),
            "removable": bool(may_upload and not d.finished and not intake_done(s, d.id, rt)),
        }


def remove(service, actor: Actor, code: str, attachment_id: int) -> None:
    """Remove a document uploaded by mistake, before intake is completed (see the module docstring)."""
    with service.db.uow() as s:
        d = visible_dossier(s, actor, code, lock=True)
        actor.require("receiver")
        if not actor.is_admin and d.agency != actor.agency:
            raise PermissionDenied(
                "Chỉ cán bộ tiếp nhận của cơ quan giải quyết được xóa giấy tờ",
                "only a receiver of the dossier's agency may remove documents",
            )
        a = s.get(Attachment, attachment_id) if isinstance(attachment_id, int) and 0 < attachment_id < 2**31 else None
        if a is None or a.dossier_id != d.id:
            raise NotFound("Không tìm thấy tệp đính kèm", "attachment not found")
        if d.finished or (a.kind or "document") != "document":
            raise Conflict(
                "Không thể xóa: hồ sơ đã kết thúc hoặc tệp là kết quả giải quyết",
                "cannot remove: the dossier is finished or the file is a result",
            )
        if intake_done(s, d.id, service.runtimes.get(s, d.procedure_version_id)):
            raise Conflict(
                "Hồ sơ đã tiếp nhận xong: giấy tờ đã thuộc hồ sơ, không xóa được",
                "intake is completed: the documents are part of the record and cannot be removed",
            )
        view = attachment_view(a)
        s.delete(a)
        s.add(RemovedBlob(sha256=a.sha256, removed_at=utcnow()))  # its file: collect_removed
        s.add(
            Event(
                dossier_id=d.id,
                actor=actor.username,
                action="attachment.removed",
                at=utcnow(),
                from_status=d.status,
                to_status=d.status,
                details={k: view[k] for k in ("document_key", "filename", "content_type", "size", "sha256")}
                | {"attachment_id": view["id"]},
            )
        )


def open_attachment(service, actor: Actor, code: str, attachment_id: int) -> tuple[dict, Path]:
    """(attachment view, path of its bytes) for a download."""
    with service.db.read() as s:
        d = visible_dossier(s, actor, code)
        _require_reader(actor)
        a = (
            s.get(Attachment, attachment_id) if isinstance(attachment_id, int) and 0 < attachment_id < 2**31 else None
        )  # INTEGER column
        if a is None or a.dossier_id != d.id:
            raise NotFound("Không tìm thấy tệp đính kèm", "attachment not found")
        view = attachment_view(a)
    path = blob_path(service.settings, view["sha256"])
    if not path.is_file():
        raise NotFound("Tệp đính kèm không còn trên đĩa", "the attachment's file is missing from storage")
    return view, path
