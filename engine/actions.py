"""Actions with legal meaning on any procedure: supplement request and receipt, refusal, withdrawal,
stop, and the apology letter with a new due time (extension).

Each action is one transaction (`Database.uow`) and writes an audit `Event` (who, from which status to
which, the reason) and at least one applicant notification in the outbox (SMS if a phone is known, e-mail if an
address is known, else `portal`). A finished dossier (refused, withdrawn, stopped, returned) refuses
every action with 409.

Each use case reads: load (`DossierService.open_for_update`) → the dossier's own rule
(engine/dossier.py: who may act from which status, `pause`, `resume`, `close`, `extend`; the due-time
rules with their worked examples are written there) → save (`DossierService.finish_step`) → outbox (the
audit event, the national portal's rows, `Notifier.notify_applicant`, engine/channels/notify.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from . import messages
from .auth import Actor, performs_for
from .dossier import EXTEND_WINDOW_HOURS, MAX_EXTRA_DAYS, Dossier, local_time, require_roles
from .errors import InvalidInput, NotFound
from .models import Task, utcnow
from .scheduler import shift_timers
from .statuses import Status
from .views import dossier_view, iso

__all__ = ["LegalActions", "MAX_REASON", "MAX_DOCUMENTS"]

MAX_REASON = 2000
MAX_DOCUMENTS = 50


def _text(value, field: str, required: bool = True, limit: int = MAX_REASON) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(
                f"Thiếu '{field}' (bắt buộc)",
                f"'{field}' is required",
                {"fields": {field: "Trường bắt buộc / Required"}},
            )
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"'{field}' phải là chuỗi", f"'{field}' must be a string", {"fields": {field: "string"}})
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(
            f"'{field}' quá dài (tối đa {limit} ký tự)",
            f"'{field}' too long (at most {limit})",
            {"fields": {field: f"max {limit}"}},
        )
    return value


def _reason(value) -> str:
    text = _text(value, "reason")
    assert text is not None  # required: _text raised otherwise
    return text


def _documents(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) > MAX_DOCUMENTS:
        raise InvalidInput(
            f"'documents' phải là danh sách (tối đa {MAX_DOCUMENTS})",
            f"'documents' must be a list (at most {MAX_DOCUMENTS})",
            {"fields": {"documents": "list"}},
        )
    out = []
    for i, doc in enumerate(value):
        if not isinstance(doc, str) or not doc.strip() or len(doc) > 500:
            raise InvalidInput(
                f"Giấy tờ thứ {i + 1} không hợp lệ (chuỗi 1-500 ký tự)",
                f"document {i + 1} is invalid (a string of 1-500 characters)",
                {"fields": {f"documents[{i}]": "string 1-500"}},
            )
        out.append(doc.strip())
    return out


class LegalActions:
    """The legal actions over a `DossierService` (which provides the database, calendar and settings)."""

    def __init__(self, service):
        self.service = service
        self.db = service.db
        self.settings = service.settings

    # -- load and outbox, shared by every action ---------------------------------------------------
    def _open(self, s, actor: Actor, code: str, action: str):
        """Load the dossier for `action`: the actor's roles first, then the dossier's own rule."""
        require_roles(actor, action)
        if not isinstance(code, str) or not code or len(code) > 64:
            raise NotFound(f"Không tìm thấy hồ sơ '{code}'", f"dossier '{code}' not found")
        loaded = self.service.open_for_update(s, code=code)
        d = loaded.dossier
        reads = not actor.is_admin and actor.agency != d.agency and performs_for(s, actor, d.id)
        d.check_action(actor, action, reads_it=reads)
        return loaded

    @staticmethod
    def _status_before_pause(loaded) -> Status:
        d: Dossier = loaded.dossier
        return Dossier.status_before_pause(loaded.repo.last_from_status(d.id, "supplement.requested"))

    def _event(self, loaded, actor: Actor, action: str, from_status: str, now: datetime, details: dict) -> None:
        d = loaded.dossier
        if from_status != d.status or d.transitions:
            self.service.push_status(loaded.repo.conn, d, now)
        loaded.repo.add_event(
            dossier_id=d.id,
            actor=actor.username,
            action=action,
            at=now,
            from_status=from_status,
            to_status=d.status,
            details=details,
        )

    def _notify(self, loaded, event: str, text_vi: str, **extra) -> None:
        """The applicant's messages (engine/channels/notify.py, `notify_applicant`); `text_vi` is the
        `message` of the `status` templates an event without templates of its own is told with."""
        self.service.notifier.notify_applicant(loaded.repo.conn, loaded.dossier, event, {"message": text_vi, **extra})

    # -- supplement --------------------------------------------------------------------------------
    def request_supplement(self, actor: Actor, code: str, reason: str, documents=None) -> dict:
        """Status 5, clock paused (`paused_at`). A second request is allowed but counts as late."""
        reason = _reason(reason)
        docs = _documents(documents)
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, "request_supplement")
            d = loaded.dossier
            from_status = d.status
            second = d.pause(now)
            open_tasks = self.service.finish_step(s, loaded, actor, now)
            self._event(
                loaded,
                actor,
                "supplement.requested",
                from_status,
                now,
                {
                    "reason": reason,
                    "documents": docs,
                    "request_number": d.supplement_count,
                    "second_request": second,
                    "counts_as_late": second,
                    "due_at": iso(d.due_at),
                    "working_hours_used": d.working_hours_used(loaded.cal, now),
                },
            )
            listing = "; ".join(docs) if docs else reason
            self._notify(
                loaded,
                "supplement_requested",
                f"Hồ sơ {d.code} cần bổ sung giấy tờ: {listing}. Lý do: {reason}",
                reason=reason,
                documents=listing,
            )
            return dossier_view(d, open_tasks)

    def supplement_received(self, actor: Actor, code: str, note: str | None = None) -> dict:
        """Back to the status before the request; due time moved by the paused working time (engine/dossier.py)."""
        note = _text(note, "note", required=False)
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, "supplement_received")
            d, cal = loaded.dossier, loaded.cal
            from_status, old_due = d.status, d.due_at
            paused_at, paused = d.resume(cal, now, self._status_before_pause(loaded))
            moved_steps = self._shift_steps(s, d, cal, paused) if paused > 0 else 0
            moved_timers = shift_timers(loaded.workflow, cal, paused)
            # a diagram that waits at a `supplement` message catch event moves on from it (engine/messages.py)
            resumed = messages.deliver(loaded.workflow, messages.SUPPLEMENT, {"supplement": {"note": note}})
            open_tasks = self.service.finish_step(s, loaded, actor, now)
            self._event(
                loaded,
                actor,
                "supplement.received",
                from_status,
                now,
                {
                    "note": note,
                    "paused_at": iso(paused_at),
                    "paused_working_hours": round(paused, 4),
                    "due_at_before": iso(old_due),
                    "due_at": iso(d.due_at),
                    "steps_moved": moved_steps,
                    "timers_moved": moved_timers,
                    "message_delivered": resumed,
                },
            )
            self._notify(
                loaded,
                "supplement_received",
                f"Hồ sơ {d.code} đã nhận đủ giấy tờ bổ sung. Ngày hẹn trả: {local_time(d.due_at)}",
            )
            return dossier_view(d, open_tasks)

    def _shift_steps(self, s, d, cal, hours: float) -> int:
        """Move the open steps' due times on by the paused working hours, each on its performing agency's
        calendar (docs/deadlines.md, "Agencies and their calendars")."""
        rows = s.execute(
            select(Task.id, Task.due_at, Task.agency, Task.remind_at).where(
                Task.dossier_id == d.id, Task.state == "ready", Task.due_at.is_not(None)
            )
        ).all()
        for tid, due, agency, remind_at in rows:
            step_cal = cal if agency == d.agency else self.service.calendar(s, agency)
            values = {"due_at": step_cal.add_working_hours(due, hours)}
            if remind_at is not None:  # a reminder not sent yet moves with its step
                values["remind_at"] = step_cal.add_working_hours(remind_at, hours)
            s.execute(update(Task).where(Task.id == tid).values(**values))
        return len(rows)

    # -- closing actions ---------------------------------------------------------------------------
    def refuse(self, actor: Actor, code: str, reason: str) -> dict:
        """Status 3 (refused at intake): only before processing starts."""
        return self._close(
            actor,
            code,
            "refuse",
            Status.REFUSED,
            "dossier.refused",
            reason,
            "Hồ sơ {code} không được tiếp nhận. Lý do: {reason}",
        )

    def withdraw(self, actor: Actor, code: str, reason: str) -> dict:
        """Status 7: withdrawn at the applicant's request."""
        return self._close(
            actor,
            code,
            "withdraw",
            Status.WITHDRAWN,
            "dossier.withdrawn",
            reason,
            "Hồ sơ {code} đã được rút theo yêu cầu của người nộp. Lý do: {reason}",
        )

    def stop(self, actor: Actor, code: str, reason: str) -> dict:
        """Status 8: processing stopped."""
        return self._close(
            actor,
            code,
            "stop",
            Status.STOPPED,
            "dossier.stopped",
            reason,
            "Hồ sơ {code} đã dừng xử lý. Lý do: {reason}",
        )

    def _close(self, actor: Actor, code: str, action: str, target: Status, event: str, reason, template: str) -> dict:
        reason = _reason(reason)
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, action)
            d = loaded.dossier
            from_status = d.status
            asked_at_intake = action == "refuse" and from_status == Status.SUPPLEMENT_REQUESTED.value
            before = self._status_before_pause(loaded) if asked_at_intake else None
            paused = d.close(action, target, loaded.cal, now, before)
            # The legal outcome is set first; finish_step keeps it for the cancelled workflow, turns the open
            # tasks into cancelled rows, clears the timers of the now finished dossier and saves the state.
            loaded.workflow.cancel()
            self.service.finish_step(s, loaded, actor, now)
            self._event(
                loaded,
                actor,
                event,
                from_status,
                now,
                {
                    "reason": reason,
                    "paused_working_hours": round(paused, 4) if paused else 0,
                    "due_at": iso(d.due_at),
                    "overdue": bool(d.due_at and d.due_at < now),
                },
            )
            self._notify(loaded, target.value, template.format(code=d.code, reason=reason), reason=reason)
            return dossier_view(d, [])

    # -- extension ---------------------------------------------------------------------------------
    def extend(
        self,
        actor: Actor,
        code: str,
        reason: str,
        new_due_at: datetime | None = None,
        extra_working_days: float | None = None,
    ) -> dict:
        """The apology letter and a new due time: once, with a reason, when overdue or about to be."""
        reason = _reason(reason)
        if (new_due_at is None) == (extra_working_days is None):
            raise InvalidInput(
                "Cần đúng một trong hai: 'new_due_at' hoặc 'extra_working_days'",
                "give exactly one of 'new_due_at' and 'extra_working_days'",
                {"fields": {"new_due_at": "one of", "extra_working_days": "one of"}},
            )
        if extra_working_days is not None:
            if (
                isinstance(extra_working_days, bool)
                or not isinstance(extra_working_days, (int, float))
                or not (0 < extra_working_days <= MAX_EXTRA_DAYS)
            ):
                raise InvalidInput(
                    f"'extra_working_days' phải là số lớn hơn 0, tối đa {MAX_EXTRA_DAYS}",
                    f"'extra_working_days' must be a number above 0, at most {MAX_EXTRA_DAYS}",
                    {"fields": {"extra_working_days": f"0 < n <= {MAX_EXTRA_DAYS}"}},
                )
        if new_due_at is not None and (not isinstance(new_due_at, datetime) or new_due_at.tzinfo is None):
            raise InvalidInput(
                "'new_due_at' phải là ngày giờ có múi giờ",
                "'new_due_at' needs a UTC offset",
                {"fields": {"new_due_at": "ISO 8601 date-time with offset"}},
            )
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, "extend")
            d = loaded.dossier
            window = max(EXTEND_WINDOW_HOURS, self.settings.reminder_hours_before_due or 0)
            old_due, left = d.extend(loaded.cal, now, reason, window, new_due_at, extra_working_days)
            open_tasks = self.service.finish_step(s, loaded, actor, now)
            self._event(
                loaded,
                actor,
                "deadline.extended",
                d.status,
                now,
                {
                    "reason": reason,
                    "due_at_before": iso(old_due),
                    "due_at": iso(d.due_at),
                    "original_due_at": iso(d.original_due_at),
                    "extra_working_days": extra_working_days,
                    "was_overdue": old_due <= now,
                    "working_hours_left": round(left, 4),
                },
            )
            self._notify(
                loaded,
                "apology",
                f"Xin lỗi ông/bà: hồ sơ {d.code} chưa giải quyết kịp hạn. Ngày hẹn trả mới: "
                f"{local_time(d.due_at)}. Lý do: {reason}",
                reason=reason,
                new_due_date=local_time(d.due_at),
            )
            return dossier_view(d, open_tasks)
