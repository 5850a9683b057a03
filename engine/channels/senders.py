"""The channels' senders, chosen by the environment (docs/channels.md).

A sender has `send(message)` that returns on success and raises `SendError` (or any exception) on failure;
the national portal's sender also has `send_batch(messages)` (several status changes of one dossier, in
order, in one request). Senders never touch the database: `delivery.py` claims rows, hands snapshots
(`Message`) to them outside any transaction, and records the outcome.

HTTP senders share one urllib3 pool (keep-alive) with the channel's timeout for connecting and for each
read; no automatic retries (the outbox retries, with backoff). Any 2xx is success, anything else a failure
whose status and first bytes are kept in `last_error`. Zalo answers 200 with `{"error": <code>}`; a non-zero
code is a failure too.
"""

from __future__ import annotations

import json
import logging
import re
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import urllib3

from ..outbox import FileSender, unaccent
from .config import (
    EMAIL,
    NATIONAL_PORTAL,
    NATIONAL_REPORT,
    OFFICER,
    PUBLIC_PAGE,
    SMS,
    ZALO,
    ZALO_OA,
    ChannelSettings,
)

log = logging.getLogger("motcua.channels")

SMS_SEGMENT, SMS_MULTI_SEGMENT, SMS_MAX_SEGMENTS = 160, 153, 3


class SendError(Exception):
    """The gateway refused the message or could not be reached; the outbox tries again later."""


@dataclass
class Message:
    """What a sender needs of an outbox row, detached from any database session."""

    id: int
    channel: str
    kind: str
    recipient: str | None
    body: str
    dossier_id: int | None = None
    subject: str | None = None
    payload: dict | None = None
    sequence: int | None = None
    tries: int = 0
    extra: dict = field(default_factory=dict)


# -- text rules ---------------------------------------------------------------------------------------
def sms_text(text: str) -> str:
    """Unaccented GSM-safe text: one SMS (160 characters) when it fits, else cut at a word to 3 segments."""
    plain = " ".join(unaccent(text or "").split())
    plain = plain.encode("ascii", "replace").decode("ascii")
    if len(plain) <= SMS_SEGMENT:
        return plain
    limit = SMS_MULTI_SEGMENT * SMS_MAX_SEGMENTS
    if len(plain) <= limit:
        return plain
    cut = plain[: limit - 3]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "..."


def zalo_phone(phone: str) -> str:
    """A Vietnamese phone number in the international form Zalo's API expects: 0912 345 678 → 84912345678."""
    digits = re.sub(r"\D", "", phone or "")
    if digits.startswith("0"):
        digits = "84" + digits[1:]
    elif not digits.startswith("84") and len(digits) == 9:
        digits = "84" + digits
    if not (10 <= len(digits) <= 12):
        raise SendError(f"not a Vietnamese phone number: {phone!r}")
    return digits


# -- HTTP ---------------------------------------------------------------------------------------------
class HttpSender:
    def __init__(self, url: str, timeout: float, concurrency: int = 4, headers: dict | None = None):
        self.url, self.timeout = url, timeout
        self.headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=max(1, concurrency), block=False, retries=False)

    def post(self, payload, url: str | None = None, headers: dict | None = None) -> dict | None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            r = self.pool.request(
                "POST",
                url or self.url,
                body=body,
                headers={**self.headers, **(headers or {})},
                timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise SendError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= r.status < 300:
            raise SendError(f"HTTP {r.status}: {r.data[:200].decode('utf-8', 'replace')}")
        try:
            return json.loads(r.data) if r.data else None
        except ValueError:
            return None


class SmsSender(HttpSender):
    """`POST MOTCUA_SMS_URL {"to", "text"}`: any 2xx is accepted."""

    def send(self, m: Message) -> None:
        if not m.recipient:
            raise SendError("no phone number")
        self.post({"to": m.recipient, "text": sms_text(m.body)})


def _zalo_checked(answer) -> None:
    if isinstance(answer, dict) and answer.get("error") not in (None, 0, "0"):
        raise SendError(f"Zalo error {answer.get('error')}: {answer.get('message')}")


class ZaloSender(HttpSender):
    """Zalo notification (template) messages: `{phone: 84…, template_id, template_data, tracking_id}`."""

    def __init__(self, url: str, token: str | None, timeout: float, concurrency: int = 4):
        super().__init__(url, timeout, concurrency, headers={"access_token": token or ""})

    def send(self, m: Message) -> None:
        t = m.payload or {}
        if not t.get("template_id"):
            raise SendError("no Zalo template for this message")
        answer = self.post(
            {
                "phone": zalo_phone(m.recipient or ""),
                "template_id": t["template_id"],
                "template_data": t.get("template_data") or {},
                "tracking_id": str(m.id),
            }
        )
        _zalo_checked(answer)


class ZaloOASender(HttpSender):
    """Answers to a follower of the Official Account: `{recipient: {user_id}, message: {text}}`."""

    def __init__(self, url: str, token: str | None, timeout: float, concurrency: int = 4):
        super().__init__(url, timeout, concurrency, headers={"access_token": token or ""})

    def send(self, m: Message) -> None:
        answer = self.post({"recipient": {"user_id": m.recipient}, "message": {"text": m.body}})
        _zalo_checked(answer)


def portal_item(m: Message) -> dict:
    item = dict(m.payload or {})
    item["sequence"] = m.sequence
    item["idempotency_key"] = f"{item.get('code')}-{m.sequence}"
    return item


class PortalSender(HttpSender):
    """National public-service portal: one status change as an object, several of one dossier as a list."""

    batch = True

    def send(self, m: Message) -> None:
        self.send_batch([m])

    def send_batch(self, messages: list[Message]) -> None:
        items = [portal_item(m) for m in messages]
        keys = ",".join(i["idempotency_key"] for i in items)
        self.post(items[0] if len(items) == 1 else items, headers={"Idempotency-Key": keys})


class ReportSender(HttpSender):
    """National reporting system: the period report (shape of GET /reports/summary) with its period key."""

    def send(self, m: Message) -> None:
        self.post(m.payload or {}, headers={"Idempotency-Key": m.recipient or m.kind})


# -- SMTP ---------------------------------------------------------------------------------------------
class SmtpSender:
    """E-mail over SMTP: UTF-8, a plain-text and an HTML part. `smtps://` is TLS from the start; `smtp://`
    upgrades with STARTTLS when the server offers it. One connection per delivery thread, kept open."""

    def __init__(self, url: str, mail_from: str, timeout: float):
        u = urlsplit(url)
        if u.scheme not in ("smtp", "smtps"):
            raise ValueError(f"MOTCUA_SMTP_URL must be smtp:// or smtps://, not {url!r}")
        self.tls = u.scheme == "smtps"
        self.host, self.port = u.hostname or "localhost", u.port or (465 if self.tls else 25)
        self.user = unquote(u.username) if u.username else None
        self.password = unquote(u.password) if u.password else None
        self.mail_from, self.timeout = mail_from, timeout
        self._local = threading.local()

    def _connect(self) -> smtplib.SMTP:
        ctx = ssl.create_default_context()
        conn: smtplib.SMTP
        if self.tls:
            conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            conn.ehlo()
            if conn.has_extn("starttls"):
                conn.starttls(context=ctx)
                conn.ehlo()
        if self.user:
            conn.login(self.user, self.password or "")
        try:  # a message's last lines leave at once instead of waiting for the server's delayed ACK
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        return conn

    def message(self, m: Message) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = m.subject or (m.body or "").split("\n", 1)[0][:120]
        msg["From"] = formataddr(("Một cửa điện tử", self.mail_from))
        msg["To"] = m.recipient
        msg["Message-ID"] = make_msgid(idstring=f"motcua.{m.id}")
        msg.set_content(m.body or "", charset="utf-8")
        html = (m.payload or {}).get("html")
        if html:
            msg.add_alternative(html, subtype="html", charset="utf-8")
        return msg

    def send(self, m: Message) -> None:
        if not m.recipient or "@" not in m.recipient:
            raise SendError(f"not an e-mail address: {m.recipient!r}")
        msg = self.message(m)
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            try:
                if conn is None:
                    conn = self._local.conn = self._connect()
                conn.send_message(msg)
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError, OSError) as exc:
                self._local.conn = None
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                if attempt == 2 or conn is None:
                    raise SendError(f"SMTP: {exc}") from exc
            except smtplib.SMTPException as exc:
                raise SendError(f"SMTP: {exc}") from exc


# -- choosing ------------------------------------------------------------------------------------------
def build_senders(ch: ChannelSettings, var_dir: Path) -> dict:
    """One sender per channel: the configured gateway, else the log file (var/notifications.log)."""
    log_file = FileSender(Path(var_dir) / "notifications.log")
    p = ch.policy_for
    out: dict[str, Any] = {
        c: log_file for c in (EMAIL, SMS, ZALO, ZALO_OA, NATIONAL_PORTAL, NATIONAL_REPORT, OFFICER, PUBLIC_PAGE)
    }
    if ch.smtp_url:
        out[EMAIL] = SmtpSender(ch.smtp_url, ch.mail_from, p(EMAIL).timeout)
    if ch.sms_url:
        out[SMS] = SmsSender(ch.sms_url, p(SMS).timeout, p(SMS).concurrency)
    if ch.zalo_url:
        out[ZALO] = ZaloSender(ch.zalo_url, ch.zalo_token, p(ZALO).timeout, p(ZALO).concurrency)
    if ch.zalo_token and ch.zalo_oa_url:
        out[ZALO_OA] = ZaloOASender(ch.zalo_oa_url, ch.zalo_token, p(ZALO_OA).timeout, p(ZALO_OA).concurrency)
    if ch.portal_url:
        out[NATIONAL_PORTAL] = PortalSender(ch.portal_url, p(NATIONAL_PORTAL).timeout, p(NATIONAL_PORTAL).concurrency)
    if ch.reports_url:
        out[NATIONAL_REPORT] = ReportSender(ch.reports_url, p(NATIONAL_REPORT).timeout, 1)
    return out
