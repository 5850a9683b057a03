"""What a change writes into the outbox, in the change's own transaction (docs/channels.md).

- `Notifier.notify_applicant(conn, dossier, event, extra)`: the one way every use case tells the applicant
  (receipt, status changes, legal actions, payment): the event's templates `<event>/…` (`"status"`: the new
  status's own event from `STATUS_EVENTS`; an event without templates of its own: the `status` templates
  with its text as `message`); SMS to the phone, e-mail to the address, a Zalo template message to the
  phone when Zalo is configured; with neither phone nor e-mail, one `portal` row (the public status page).
- `Notifier.status_changed(conn, dossier, at)`: one `national_portal` row per status change with the
  dossier's next `sequence` (the dossier's row is locked by the change, so sequences never collide);
  `portal_rows` builds them without writing, from a last sequence the caller may already know.
- `Notifier.officers(conn, dossier, event, recipients, extra)`: the officers' inbox rows (`officer`,
  recipient `user:<name>` or `role:<role>@<agency>`), plus e-mail / Zalo to each of those officers who
  has an address or phone where the channel is configured.

Rows are written with Core inserts on the caller's connection: a rolled-back change notifies no one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import cast
from urllib.parse import quote

from sqlalchemy import Table, bindparam, select

from ..calendar import VN_TZ
from ..fastsql import FastStatement
from ..models import Notification, User, utcnow
from ..outbox import unaccent
from ..statuses import Status
from .config import EMAIL, NATIONAL_PORTAL, OFFICER, PUBLIC_PAGE, SMS, ZALO, ChannelSettings
from .templates import APPLICANT_EVENTS, TemplateStore

log = logging.getLogger("motcua.notify")
N = cast(Table, Notification.__table__)
# Built once (every change of a dossier runs them); the INSERT is planned once per dialect and executed on the
# driver's cursor (engine/fastsql.py)
INSERT = N.insert()
FAST_INSERT = FastStatement(INSERT)
LAST_PUSHED = (
    select(N.c.sequence, N.c.payload)
    .where(N.c.dossier_id == bindparam("_id"), N.c.channel == NATIONAL_PORTAL)
    .order_by(N.c.sequence.desc())
    .limit(1)
)

# The applicant's event for a new status (templates engine/channels/templates/<event>/); other statuses
# are told with the `status` templates.
STATUS_EVENTS = {
    Status.REFUSED.value: "refused",
    Status.SUPPLEMENT_REQUESTED.value: "supplement_requested",
    Status.PAYMENT_REQUIRED.value: "payment_required",
    Status.PROCESSED.value: "result_ready",
    Status.RETURNED.value: "returned",
}


def vn_time(dt: datetime | None) -> str:
    return dt.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y") if dt else ""


def dossier_context(d, public_url: str, extra: dict | None = None) -> dict:
    """The names a template may use about a dossier (no identity number, no address)."""
    status = Status(d.status)
    ctx = {
        "code": d.code,
        "procedure_code": getattr(d, "procedure_code", None),
        "procedure_name": getattr(d, "procedure_name", None),
        "agency": getattr(d, "agency", None),
        "applicant_name": getattr(d, "applicant_name", None),
        "status": status.value,
        "status_code": status.code,
        "status_label": status.label_vi,
        "due_date": vn_time(getattr(d, "due_at", None)),
        "received_date": vn_time(getattr(d, "received_at", None)),
        "link": f"{public_url.rstrip('/')}/tra-cuu?code={quote(d.code)}",
    }
    ctx.update(extra or {})
    return ctx


class Notifier:
    def __init__(self, channels: ChannelSettings, templates: TemplateStore):
        self.channels, self.templates = channels, templates

    def row(self, d, kind, channel, recipient, body, now, subject=None, payload=None, sequence=None) -> dict:
        """One outbox row as the delivery task reads it (engine/channels/delivery.py): due now, not tried yet."""
        return {
            "dossier_id": getattr(d, "id", None),
            "kind": kind,
            "channel": channel,
            "recipient": (recipient or "")[:200] or None,
            "body": body or "",
            "subject": (subject or "")[:300] or None,
            "payload": payload,
            "sequence": sequence,
            "tries": 0,
            "created_at": now,
            "next_try_at": now,
            "sent_at": None,
            "dead_at": None,
            "last_error": None,
        }

    def applicant_rows(self, d, event: str, extra: dict | None = None, now: datetime | None = None) -> list[dict]:
        now = now or utcnow()
        ctx = dossier_context(d, self.channels.public_url, extra)
        phone, email = getattr(d, "applicant_phone", None), getattr(d, "applicant_email", None)
        parts = []
        if phone:
            parts.append("sms.txt")
            if self.channels.zalo_configured:
                parts.append("zalo.json")
        if email:
            parts += ["email_subject.txt", "email.txt", "email.html"]
        if not parts:  # the public page's row: its body is the subject, nothing else is rendered
            parts = ["email_subject.txt"]
        r = self.templates.event(event, ctx, parts)
        rows = []
        if phone:
            sms = unaccent(r.sms or "")  # stored as sent: carriers' templates have no diacritics
            rows.append(self.row(d, event, SMS, phone, sms, now))
            if r.zalo is not None:
                rows.append(self.row(d, event, ZALO, phone, sms, now, payload=r.zalo))
        if email:
            rows.append(self.row(d, event, EMAIL, email, r.text, now, subject=r.subject, payload={"html": r.html}))
        if not rows:
            rows.append(self.row(d, event, PUBLIC_PAGE, d.code, r.subject, now))
        return rows

    def applicant_messages(self, d, event: str, extra: dict | None = None, now: datetime | None = None) -> list[dict]:
        """The applicant's rows for `event` (module doc), not written yet: the caller writes them in its
        change's single outbox INSERT (`write`)."""
        if event == "status":
            event = STATUS_EVENTS.get(d.status, "status")
        elif event not in APPLICANT_EVENTS:
            event = "status"
        return self.applicant_rows(d, event, extra, now)

    def notify_applicant(self, conn, d, event: str, extra: dict | None = None, now: datetime | None = None) -> int:
        """The applicant's messages for `event` (module doc), written on `conn`. Returns how many rows."""
        rows = self.applicant_messages(d, event, extra, now)
        if rows:
            FAST_INSERT.run(conn, rows)
        return len(rows)

    @staticmethod
    def write(conn, rows: list[dict]) -> None:
        """All the outbox rows of one change in one INSERT, in the order given (their ids follow it)."""
        if rows:
            FAST_INSERT.run(conn, rows)

    def status_changed(self, conn, d, statuses: list[str] | None = None, now: datetime | None = None) -> int:
        """The national portal's rows for `statuses` (`portal_rows`), written on `conn`. Returns how many."""
        rows, _last = self.portal_rows(conn, d, statuses, now)
        self.write(conn, rows)
        return len(rows)

    def portal_rows(
        self, conn, d, statuses: list[str] | None = None, now: datetime | None = None, last: tuple | None = None
    ) -> tuple[list[dict], tuple[int, int | None]]:
        """The national portal's rows for `statuses` (default: the dossier's current one), each with the
        dossier's next `sequence`; a status equal to the last one pushed is not pushed again. `last`: the
        dossier's last pushed (sequence, status code) when the caller knows it ((0, None): none yet), else
        it is read on `conn`. Returns the rows (not written) and the new last (sequence, status code)."""
        now = now or utcnow()
        if last is None:
            row = conn.execute(LAST_PUSHED, {"_id": d.id}).first()
            last = (row.sequence, (row.payload or {}).get("status_code")) if row is not None else (0, None)
        seq, last_code = last
        rows = []
        for value in statuses or [d.status]:
            status = Status(value)
            if status.code == last_code:
                continue
            seq, last_code = seq + 1, status.code
            payload = {
                "code": d.code,
                "status_code": status.code,
                "status": status.value,
                "procedure_code": d.procedure_code,
                "agency": d.agency,
                "at": now.astimezone(VN_TZ).isoformat(),
            }
            body = f"{d.code} #{seq}: {status.code} {status.label_vi}"
            rows.append(self.row(d, "status", NATIONAL_PORTAL, d.code, body, now, payload=payload, sequence=seq))
        return rows, (seq, last_code)

    def officers(
        self, conn, d, event: str, recipients: list[str], extra: dict | None = None, now=None, inbox: bool = True
    ) -> int:
        """Inbox rows for `recipients` (unless `inbox` is False: the caller wrote them) and e-mail / Zalo rows
        for those of them with an address or a phone, where the channel is configured."""
        now = now or utcnow()
        if not inbox and not (self.channels.smtp_url or self.channels.zalo_configured):
            return 0
        ctx = dossier_context(d, self.channels.public_url, extra)
        ctx["applicant_name"] = None  # officers' messages are addressed to the officer
        r = self.templates.event(event, ctx, ("sms.txt", "email_subject.txt", "email.txt", "email.html", "zalo.json"))
        rows = []
        if inbox:
            rows = [self.row(d, event, OFFICER, rcpt, r.text or r.sms, now, subject=r.subject) for rcpt in recipients]
        for user in self._officer_accounts(conn, getattr(d, "agency", None), recipients):
            if user.email and self.channels.smtp_url:
                ctx_user = {**ctx, "applicant_name": user.full_name or user.username}
                ru = self.templates.event(event, ctx_user, ("email_subject.txt", "email.txt", "email.html"))
                rows.append(
                    self.row(d, event, EMAIL, user.email, ru.text, now, subject=ru.subject, payload={"html": ru.html})
                )
            if user.phone and self.channels.zalo_configured and r.zalo is not None:
                rows.append(self.row(d, event, ZALO, user.phone, r.sms, now, payload=r.zalo))
        if rows:
            conn.execute(INSERT, rows)
        return len(rows)

    def _officer_accounts(self, conn, agency, recipients) -> list:
        if not (self.channels.smtp_url or self.channels.zalo_configured):
            return []
        names = {r[5:] for r in recipients if r.startswith("user:")}
        roles: dict[str, set[str]] = {}
        for r in recipients:
            if r.startswith("role:") and "@" in r:
                role, ag = r[5:].split("@", 1)
                roles.setdefault(ag, set()).add(role)
        found = {}
        if names:
            for u in conn.execute(select(User).where(User.username.in_(names), User.active.is_(True))):
                found[u.username] = u
        for ag, wanted in roles.items():
            for u in conn.execute(select(User).where(User.agency == ag, User.active.is_(True))):
                if wanted & set(u.roles or []):
                    found[u.username] = u
        return [u for u in found.values() if u.email or u.phone]
