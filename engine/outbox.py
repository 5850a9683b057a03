"""The notification outbox and its senders.

Every message to an applicant or an officer is first a `Notification` row, written in the same
transaction as the change it reports (so a rolled-back change never notifies anyone, and a committed one
always will). The worker's sweep drains the outbox: `drain_outbox()` takes unsent rows (on PostgreSQL
with FOR UPDATE SKIP LOCKED, so two workers never take the same row), hands each to a `Sender`, and
marks it `sent_at` in the same transaction. Delivery is at-least-once: a crash after a gateway accepted a
message but before the commit sends it again on the next sweep.

Channels: `sms` (unaccented text, the carriers' templates have no Vietnamese diacritics), `zalo`,
`email`, `portal` (shown on the public status page; for applicants with neither phone nor e-mail) and
`officer` (an officer's inbox, recipient `user:<name>` or `role:<role>@<agency>`).

Real SMS / Zalo OA / e-mail gateways are out of scope. A gateway is one class with
`send(notification) -> None` that raises on failure (`Sender`); `FileSender`, the default, appends one
JSON line per message to `var/notifications.log` and logs it, which is what the demo and the tests read.
A message whose sender raises stays unsent and is retried by the next sweep.
"""

from __future__ import annotations

import json
import logging
import threading
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select

from .models import Notification, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from .db import Database

log = logging.getLogger("motcua.outbox")


def unaccent(text: str) -> str:
    """Vietnamese text without diacritics, as SMS templates are sent: 'Hồ sơ đã tiếp nhận' → 'Ho so da tiep nhan'."""
    decomposed = unicodedata.normalize("NFD", text or "")
    plain = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", plain.replace("đ", "d").replace("Đ", "D"))


class Sender(Protocol):
    """A delivery channel. `send` raises to leave the message in the outbox for the next sweep."""

    def send(self, notification: Notification) -> None: ...


class FileSender:
    """Writes each message as one JSON line to a file (default var/notifications.log) and to the log."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        body = notification.body or ""
        if notification.channel == "sms":
            body = unaccent(body)
        line = json.dumps(
            {
                "id": notification.id,
                "at": utcnow().isoformat(),
                "channel": notification.channel,
                "kind": notification.kind,
                "recipient": notification.recipient,
                "dossier_id": notification.dossier_id,
                "body": body,
            },
            ensure_ascii=False,
        )
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        log.info(
            "notification %s via %s to %s: %s", notification.id, notification.channel, notification.recipient, body
        )


def drain_outbox(db: Database, sender: Sender, limit: int = 500, batch: int = 100) -> int:
    """Send up to `limit` unsent notifications, oldest first; returns how many were marked sent."""
    sent = 0
    lock = not db.is_sqlite
    while sent < limit:
        n = min(batch, limit - sent)
        with db.read() as s:  # cheap probe without a write lock (ix_notifications_pending)
            if s.scalar(select(Notification.id).where(Notification.sent_at.is_(None)).limit(1)) is None:
                break
        with db.uow() as s:
            q = select(Notification).where(Notification.sent_at.is_(None)).order_by(Notification.id).limit(n)
            if lock:
                q = q.with_for_update(skip_locked=True)
            rows = list(s.scalars(q))
            failed = 0
            for row in rows:
                try:
                    sender.send(row)
                except Exception:  # the gateway refused or is down: leave it for the next sweep
                    log.exception("sending notification %s failed", row.id)
                    failed += 1
                    continue
                row.sent_at = utcnow()
                sent += 1
        if len(rows) < n or failed:
            break
    return sent
