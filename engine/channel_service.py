"""The channels' service (engine/channels/) for the HTTP shell and the CLI: inbound lookups, dead letters, delivery logs,
templates (list, read, override, preview) and an officer's messages. One call per request; no Flask."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, func, select, text

from .auth import Actor, visible_dossier
from .channels.config import SMS, ZALO_OA
from .channels.delivery import resend
from .channels.notify import Notifier, vn_time
from .channels.templates import EVENTS, LOOKUP, PARTS, SAMPLE, TemplateStore, shipped_names, shipped_source
from .errors import InvalidInput, MotcuaError, NotFound, PermissionDenied
from .models import Dossier, InboundMessage, MessageTemplate, Notification, utcnow
from .outbox import unaccent
from .paging import Page, page_of, paging
from .statuses import Status

N = cast(Table, Notification.__table__)
_KEYWORD = re.compile(r"^\s*(?:TRA\s*CUU|TC)\b[\s:.\-]*(?P<code>\S+)?", re.IGNORECASE)
_KEYWORD_GLUED = re.compile(r"^\s*(?:TRACUU|TC)(?P<code>[0-9A-Z][\S]*)$", re.IGNORECASE)


class Unauthorized(MotcuaError):
    status = 401
    code = "unauthorized"


def parse_lookup(text_in: str) -> tuple[bool, str | None]:
    """(is a lookup, the code) from 'TRACUU <code>', 'TRA CUU', 'TRA CỨU', 'TC', any case, space optional."""
    plain = unaccent(text_in or "").strip()
    m = _KEYWORD.match(plain)
    if m:
        return True, (m.group("code") or "").strip().upper() or None
    m = _KEYWORD_GLUED.match(plain)
    if m:
        return True, m.group("code").upper()
    return False, None


def delivery_state(row) -> str:
    if row.sent_at is not None:
        return "sent"
    if row.dead_at is not None:
        return "dead"
    return "retrying" if row.tries else "pending"


def delivery_view(row) -> dict:
    return {
        "id": row.id,
        "kind": row.kind,
        "channel": row.channel,
        "recipient": row.recipient,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "next_try_at": row.next_try_at.isoformat() if row.next_try_at else None,
        "dead_at": row.dead_at.isoformat() if row.dead_at else None,
        "tries": row.tries,
        "result": delivery_state(row),
        "last_error": row.last_error,
        "sequence": row.sequence,
        "subject": row.subject,
        "body": row.body,
    }


class ChannelService:
    def __init__(self, db, settings, templates: TemplateStore | None = None):
        self.db, self.settings = db, settings
        self.templates = templates or TemplateStore(db, settings.channels.template_refresh_seconds)
        self.notifier = Notifier(settings.channels, self.templates)

    # -- inbound lookups ---------------------------------------------------------------------------------
    def check_gateway_token(self, token: str | None) -> None:
        expected = self.settings.channels.inbound_token
        if not token:
            raise Unauthorized("Thiếu X-Gateway-Token", "the X-Gateway-Token header is missing")
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            raise PermissionDenied("X-Gateway-Token không đúng", "the X-Gateway-Token is not valid")

    def check_zalo_signature(self, raw: bytes, signature: str | None) -> dict:
        """Zalo OA webhook: `X-ZEvent-Signature: mac=<sha256(app_id + body + timestamp + OA secret key)>`."""
        ch = self.settings.channels
        if not signature:
            raise Unauthorized("Thiếu chữ ký X-ZEvent-Signature", "the X-ZEvent-Signature header is missing")
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise InvalidInput("Nội dung không phải JSON", "the body is not a JSON object")
        if not (ch.zalo_app_id and ch.zalo_oa_secret):
            raise PermissionDenied("Chưa cấu hình Zalo OA", "the Zalo Official Account is not configured")
        app_id = str(event.get("app_id") or ch.zalo_app_id)
        mac = hashlib.sha256(
            app_id.encode() + raw + str(event.get("timestamp", "")).encode() + ch.zalo_oa_secret.encode()
        ).hexdigest()
        given = signature.strip()
        given = given[4:] if given.lower().startswith("mac=") else given
        if app_id != ch.zalo_app_id or not hmac.compare_digest(given.lower(), mac):
            raise PermissionDenied("Chữ ký Zalo không đúng", "the Zalo event signature is not valid")
        return event

    def inbound(self, channel: str, sender: str, text_in: str) -> str:
        """Record a citizen's text and queue the answer on `channel` (sms or zalo_oa); returns the outcome."""
        sender, text_in = (sender or "").strip()[:200], (text_in or "")[:500]
        if not sender:
            raise InvalidInput("Thiếu người gửi", "the sender is missing", {"fields": {"from": "required"}})
        now = utcnow()
        limit = self.settings.channels.lookups_per_hour
        example = "UBXA-261127-0001"
        with self.db.uow() as s:
            if not self.db.is_sqlite:  # one number's texts are counted one at a time, across processes
                s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"inbound:{channel}:{sender}"})
            recent = s.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(
                    InboundMessage.channel == channel,
                    InboundMessage.sender == sender,
                    InboundMessage.received_at > now - timedelta(hours=1),
                )
            )
            is_lookup, code = parse_lookup(text_in)
            answer = None
            if recent >= limit:
                outcome = "limited"
                if recent == limit:  # told once, then silence until the hour has passed
                    answer = self.templates.render("lookup/limit.txt", {"limit": limit})
            elif not is_lookup or not code:
                outcome = "help"
                answer = self.templates.render("lookup/help.txt", {"example": example})
            else:
                d = s.scalars(select(Dossier).where(Dossier.code == code)).first()
                if d is None:
                    outcome = "unknown"
                    answer = self.templates.render("lookup/unknown.txt", {"code": code, "example": example})
                else:
                    outcome = "found"
                    st = Status(d.status)
                    answer = self.templates.render(
                        "lookup/answer.txt",
                        {
                            "code": d.code,
                            "status_label": st.label_vi,
                            "status_code": st.code,
                            "due_date": "" if d.finished else vn_time(d.due_at),
                            "returned_date": vn_time(d.returned_at),
                        },
                    )
            s.add(InboundMessage(channel=channel, sender=sender, text=text_in, received_at=now, outcome=outcome))
            if answer:
                reply = SMS if channel == SMS else ZALO_OA
                body = unaccent(answer) if reply == SMS else answer
                s.execute(N.insert(), [self.notifier.row(None, f"lookup.{outcome}", reply, sender, body, now)])
            return outcome

    def inbound_zalo(self, raw: bytes, signature: str | None) -> str:
        event = self.check_zalo_signature(raw, signature)
        if event.get("event_name") != "user_send_text":
            return "ignored"
        user = (event.get("sender") or {}).get("id")
        msg = (event.get("message") or {}).get("text") or ""
        if not user:
            raise InvalidInput("Thiếu sender.id", "sender.id is missing")
        return self.inbound(ZALO_OA, str(user), msg)

    # -- dead letters and the delivery log --------------------------------------------------------------
    def dead_letters(self, actor: Actor, channel=None, page=1, per_page=20) -> Page:
        actor.require("admin")
        page, per_page = paging(page, per_page)
        with self.db.read() as s:
            stmt = select(N).where(N.c.dead_at.isnot(None))
            if channel:
                stmt = stmt.where(N.c.channel == channel)
            return page_of(s, stmt, [N.c.dead_at.desc(), N.c.id.desc()], page, per_page, delivery_view)

    def resend(self, actor: Actor, ids: list[int]) -> int:
        actor.require("admin")
        ids = [
            i for i in ids if isinstance(i, int) and 0 < i < 2**31
        ]  # the id column is an INTEGER: larger ids name no row
        if not ids:
            raise InvalidInput("Cần danh sách id", "give the ids of dead letters", {"fields": {"ids": "required"}})
        n = resend(self.db, ids, actor.username)
        if n == 0:
            raise NotFound("Không có thư chết nào với các id này", "no dead letter with these ids")
        return n

    def deliveries(self, actor: Actor, code: str, page=1, per_page=20) -> Page:
        page, per_page = paging(page, per_page)
        with self.db.read() as s:
            d = visible_dossier(s, actor, code)
            stmt = select(N).where(N.c.dossier_id == d.id)
            return page_of(s, stmt, [N.c.id.desc()], page, per_page, delivery_view)

    def my_messages(self, actor: Actor, page=1, per_page=20) -> Page:
        """An officer's inbox messages: to `user:<me>` or to one of my roles in my agency."""
        page, per_page = paging(page, per_page)
        mine = [f"user:{actor.username}"] + [f"role:{r}@{actor.agency}" for r in sorted(actor.roles)]
        with self.db.read() as s:
            stmt = select(N).where(N.c.channel == "officer", N.c.recipient.in_(mine))
            return page_of(s, stmt, [N.c.id.desc()], page, per_page, delivery_view)

    # -- templates ----------------------------------------------------------------------------------------
    def template_list(self, actor: Actor) -> list[dict]:
        actor.require("admin")
        overrides = self.templates.overrides()
        return [
            {
                "name": n,
                "overridden": n in overrides,
                "updated_at": overrides[n].isoformat() if n in overrides else None,
            }
            for n in shipped_names()
        ]

    def _known(self, name: str) -> str:
        source = shipped_source(name) if isinstance(name, str) and len(name) <= 120 else None
        if source is None:
            raise NotFound(f"Không có mẫu '{name}'", f"no template named '{name}'")
        return source

    def template_get(self, actor: Actor, name: str) -> dict:
        actor.require("admin")
        default = self._known(name)
        with self.db.read() as s:
            o = s.get(MessageTemplate, name)
            return {
                "name": name,
                "source": o.source if o else default,
                "default_source": default,
                "overridden": o is not None,
                "updated_at": o.updated_at.isoformat() if o else None,
                "updated_by": o.updated_by if o else None,
            }

    def template_put(self, actor: Actor, name: str, source: str) -> dict:
        actor.require("admin")
        self._known(name)
        if not isinstance(source, str) or not source.strip() or len(source) > 50_000:
            raise InvalidInput(
                "Mẫu rỗng hoặc quá dài", "the template is empty or too long", {"fields": {"source": "1–50000"}}
            )
        problem = self.templates.check(name, source)
        if problem:
            raise InvalidInput(
                f"Mẫu không dùng được: {problem}",
                f"the template does not render: {problem}",
                {"fields": {"source": problem}},
            )
        now = utcnow()
        with self.db.uow() as s:
            o = s.get(MessageTemplate, name)
            if o is None:
                s.add(MessageTemplate(name=name, source=source, updated_at=now, updated_by=actor.username))
            else:
                o.source, o.updated_at, o.updated_by = source, now, actor.username
        self.templates.refresh(force=True)
        return self.template_get(actor, name)

    def template_delete(self, actor: Actor, name: str) -> None:
        actor.require("admin")
        self._known(name)
        with self.db.uow() as s:
            o = s.get(MessageTemplate, name)
            if o is not None:
                s.delete(o)
        self.templates.refresh(force=True)

    def preview(self, actor: Actor, event: str, context: dict | None = None, drafts: dict | None = None) -> dict:
        """Every part of `event` rendered with the sample context (updated by `context`); `drafts` maps
        template names to unsaved sources to preview in their place."""
        actor.require("admin")
        if event not in EVENTS and event != "lookup":
            raise NotFound(
                f"Không có sự kiện '{event}'", f"no event named '{event}'", {"events": list(EVENTS) + ["lookup"]}
            )
        ctx = {**SAMPLE, **{k: v for k, v in (context or {}).items() if isinstance(k, str)}}
        names = LOOKUP if event == "lookup" else [f"{event}/{p}" for p in PARTS]
        out = {}
        for name in names:
            if not self.templates.exists(name):
                continue
            draft = (drafts or {}).get(name)
            try:
                rendered = self.templates.render(name, ctx, source=draft)
                if name.endswith("sms.txt") or name.startswith("lookup/"):
                    from .channels.senders import sms_text

                    rendered = sms_text(rendered)
                out[name] = {"text": rendered, "length": len(rendered)}
            except Exception as exc:  # noqa: BLE001 - shown to the administrator
                out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return {"event": event, "context": ctx, "parts": out}
