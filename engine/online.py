"""Citizens online: submitting a dossier from home, answering a supplement request, asking to withdraw,
downloading one's documents and electronic results, paying the fee. docs/online.md tells the flow.

Submission (`submit`):
- who: anyone; an anonymous caller is limited to `SUBMIT_PER_IP` per client IP and `SUBMIT_PER_PHONE` per
  applicant phone (database counters shared by every process, engine/ratelimit.py); a signed-in citizen's
  dossier must carry their own phone (code sign-in) or ID number (identity provider), so it is theirs;
- which procedures: those whose `level` takes online submissions (engine/catalogue.py, `ONLINE_LEVELS`);
  level 1 or 2 is a 422 naming the level; `agency` defaults to the procedure's;
- what is checked before anything is written: the applicant (name, phone), `data` against the intake form's
  applicant part (forms.Form.applicant_form: 422 per field), each file against its checklist entry (size:
  413, type proved by the bytes and a safe name: 422), as for desk uploads (engine/attachments.py);
- what happens: the dossier starts in status 1 (new) on channel 2 (online); its intake task opens in the
  inbox of the receiving agency's receivers; the files are the dossier's documents; the applicant is told.
  The officer then accepts (status 2 received, then 4 in process) or refuses (3, with the reason the intake
  form requires); each change is told to the applicant through the outbox.

From home (a signed-in citizen, their own dossier only; someone else's is a 404):
- `supplement`: upload the missing documents while the dossier is in status 5; the receiving officer is
  told and confirms with the supplement-received action (the clock resumes then, engine/actions.py);
- `withdraw`: status 7, while the dossier is not processed (not 9 or 10, not closed);
- `open_file`: download one of the dossier's documents or electronic result files;
- `payment_link` and `confirm_payment`: engine/payments.py.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from . import catalogue, ratelimit
from .attachments import (
    attachment_public_view,
    blob_path,
    checklist,
    intake_form,
    save_spooled,
    spool_checked,
)
from .auth import Actor
from .citizens import Citizen, normalize_phone, owned_dossier
from .errors import Conflict, InvalidInput, NotFound
from .models import Attachment, Event, Notification, ProcedureVersion, utcnow
from .procedures import variant_for
from .ratelimit import Limit
from .statuses import Channel, Status

log = logging.getLogger("motcua.online")

SUBMIT_PER_IP = Limit("submit-ip", 10, 3600)
SUBMIT_PER_PHONE = Limit("submit-phone", 5, 3600)
MAX_FILES = 30


def portal_actor(agency: str, citizen: Citizen | None) -> Actor:
    """Who an online submission is recorded as: the citizen (or `online` for an anonymous one), acting at the
    receiving agency's online desk. It has no staff role: it only starts the dossier (see `submit`)."""
    return Actor(citizen.subject if citizen else "online", frozenset({"receiver"}), agency, "Cổng dịch vụ công")


def _procedure_for_online(s, code: str, agency: str | None) -> tuple[dict, str, int]:
    """The variant the receiving agency runs (docs/security.md): the one asked for, else the code's only
    (or province-wide) one; its metadata, the receiving agency, its current version id."""
    if not isinstance(code, str) or not 0 < len(code) <= 64:
        raise NotFound(f"Không có thủ tục mã '{code}'", f"no procedure with code '{code}'")
    vid, owner = variant_for(s, code, (agency or "").strip() or None)
    v = s.get(ProcedureVersion, vid)
    meta = v.meta or {}
    level = str(meta.get("level") or "")
    if not catalogue.takes_online(level):
        shown = level or "không khai báo / none"
        raise InvalidInput(
            f"Thủ tục '{code}' ở mức độ {shown}, không nhận hồ sơ trực tuyến (chỉ mức độ 3, 4, toàn trình, một phần)",
            f"procedure '{code}' is at level {shown}, which takes no online submission (only 3, 4, toan_trinh, mot_phan)",
            {"fields": {"procedure_code": f"level {shown}"}, "level": level or None},
        )
    return meta, (agency or owner or meta.get("agency") or "").strip(), vid


def _applicant(applicant: dict, citizen: Citizen | None) -> dict:
    name = str(applicant.get("name") or "").strip()
    fields = {}
    if not name:
        fields["applicant.name"] = "Trường bắt buộc / Required"
    phone = applicant.get("phone")
    try:
        phone = normalize_phone(phone) if phone else None
    except InvalidInput:
        fields["applicant.phone"] = "Số điện thoại không hợp lệ / invalid phone number"
    if not phone and not (citizen and citizen.id_number):
        fields.setdefault("applicant.phone", "Cần số điện thoại để nhận thông báo / a phone is required")
    if fields:
        raise InvalidInput(
            "Thông tin người nộp chưa đầy đủ hoặc không hợp lệ",
            "the applicant's details are incomplete",
            {"fields": fields},
        )
    out = {
        "name": name[:200],
        "id_number": (str(applicant.get("id_number") or "").strip() or None),
        "phone": phone,
        "email": (str(applicant.get("email") or "").strip() or None),
    }
    if citizen is not None:
        if citizen.phone and out["phone"] != citizen.phone:
            raise InvalidInput(
                "Số điện thoại người nộp phải là số bạn đã đăng nhập",
                "the applicant's phone must be the one you signed in with",
                {"fields": {"applicant.phone": citizen.phone}},
            )
        if citizen.id_number:
            if out["id_number"] and out["id_number"] != citizen.id_number:
                raise InvalidInput(
                    "Số định danh người nộp phải là số định danh của bạn",
                    "the applicant's ID number must be yours",
                    {"fields": {"applicant.id_number": citizen.id_number}},
                )
            out["id_number"] = citizen.id_number
    return out


def _spool_files(settings, docs: dict, files) -> list[tuple[str, dict]]:
    """Check and store every uploaded file against its checklist entry; [(key, spooled)]."""
    if len(files) > MAX_FILES:
        raise InvalidInput(
            f"Tối đa {MAX_FILES} tệp", f"at most {MAX_FILES} files", {"fields": {"files": f"max {MAX_FILES}"}}
        )
    out = []
    for key, filename, content_type, stream in files:
        if key not in docs:
            raise InvalidInput(
                f"'{key}' không có trong danh mục thành phần hồ sơ của thủ tục",
                f"'{key}' is not in the procedure's documents checklist",
                {"fields": {key: ", ".join(docs) or "—"}},
            )
        out.append((key, spool_checked(settings, docs[key], filename, content_type, stream)))
    return out


def submit(service, procedure_code: str, applicant: dict, data: dict, files=(), *, agency=None, citizen=None, ip="-"):
    """Start an online dossier (module docstring). The answer of `POST /public/dossiers`."""
    files = list(files or [])
    with service.db.read() as s:
        meta, agency, vid = _procedure_for_online(s, procedure_code, agency)
        rt = service.runtimes.get(s, vid)
    person = _applicant(applicant or {}, citizen)
    form = intake_form(rt)
    if form is not None and form.applicant_fields():
        data = form.applicant_form().validate(data or {})
    elif data:
        raise InvalidInput(
            "Thủ tục này không có trường nào để người nộp khai trực tuyến",
            "this procedure has no fields for the applicant to fill in online",
            {"fields": {k: "không dùng / not used" for k in list(data)[:20]}},
        )
    if citizen is None:
        hits = [(SUBMIT_PER_IP, ip)]
        if person["phone"]:
            hits.append((SUBMIT_PER_PHONE, person["phone"]))
        ratelimit.check(
            service.db,
            *hits,
            vi="Quá nhiều hồ sơ được nộp từ địa chỉ hoặc số điện thoại này; vui lòng thử lại sau",
            en="too many submissions from this address or phone; try again later",
        )
    docs = {d["key"]: d for d in checklist(rt)}
    spooled = _spool_files(service.settings, docs, files)
    saved: list[dict] = []
    by = citizen.subject if citizen else "online"

    def attach(s, d) -> None:  # the documents are part of the submission: the same transaction
        saved.extend(attachment_public_view_of(save_spooled(s, d, sp, key, "document", by)) for key, sp in spooled)

    view = service.start_dossier(
        portal_actor(agency, citizen),
        procedure_code,
        person,
        channel=Channel.ONLINE,
        data=data or {},
        also=attach if spooled else None,
    )
    return {
        "code": view["code"],
        "status": view["status"],
        "status_code": view["status_code"],
        "status_label": view["status_label"],
        "procedure_code": view["procedure_code"],
        "agency": view["agency"],
        "channel": view["channel"],
        "received_at": view["received_at"],
        "due_at": view["due_at"],
        "documents": saved,
    }


def owned_or_code(s, code: str):
    from .models import Dossier

    return s.scalars(select(Dossier).where(Dossier.code == code).with_for_update()).one()


def attachment_public_view_of(view: dict) -> dict:
    return {k: view[k] for k in ("id", "kind", "document_key", "filename", "content_type", "size", "uploaded_at")}


def supplement(service, citizen: Citizen, code: str, files, note: str | None = None) -> list[dict]:
    """The citizen's answer to a supplement request: the missing documents (module docstring)."""
    files = list(files or [])
    with service.db.read() as s:
        d = owned_dossier(s, citizen, code)
        _require_status(d, {Status.SUPPLEMENT_REQUESTED}, "nộp bổ sung", "add documents")
        docs = {doc["key"]: doc for doc in checklist(service.runtimes.get(s, d.procedure_version_id))}
    if not files:
        raise InvalidInput(
            "Cần ít nhất một tệp giấy tờ bổ sung", "at least one document is needed", {"fields": {"files": "Thiếu"}}
        )
    if note is not None and len(note) > 2000:
        raise InvalidInput("Ghi chú quá dài", "the note is too long", {"fields": {"note": "max 2000"}})
    spooled = _spool_files(service.settings, docs, files)
    now = utcnow()
    with service.db.uow() as s:
        d = owned_dossier(s, citizen, code, lock=True)
        _require_status(d, {Status.SUPPLEMENT_REQUESTED}, "nộp bổ sung", "add documents")
        saved = [save_spooled(s, d, sp, key, "document", citizen.subject) for key, sp in spooled]
        s.add(
            Event(
                dossier_id=d.id,
                actor=citizen.subject,
                action="supplement.uploaded",
                at=now,
                from_status=d.status,
                to_status=d.status,
                details={"documents": [a["document_key"] for a in saved], "note": note},
            )
        )
        s.add(
            Notification(
                dossier_id=d.id,
                kind="supplement_uploaded",
                channel="officer",
                recipient=f"role:receiver@{d.agency}",
                body=f"Hồ sơ {d.code}: người nộp đã bổ sung {len(saved)} giấy tờ trực tuyến; vui lòng kiểm tra và xác nhận.",
            )
        )
        return [attachment_public_view_of(a) for a in saved]


def withdraw(service, citizen: Citizen, code: str, reason: str) -> dict:
    """Status 7 at the applicant's request, while the dossier is not processed."""
    from .actions import LegalActions

    with service.db.read() as s:
        d = owned_dossier(s, citizen, code)
        open_ = set(Status) - {Status.PROCESSED, Status.RETURNED, Status.REFUSED, Status.WITHDRAWN, Status.STOPPED}
        _require_status(d, open_, "rút hồ sơ", "withdraw")
        agency = d.agency
    # The one withdrawal rule (engine/actions.py) with the applicant as its actor at the dossier's agency.
    return LegalActions(service).withdraw(Actor(citizen.subject, frozenset({"receiver"}), agency), code, reason)


def _require_status(d, allowed, vi: str, en: str) -> None:
    st = Status(d.status)
    if d.finished or st not in allowed:
        raise Conflict(
            f"Không thể {vi} khi hồ sơ ở trạng thái '{st.label_vi}'",
            f"cannot {en} while the dossier is '{st.value}'",
        )


def open_file(service, citizen: Citizen, code: str, file_id: int):
    """(view, path) of one of the citizen's dossier's files."""
    with service.db.read() as s:
        d = owned_dossier(s, citizen, code)
        a = s.get(Attachment, file_id) if isinstance(file_id, int) and 0 < file_id < 2**31 else None
        if a is None or a.dossier_id != d.id:
            raise NotFound("Không tìm thấy tệp", "file not found")
        view = attachment_public_view(a)
        sha = a.sha256
    path = blob_path(service.settings, sha)
    if not path.is_file():
        raise NotFound("Tệp không còn trên đĩa", "the file is missing from storage")
    return view, path


# -- payment -----------------------------------------------------------------------------------------------------


def payment_link(service, citizen: Citizen, code: str) -> dict:
    """The gateway's signed payment URL for the dossier's pending fee."""
    from .payments import gateway_of, pending_order

    gateway = gateway_of(service.settings)
    with service.db.read() as s:
        d = owned_dossier(s, citizen, code)
        _require_status(d, {Status.PAYMENT_REQUIRED}, "thanh toán", "pay")
        order = pending_order(s, d)
        return {"order_id": order.order_id, "amount": order.amount, "payment_url": gateway.payment_url(order, d.code)}


def confirm_payment(service, params: dict, ip: str = "-") -> dict:
    """The gateway's confirmation (IPN): signature, order, amount, then paid once (engine/payments.py)."""
    from .payments import check_amount, deliver, find_order, gateway_of, record_paid

    c = gateway_of(service.settings).verify(params)
    now = utcnow()
    with service.db.uow() as s:
        p = find_order(s, c.order_id)
        check_amount(p, c)
        if p.status == "paid":
            log.info("payment confirmation of order %s replayed from %s: already paid", p.order_id, ip)
            return {
                "code": "01",
                "message": "Đã ghi nhận trước đó / already confirmed",
                "order_id": p.order_id,
                "receipt_no": p.receipt_no,
            }
        if not c.success:
            s.add(
                Event(
                    dossier_id=p.dossier_id,
                    actor=f"gateway:{p.gateway}",
                    action="payment.failed",
                    at=now,
                    details={"order_id": p.order_id, "response_code": c.response_code},
                )
            )
            return {"code": "02", "message": "Chưa thanh toán / not paid", "order_id": p.order_id, "receipt_no": None}
        loaded = service.open_for_update(s, dossier_id=p.dossier_id)
        d = loaded.dossier
        from_status = d.status
        receipt = record_paid(s, p, c, d, now)
        d.data = {**(d.data or {}), "payment": {k: receipt[k] for k in ("receipt_no", "amount", "paid_at")}}
        gateway_actor = Actor(f"gateway:{p.gateway}", frozenset(), d.agency, "Cổng thanh toán")
        if Status(d.status) == Status.PAYMENT_REQUIRED and not d.finished:
            deliver(loaded.workflow, {"payment": receipt})
            d.set_status(Status.IN_PROCESS, now)  # the next open step's declared status applies
        service.finish_step(s, loaded, gateway_actor, now)
        loaded.repo.add_event(
            dossier_id=d.id,
            actor=gateway_actor.username,
            action="payment.received",
            at=now,
            from_status=from_status,
            to_status=d.status,
            details=receipt,
        )
        service.notifier.notify_applicant(loaded.repo.conn, d, "status")
        return {"code": "00", "message": "Đã thanh toán / paid", "order_id": p.order_id, "receipt_no": p.receipt_no}


def payment_return(service, params: dict) -> dict:
    """What the payment return page shows: the gateway's signed result, checked (it changes nothing)."""
    from .payments import BadSignature, NotConfigured, find_order, gateway_of

    out: dict[str, object] = {"valid": False, "success": False, "code": None, "amount": None, "response_code": None}
    try:
        c = gateway_of(service.settings).verify(params)
    except (BadSignature, NotConfigured, InvalidInput):
        return out
    with service.db.read() as s:
        try:
            p = find_order(s, c.order_id, lock=False)
        except NotFound:
            return out
        from .models import Dossier

        code = s.scalar(select(Dossier.code).where(Dossier.id == p.dossier_id))
        ok_amount = c.amount == p.amount
    out.update(
        valid=ok_amount,
        success=c.success and ok_amount,
        code=code,
        amount=f"{c.amount:,}".replace(",", "."),
        response_code=c.response_code,
    )
    return out
