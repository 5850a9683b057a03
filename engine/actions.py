"""Actions with legal meaning on any procedure: supplement request and receipt, refusal, withdrawal,
stop, and the apology letter with a new due time (extension).

Each action is one transaction (`Database.uow`) on the dossier locked by
`DossierService.open_for_update`, ends with `DossierService.finish_step` (task rows, status,
`next_timer_at`, workflow state), and writes an audit `Event` (who, from which status to which, the
reason) and at least one applicant notification in the outbox (SMS if a phone is known, e-mail if an
address is known, else `portal`). A finished dossier (refused, withdrawn, stopped, returned) refuses
every action with 409.

Who may do what (`WHO_MAY`, the one table; admins may do everything; only in the dossier's own agency):

    action               roles                                 from statuses
    request_supplement   receiver                              new, received, in_process
    supplement_received  receiver                              supplement_requested
    refuse               receiver                              new, received (or a supplement asked at intake)
    withdraw             receiver (at the applicant's request) any open status
    stop                 receiver, agency leaders              any open status
    extend               receiver                              any open status but supplement_requested

The due-time rules (docs/deadlines.md, the counting convention; every number can be checked by hand)

Supplement: the clock pauses, the time already used still counts.
    On `request_supplement` at instant P the dossier keeps its due time and records `paused_at = P`;
    nothing fires while it is paused (no BPMN timer, no reminder, no overdue flag).
    On `supplement_received` at instant R:
        paused = working_hours_between(P, R)          office time only: nights, weekends, holidays free
        due_at = add_working_hours(due_at, paused)    only when paused > 0 (see below)
        paused_hours += paused
    and, with the same shift, the due times of the open steps and the pending BPMN timers.
    This is exactly "the remaining time starts again at R": on the office-time line,
    new_due - R = old_due - P. When `paused` is 0 (asked and answered outside office hours, e.g. on a
    Saturday) the due time is left as it is: `add_working_hours(x, 0)` would move a due time that sits
    on an end of office hours (17:00) to the next morning.
    Worked example (3 working days): received Mon 02/03/2026 09:00 → due Thu 05/03 09:00.
        Supplement asked Tue 03/03 10:00 (9 h used: Mon 6 h, Tue 07:00-10:00 3 h),
        documents back Thu 05/03 14:00. Paused = Tue 10:00-11:30 1.5 + 13:30-17:00 3.5 + Wed 8
        + Thu 07:00-11:30 4.5 + 13:30-14:00 0.5 = 18 h. New due = Thu 05/03 09:00 + 18 h =
        Thu 2.5 + 3.5 (6) + Fri 8 (14) + Mon 09/03 07:00 + 4 → Mon 09/03/2026 11:00.
        Check: 15 working hours were left at the pause (Tue 5, Wed 8, Thu 2); from Thu 14:00,
        Thu 3 + Fri 8 + Mon 4 = 15 → Mon 09/03 11:00.
    Only one request is allowed by the rules; a second one is accepted (the applicant must not be
    blocked) but flagged: `supplement_count` ≥ 2 and the event's details say `counts_as_late: true`,
    which the national indicators count as late.

Extension (apology letter, phiếu xin lỗi và hẹn lại ngày trả kết quả): once per dossier, with a reason,
    only when the dossier is overdue or about to be (fewer than `EXTEND_WINDOW_HOURS` working hours left,
    or the reminder window if that is wider), not while paused. The new due time is either given
    (`new_due_at`, after both now and the current due time) or `extra_working_days` N (may be
    fractional):
        new_due = add_working_hours(max(due_at, now), 8 × N)
    i.e. N working days from the current due time, or from the moment of the apology if that is already
    past, so the new appointment is never in the past. `original_due_at` keeps the legal due time (the
    reports judge lateness by it); the reminder and the overdue flag are re-armed for the new date.
    Worked example: due Thu 05/03/2026 17:00, apology at Thu 15:00 with 2 working days →
        Thu 17:00 + 16 h = Mon 09/03/2026 17:00 (Fri 8 h, Mon 8 h).
    Overdue: due Thu 05/03 17:00, apology Mon 09/03 10:00, 1 working day → Tue 10/03/2026 10:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from . import messages
from .auth import Actor
from .calendar import HOURS_PER_WORKING_DAY, VN_TZ
from .channels.templates import APPLICANT_EVENTS
from .errors import Conflict, InvalidInput, NotFound, PermissionDenied
from .models import Event, Task, utcnow
from .scheduler import shift_timers
from .statuses import FINAL, Status
from .views import dossier_view, iso

__all__ = ["WHO_MAY", "LEADER_ROLES", "LegalActions", "EXTEND_WINDOW_HOURS"]

# Roles of an agency's leadership, as procedures name them in their lanes (README, demo accounts).
LEADER_ROLES = ("leader", "chairman", "police_chief", "director", "lanh_dao")

OPEN = frozenset(s for s in Status if s not in FINAL)
INTAKE = frozenset({Status.NEW, Status.RECEIVED})

# action -> (roles that may do it, statuses it may start from). Admins may always act.
WHO_MAY: dict[str, tuple[tuple[str, ...], frozenset]] = {
    "request_supplement": (("receiver",), frozenset({Status.NEW, Status.RECEIVED, Status.IN_PROCESS})),
    "supplement_received": (("receiver",), frozenset({Status.SUPPLEMENT_REQUESTED})),
    "refuse": (("receiver",), INTAKE | {Status.SUPPLEMENT_REQUESTED}),  # the latter only if asked at intake
    "withdraw": (("receiver",), OPEN),
    "stop": (("receiver",) + LEADER_ROLES, OPEN),
    "extend": (("receiver",), OPEN - {Status.SUPPLEMENT_REQUESTED}),
}

EXTEND_WINDOW_HOURS = 8.0  # "about to be overdue": less than one working day left
MAX_REASON = 2000
MAX_DOCUMENTS = 50
MAX_EXTRA_DAYS = 365

_LABEL_VI = {
    "request_supplement": "yêu cầu bổ sung hồ sơ",
    "supplement_received": "nhận hồ sơ bổ sung",
    "refuse": "từ chối hồ sơ",
    "withdraw": "rút hồ sơ",
    "stop": "dừng xử lý",
    "extend": "gia hạn (xin lỗi, hẹn lại)",
}


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


def _local(dt: datetime | None) -> str:
    return dt.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y") if dt else ""


class LegalActions:
    """The legal actions over a `DossierService` (which provides the database, calendar and settings)."""

    def __init__(self, service):
        self.service = service
        self.db = service.db
        self.settings = service.settings

    # -- shared steps ------------------------------------------------------------------------------
    def _open(self, s, actor: Actor, code: str, action: str):
        roles, allowed = WHO_MAY[action]
        actor.require(*roles)
        if not isinstance(code, str) or not code or len(code) > 64:
            raise NotFound(f"Không tìm thấy hồ sơ '{code}'", f"dossier '{code}' not found")
        loaded = self.service.open_for_update(s, code=code)
        d = loaded.dossier
        if not (actor.is_admin or actor.agency == d.agency):
            if actor.sees_agency(d.agency):
                raise PermissionDenied(
                    "Chỉ cán bộ của cơ quan tiếp nhận hồ sơ được thực hiện thao tác này",
                    "only staff of the dossier's agency may do this",
                )
            raise NotFound(f"Không tìm thấy hồ sơ '{code}'", f"dossier '{code}' not found")
        status = Status(d.status)
        if d.finished or status in FINAL:
            raise Conflict(
                f"Hồ sơ đã kết thúc ({status.label_vi}); không thể {_LABEL_VI[action]}",
                f"the dossier is closed ({status.value}); no further action is possible",
            )
        if status not in allowed:
            raise Conflict(
                f"Không thể {_LABEL_VI[action]} khi hồ sơ ở trạng thái '{status.label_vi}'",
                f"cannot {action.replace('_', ' ')} a dossier in status '{status.value}'",
            )
        return loaded

    @staticmethod
    def _status_before_pause(s, d) -> Status:
        ev = s.scalars(
            select(Event)
            .where(Event.dossier_id == d.id, Event.action == "supplement.requested")
            .order_by(Event.id.desc())
            .limit(1)
        ).first()
        try:
            prev = Status(ev.from_status) if ev is not None and ev.from_status else None
        except ValueError:
            prev = None
        return prev if prev in (Status.NEW, Status.RECEIVED, Status.IN_PROCESS) else Status.IN_PROCESS

    def _event(self, s, d, actor: Actor, action: str, from_status: str, now: datetime, details: dict) -> None:
        if from_status != d.status or getattr(d, "_motcua_transitions", None):
            self.service.push_status(s, d, now)
        s.add(
            Event(
                dossier_id=d.id,
                actor=actor.username,
                action=action,
                at=now,
                from_status=from_status,
                to_status=d.status,
                details=details,
            )
        )

    def _notify(self, s, d, kind: str, text_vi: str, **extra) -> None:
        """The applicant's messages from the event's templates (engine/channels/templates/): SMS, e-mail, Zalo;
        `portal` when neither phone nor e-mail is known. An event without templates of its own is told with
        the `status` templates, `text_vi` being their `message`."""
        event = kind if kind in APPLICANT_EVENTS else "status"
        self.service._notify_applicant(s, d, event, {"message": text_vi, **extra})

    def _view(self, d, open_tasks) -> dict:
        return dossier_view(d, open_tasks)

    # -- supplement --------------------------------------------------------------------------------
    def request_supplement(self, actor: Actor, code: str, reason: str, documents=None) -> dict:
        """Status 5, clock paused (`paused_at`). A second request is allowed but counts as late."""
        reason = _text(reason, "reason")
        docs = _documents(documents)
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, "request_supplement")
            d = loaded.dossier
            from_status = d.status
            d.supplement_count = (d.supplement_count or 0) + 1
            d.paused_at = now
            self.service._set_status(d, Status.SUPPLEMENT_REQUESTED, now)
            open_tasks = self.service.finish_step(s, loaded, actor, now)
            used = None
            if d.due_at is not None:
                start = loaded.cal.clock_start(d.received_at)
                used = round(max(0.0, loaded.cal.working_hours_between(start, now)) - (d.paused_hours or 0), 4)
            second = d.supplement_count >= 2
            self._event(
                s,
                d,
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
                    "working_hours_used": used,
                },
            )
            listing = "; ".join(docs) if docs else reason
            self._notify(
                s,
                d,
                "supplement_requested",
                f"Hồ sơ {d.code} cần bổ sung giấy tờ: {listing}. Lý do: {reason}",
                reason=reason,
                documents=listing,
            )
            return self._view(d, open_tasks)

    def supplement_received(self, actor: Actor, code: str, note: str | None = None) -> dict:
        """Back to the status before the request; due time moved by the paused working time (module doc)."""
        note = _text(note, "note", required=False)
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, "supplement_received")
            d, cal = loaded.dossier, loaded.cal
            from_status = d.status
            paused_at = d.paused_at or now
            paused = max(0.0, cal.working_hours_between(paused_at, now))
            old_due = d.due_at
            if paused > 0 and d.due_at is not None:
                d.due_at = cal.add_working_hours(d.due_at, paused)
            d.paused_hours = (d.paused_hours or 0.0) + paused
            d.paused_at = None
            self.service._set_status(d, self._status_before_pause(s, d), now)
            moved_steps = self._shift_steps(s, d, cal, paused) if paused > 0 else 0
            moved_timers = shift_timers(loaded.workflow, cal, paused)
            # a diagram that waits at a `supplement` message catch event moves on from it (engine/messages.py)
            resumed = messages.deliver(loaded.workflow, messages.SUPPLEMENT, {"supplement": {"note": note}})
            open_tasks = self.service.finish_step(s, loaded, actor, now)
            self._event(
                s,
                d,
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
                s,
                d,
                "supplement_received",
                f"Hồ sơ {d.code} đã nhận đủ giấy tờ bổ sung. Ngày hẹn trả: {_local(d.due_at)}",
            )
            return self._view(d, open_tasks)

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
        reason = _text(reason, "reason")
        now = utcnow()
        with self.db.uow() as s:
            loaded = self._open(s, actor, code, action)
            d, cal = loaded.dossier, loaded.cal
            from_status = d.status
            if (
                action == "refuse"
                and Status(d.status) == Status.SUPPLEMENT_REQUESTED
                and self._status_before_pause(s, d) not in INTAKE
            ):
                raise Conflict(
                    "Hồ sơ đã vào giai đoạn xử lý; không thể từ chối tiếp nhận (hãy dùng 'dừng xử lý')",
                    "processing has started; a refusal at intake is no longer possible (use stop)",
                )
            paused = 0.0
            if d.paused_at is not None:  # the clock stops for good: the pause so far is not the agency's time
                paused = max(0.0, cal.working_hours_between(d.paused_at, now))
                d.paused_hours = (d.paused_hours or 0.0) + paused
                d.paused_at = None
            # The legal outcome is set first; finish_step keeps it for the cancelled workflow, turns the open
            # tasks into cancelled rows, clears the timers of the now finished dossier and saves the state.
            self.service._set_status(d, target, now)
            loaded.workflow.cancel()
            self.service.finish_step(s, loaded, actor, now)
            self._event(
                s,
                d,
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
            self._notify(s, d, target.value, template.format(code=d.code, reason=reason), reason=reason)
            return self._view(d, [])

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
        reason = _text(reason, "reason")
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
            d, cal = loaded.dossier, loaded.cal
            if d.extended_at is not None:
                raise Conflict(
                    f"Hồ sơ đã được hẹn lại một lần ({_local(d.extended_at)}); chỉ được hẹn lại một lần",
                    "the dossier already had its one new due time",
                )
            if d.due_at is None:
                raise Conflict("Hồ sơ không có thời hạn giải quyết để gia hạn", "the dossier has no due time to extend")
            left = cal.working_hours_between(now, d.due_at)
            window = max(EXTEND_WINDOW_HOURS, self.settings.reminder_hours_before_due or 0)
            if left >= window:
                raise Conflict(
                    f"Chỉ được hẹn lại khi hồ sơ đã quá hạn hoặc còn dưới {window:g} giờ làm việc (còn {left:g} giờ)",
                    f"a new due time may only be set when overdue or with less than {window:g} "
                    f"working hours left ({left:g} left)",
                )
            old_due = d.due_at
            if extra_working_days is not None:
                new_due = cal.add_working_hours(max(old_due, now), HOURS_PER_WORKING_DAY * float(extra_working_days))
                if new_due <= max(old_due, now):  # e.g. a few seconds' worth of a working day
                    raise InvalidInput(
                        "Số ngày gia hạn quá nhỏ",
                        "too few extra working days",
                        {"fields": {"extra_working_days": "too small"}},
                    )
            else:
                new_due = new_due_at
                if new_due <= now or new_due <= old_due:
                    raise InvalidInput(
                        "Ngày hẹn mới phải sau hiện tại và sau hạn hiện tại",
                        "the new due time must be after now and after the current due time",
                        {"fields": {"new_due_at": f"after {max(now, old_due).isoformat()}"}},
                    )
                if new_due > max(now, old_due) + timedelta(days=MAX_EXTRA_DAYS * 2):
                    raise InvalidInput(
                        "Ngày hẹn mới quá xa", "the new due time is too far away", {"fields": {"new_due_at": "too far"}}
                    )
            d.due_at = new_due
            d.extended_at, d.extension_reason = now, reason
            d.reminded_at = d.overdue_flagged_at = None  # re-armed for the new date
            open_tasks = self.service.finish_step(s, loaded, actor, now)
            self._event(
                s,
                d,
                actor,
                "deadline.extended",
                d.status,
                now,
                {
                    "reason": reason,
                    "due_at_before": iso(old_due),
                    "due_at": iso(new_due),
                    "original_due_at": iso(d.original_due_at),
                    "extra_working_days": extra_working_days,
                    "was_overdue": old_due <= now,
                    "working_hours_left": round(left, 4),
                },
            )
            self._notify(
                s,
                d,
                "apology",
                f"Xin lỗi ông/bà: hồ sơ {d.code} chưa giải quyết kịp hạn. Ngày hẹn trả mới: "
                f"{_local(new_due)}. Lý do: {reason}",
                reason=reason,
                new_due_date=_local(new_due),
            )
            return self._view(d, open_tasks)
