"""The notification outbox: the row every message starts as, the log-file sender, and the SMS text rule.

Every message to an applicant, an officer or a national system is first a `Notification` row, written in
the same transaction as the change it reports (so a rolled-back change never notifies anyone, and a
committed one always will). The delivery task (`engine/channels/delivery.py`) drains it channel by
channel: claim (on PostgreSQL with FOR UPDATE SKIP LOCKED, so two workers never take the same row), send
outside any transaction, record — with backoff, a cap and dead letters. Delivery is at-least-once: a
crash after a gateway accepted a message but before the outcome is recorded sends it again later.

A sender is one class with `send(message) -> None` that raises on failure (`Sender`); `FileSender`, the
embedded default for every channel that is not configured, appends one JSON line per message to
`var/notifications.log` (and to the log at DEBUG). The real gateways are in `engine/channels/senders.py`; which one
each channel uses is chosen by the environment (docs/channels.md).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import unicodedata
from pathlib import Path
from typing import Protocol

from .models import Notification, utcnow

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
    """Writes each message as one JSON line to a file (default var/notifications.log), and to the log at DEBUG.

    The file stays open between messages (an open and a close per message cost more than writing the line, the
    embedded default's drain being mostly that) and is opened again when it was moved or removed (log rotation)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._inode = 0

    def _append(self, data: bytes) -> None:
        with self._lock:
            try:
                moved = os.stat(self.path).st_ino != self._inode
            except FileNotFoundError:
                moved = True
            if self._fd is None or moved:
                if self._fd is not None:
                    os.close(self._fd)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._inode = os.fstat(self._fd).st_ino
            os.write(self._fd, data)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # type: ignore[arg-type]

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
        self._append((line + "\n").encode("utf-8"))
        log.debug(
            "notification %s via %s to %s: %s", notification.id, notification.channel, notification.recipient, body
        )
