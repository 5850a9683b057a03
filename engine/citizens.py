"""Citizens: who a signed-in citizen is, the one-time sign-in code by SMS, and what a citizen may see.

A citizen is known either by a phone number (signed in with a code sent to it) or by a personal ID number
(signed in with the national identity provider, engine/oidc.py). A citizen owns the dossiers whose
applicant phone, or applicant ID number, is theirs; every other dossier is a 404 to them, as if it did not
exist. What they see of their own is `citizen_view`: status, steps, their documents and result files, and
of the data only the applicant's fields of the intake form (`x-applicant-fields`) — never what officers
wrote (decisions, opinions, notes).

The sign-in code (docs/online.md):
- `request_code(phone, ip)`: 6 random digits, valid 5 minutes, sent by SMS through the outbox. Only an
  HMAC-SHA256 of (phone, code) keyed with the installation's secret is stored, one live code per phone
  (a new request replaces it). Limits: 5 codes per phone per hour, 20 per client IP per hour.
- `verify_code(phone, code, ip)`: a wrong code counts one try (422, with the tries left); the 5th wrong
  try locks the phone for 15 minutes: then every try, the right code included, and every new request is a
  429 until the lock ends; a right code is used up (a second use is a 422). Limits: 30 tries
  per client IP per 10 minutes, whatever the phone, against guessing across many phones.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from forms import labelled_view
from forms.formats import normalize_phone_vn

from . import ratelimit
from .errors import InvalidInput, NotFound, PermissionDenied
from .models import Attachment, Dossier, Notification, OtpCode, Procedure, ProcedureVersion, Task, utcnow
from .outbox import unaccent
from .ratelimit import Limit, RateLimited
from .statuses import Status
from .views import iso

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=5)
MAX_TRIES = 5
LOCK = timedelta(minutes=15)

CODE_PER_PHONE = Limit("otp-phone", 5, 3600)
CODE_PER_IP = Limit("otp-ip", 20, 3600)
VERIFY_PER_IP = Limit("otp-verify-ip", 30, 600)

_PHONE = re.compile(r"(?:\+?84|0)(\d{9})")


@dataclass(frozen=True)
class Citizen:
    """A signed-in citizen: `phone` (code sign-in) or `id_number` (identity provider)."""

    phone: str | None = None
    id_number: str | None = None
    name: str | None = None

    @property
    def subject(self) -> str:
        return f"citizen:phone:{self.phone}" if self.phone else f"citizen:id:{self.id_number}"

    def owner_condition(self):
        """The SQL condition "this dossier is mine" (ix_dossiers_applicant_phone / _id_number)."""
        if self.phone:
            return Dossier.applicant_phone.in_(phone_variants(self.phone))
        return Dossier.applicant_id_number == self.id_number

    def owns(self, d) -> bool:
        if self.phone:
            return bool(d.applicant_phone) and normalize_phone(d.applicant_phone, strict=False) == self.phone
        return bool(d.applicant_id_number) and hmac.compare_digest(
            d.applicant_id_number.strip().encode(), str(self.id_number).encode()
        )


def citizen_of_identity(id_number, name=None) -> Citizen:
    """The citizen the identity provider vouched for, by the ID number in its configured claim."""
    value = str(id_number).strip() if isinstance(id_number, (str, int)) and not isinstance(id_number, bool) else ""
    if not value or len(value) > 32:
        raise PermissionDenied(
            "Nhà cung cấp định danh không trả về số định danh cá nhân",
            "the identity provider gave no personal ID number (see MOTCUA_OIDC_ID_CLAIM)",
        )
    return Citizen(id_number=value, name=str(name)[:200] if isinstance(name, str) else None)


def normalize_phone(value, strict: bool = True) -> str | None:
    """A Vietnamese mobile number as `0` + 9 digits: `+84 912 345 678` → `0912345678`.

    With `strict`, anything else is InvalidInput naming the field `phone`; else None."""
    text = normalize_phone_vn(str(value or "")).replace(".", "").replace("-", "")
    m = _PHONE.fullmatch(text)
    if m:
        return "0" + m.group(1)
    if strict:
        raise InvalidInput(
            "Số điện thoại không hợp lệ (ví dụ 0912345678)",
            "invalid phone number (e.g. 0912345678)",
            {"fields": {"phone": "Số điện thoại di động Việt Nam / a Vietnamese mobile number"}},
        )
    return None


def phone_variants(phone: str) -> list[str]:
    """The spellings a dossier may store the same number with (the desk types what people say)."""
    rest = phone[1:]
    return [phone, "+84" + rest, "84" + rest]


def _code_hash(secret: str, phone: str, code: str) -> str:
    return hmac.new(secret.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def request_code(db, settings, phone, ip: str, templates=None) -> dict:
    """Send a new sign-in code to `phone` by SMS (through the outbox). Returns `{phone, expires_in}`."""
    phone = normalize_phone(phone)
    now = utcnow()
    with db.uow() as s:
        row = s.get(OtpCode, phone, with_for_update=True)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = int((row.locked_until - now).total_seconds()) + 1
            raise RateLimited(
                wait,
                f"Đã nhập sai mã quá {MAX_TRIES} lần; vui lòng thử lại sau {wait} giây",
                f"too many wrong codes; try again in {wait} s",
            )
        ratelimit.hit(s, CODE_PER_PHONE, phone)
        ratelimit.hit(s, CODE_PER_IP, ip or "-")
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        values = dict(code_hash=_code_hash(settings.secret_key, phone, code), created_at=now)
        values.update(expires_at=now + CODE_TTL, attempts=0, locked_until=None)
        if row is None:
            s.add(OtpCode(phone=phone, **values))
        else:
            for k, v in values.items():
                setattr(row, k, v)
        minutes = int(CODE_TTL.total_seconds() // 60)
        body = f"Ma xac thuc: {code} (hieu luc {minutes} phut). Khong chia se ma nay"
        if templates is not None:  # the `otp` message template (engine/channels/templates), admins may override it
            body = unaccent(templates.event("otp", {"otp": code, "minutes": minutes}, ["sms.txt"]).sms or body)
        s.add(Notification(kind="otp", channel="sms", recipient=phone, body=body))
    return {"phone": phone, "expires_in": int(CODE_TTL.total_seconds())}


def verify_code(db, settings, phone, code, ip: str) -> Citizen:
    """The citizen owning `phone` if `code` is its live sign-in code (see the module docstring)."""
    phone = normalize_phone(phone)
    code = str(code or "").strip()
    if not re.fullmatch(rf"\d{{{CODE_DIGITS}}}", code):
        raise InvalidInput(
            f"Mã xác thực gồm {CODE_DIGITS} chữ số",
            f"the code has {CODE_DIGITS} digits",
            {"fields": {"code": f"{CODE_DIGITS} chữ số / digits"}},
        )
    ratelimit.check(db, (VERIFY_PER_IP, ip or "-"))
    now = utcnow()
    wrong = None
    with db.uow() as s:
        row = s.get(OtpCode, phone, with_for_update=True)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            wait = int((row.locked_until - now).total_seconds()) + 1
            raise RateLimited(
                wait,
                f"Đã nhập sai mã quá {MAX_TRIES} lần; vui lòng thử lại sau {wait} giây",
                f"too many wrong codes; try again in {wait} s",
            )
        if row is None or row.expires_at <= now or row.locked_until is not None:
            raise InvalidInput(
                "Mã xác thực đã hết hạn hoặc chưa được gửi; vui lòng yêu cầu mã mới",
                "the code has expired or was never sent; ask for a new one",
                {"fields": {"code": "Hết hạn / expired"}},
            )
        if hmac.compare_digest(row.code_hash, _code_hash(settings.secret_key, phone, code)):
            s.delete(row)  # used up
            return Citizen(phone=phone)
        row.attempts += 1
        wrong = MAX_TRIES - row.attempts
        if wrong <= 0:
            row.locked_until = now + LOCK
    # the wrong try is committed above; now tell the caller
    if wrong <= 0:
        minutes = int(LOCK.total_seconds() // 60)
        raise InvalidInput(
            f"Mã xác thực không đúng; đã sai {MAX_TRIES} lần nên bị khóa {minutes} phút",
            f"wrong code; after {MAX_TRIES} wrong codes sign-in is locked for {minutes} minutes",
            {"fields": {"code": f"Đã khóa / locked ({minutes} min)"}, "tries_left": 0},
        )
    raise InvalidInput(
        f"Mã xác thực không đúng; còn {wrong} lần thử",
        f"wrong code; {wrong} tries left",
        {"fields": {"code": f"Sai mã, còn {wrong} lần / wrong, {wrong} left"}, "tries_left": wrong},
    )


# -- what a citizen sees -----------------------------------------------------------------------------------


def owned_dossier(session, citizen: Citizen, code: str, lock: bool = False) -> Dossier:
    """The citizen's dossier with this code; someone else's, like an unknown code, is a 404."""
    d = None
    if isinstance(code, str) and 0 < len(code) <= 64:
        stmt = select(Dossier).where(Dossier.code == code)
        d = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if d is None or not citizen.owns(d):
        raise NotFound(f"Không tìm thấy hồ sơ '{code}'", f"dossier '{code}' not found")
    return d


def my_dossiers(session, citizen: Citizen, page: int = 1, per_page: int = 20) -> dict:
    """The citizen's dossiers, newest first, paged."""
    from .paging import page_of, paging

    page, per_page = paging(page, per_page)
    stmt = (
        select(Dossier.code, Dossier.procedure_code, Procedure.name, Dossier.status, Dossier.received_at)
        .add_columns(Dossier.due_at, Dossier.channel, Dossier.finished)
        .join(ProcedureVersion, ProcedureVersion.id == Dossier.procedure_version_id)
        .join(Procedure, Procedure.id == ProcedureVersion.procedure_id)
        .where(citizen.owner_condition())
    )

    def convert(r):
        st = Status(r.status)
        return {
            "code": r.code,
            "procedure_code": r.procedure_code,
            "procedure_name": r.name,
            "status": st.value,
            "status_code": st.code,
            "status_label": st.label_vi,
            "received_at": iso(r.received_at),
            "due_at": iso(r.due_at),
            "channel": r.channel,
            "finished": r.finished,
        }

    return page_of(session, stmt, (Dossier.received_at.desc(), Dossier.id.desc()), page, per_page, convert).to_dict()


def citizen_view(session, runtimes, citizen: Citizen, code: str) -> dict:
    """One of the citizen's dossiers as they see it (module docstring)."""
    from .attachments import attachment_public_view
    from .payments import payment_view

    d = owned_dossier(session, citizen, code)
    rt = runtimes.get(session, d.procedure_version_id)
    st = Status(d.status)
    tasks = session.scalars(
        select(Task).where(Task.dossier_id == d.id, Task.state != "cancelled").order_by(Task.created_at, Task.id)
    ).all()
    files = session.scalars(select(Attachment).where(Attachment.dossier_id == d.id).order_by(Attachment.id)).all()
    from .attachments import checklist, intake_form, result_files

    form = intake_form(rt)
    mine = set(form.applicant_fields()) if form is not None else set()
    data = {k: v for k, v in (d.data or {}).items() if k in mine}
    names = {x["key"]: x.get("name") or x["key"] for x in checklist(rt) + result_files(rt)}

    def named(a) -> dict:
        return attachment_public_view(a) | {"document_name": names.get(a.document_key or "")}

    return {
        "code": d.code,
        "status": st.value,
        "status_code": st.code,
        "status_label": st.label_vi,
        "status_label_en": st.label_en,
        "procedure_code": d.procedure_code,
        "procedure_name": session.scalar(
            select(Procedure.name)
            .join(ProcedureVersion, ProcedureVersion.procedure_id == Procedure.id)
            .where(ProcedureVersion.id == d.procedure_version_id)
        ),
        "agency": d.agency,
        "channel": d.channel,
        "received_at": iso(d.received_at),
        "due_at": iso(d.due_at),
        "processed_at": iso(d.processed_at),
        "returned_at": iso(d.returned_at),
        "finished": d.finished,
        "applicant": {
            "name": d.applicant_name,
            "id_number": d.applicant_id_number,
            "phone": d.applicant_phone,
            "email": d.applicant_email,
        },
        "data": data,
        # the same labelled view as the staff's dossier page, of the applicant's part of the intake form only:
        # every field shown is the citizen's own, so none is marked staff-only (forms/display.py)
        "data_view": _own_view(form, data),
        "steps": [
            {"name": t.title, "state": t.state, "started_at": iso(t.created_at), "completed_at": iso(t.completed_at)}
            for t in tasks
        ],
        "documents": [named(a) for a in files if a.kind != "result"],
        "result_files": [named(a) for a in files if a.kind == "result"],
        "payments": payment_view(session, d),
        "can_withdraw": not d.finished and st not in (Status.PROCESSED, Status.RETURNED),
        "can_supplement": st == Status.SUPPLEMENT_REQUESTED,
        "supplement_request": _supplement_request(session, d) if st == Status.SUPPLEMENT_REQUESTED else None,
    }


def _own_view(form, data: dict) -> list[dict]:
    if form is None or not data:
        return []
    sections = labelled_view([form.applicant_form()], data)
    for section in sections:
        for field in section["fields"]:
            field["staff_only"] = False
    return sections


def _supplement_request(session, d) -> dict | None:
    from .models import Event

    ev = session.scalars(
        select(Event)
        .where(Event.dossier_id == d.id, Event.action == "supplement.requested")
        .order_by(Event.id.desc())
        .limit(1)
    ).first()
    if ev is None:
        return None
    det = ev.details or {}
    return {"reason": det.get("reason"), "documents": det.get("documents") or [], "at": iso(ev.at)}


__all__ = [
    "Citizen",
    "normalize_phone",
    "request_code",
    "verify_code",
    "owned_dossier",
    "my_dossiers",
    "citizen_view",
]
