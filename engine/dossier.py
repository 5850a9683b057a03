"""The dossier as a plain domain object: the rules one dossier obeys, with no database, SpiffWorkflow or HTTP.

`Dossier` has the columns of the `dossiers` table as attributes (the repository, engine/repository.py,
loads and saves it) and owns:

* its **status after a step** (`status_after_step`): a legal outcome (refused, withdrawn, stopped) stays;
  a finished workflow takes the status its last end event declares (else returned); a workflow waiting
  for the fee is payment_required; else the status its open step declares (steps open side by side: the one
  furthest behind, an undeclared one counting as in_process), else in_process once a
  step was completed (an end event declaring refused after acceptance: processed then returned, with
  the result `refused`, engine/statuses.portal_end); a diagram waiting for a supplement is supplement_requested, its clock paused
  (`hold_clock_for_supplement`); an online dossier (new) accepted at intake passes through received first.
  Every status it goes through is remembered for the national portal (`set_status`, `take_transitions`);
* **overdue** (`overdue`): the one rule, with its SQL twins, is engine/domain.py;
* **who may act** with a legal action, from which statuses (`WHO_MAY`, `require_roles`, `check_action`);
* **pause and resume** for a supplement (`pause`, `resume`), the clock stopped for good when a legal
  action closes the dossier (`close`), and the **extension** with an apology letter (`extend`);
* the **deadline watch**: the officers' reminder and overdue notice, once each (`watch_deadline`).

The due-time rules (docs/deadlines.md, the counting convention; every number can be checked by hand)

Supplement: the clock pauses, the time already used still counts.
    On `pause` (request_supplement) at instant P the dossier keeps its due time and records
    `paused_at = P`; nothing fires while it is paused (no BPMN timer, no reminder, no overdue flag).
    On `resume` (supplement_received) at instant R:
        paused = working_hours_between(P, R)          office time only: nights, weekends, holidays free
        due_at = add_working_hours(due_at, paused)    only when paused > 0 (see below)
        paused_hours += paused
    and, with the same shift, the due times of the open steps and the pending BPMN timers (moved by the
    use case, engine/actions.py). This is exactly "the remaining time starts again at R": on the
    office-time line, new_due - R = old_due - P. When `paused` is 0 (asked and answered outside office
    hours, e.g. on a Saturday) the due time is left as it is: `add_working_hours(x, 0)` would move a due
    time that sits on an end of office hours (17:00) to the next morning.
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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .calendar import HOURS_PER_WORKING_DAY, VN_TZ
from .domain import dossier_overdue
from .errors import Conflict, InvalidInput, NotFound, PermissionDenied
from .statuses import FINAL, Status, portal_end

__all__ = [
    "Dossier",
    "StepOutcome",
    "WHO_MAY",
    "LEADER_ROLES",
    "EXTEND_WINDOW_HOURS",
    "CLOSED_BY_ACTION",
    "require_roles",
]

# Roles of an agency's leadership, as procedures name them in their lanes (README, demo accounts).
LEADER_ROLES = ("leader", "chairman", "police_chief", "director", "lanh_dao")

OPEN = frozenset(s for s in Status if s not in FINAL)
INTAKE = frozenset({Status.NEW, Status.RECEIVED})

# Who may take a legal action: action -> (roles that may do it, statuses it may start from). Admins may
# always act; only staff of the dossier's own agency.
#
#     action               roles                                 from statuses
#     request_supplement   receiver                              new, received, in_process
#     supplement_received  receiver                              supplement_requested
#     refuse               receiver                              new, received (or a supplement asked at intake)
#     withdraw             receiver (at the applicant's request) any open status
#     stop                 receiver, agency leaders              any open status
#     extend               receiver                              any open status but supplement_requested
WHO_MAY: dict[str, tuple[tuple[str, ...], frozenset]] = {
    "request_supplement": (("receiver",), frozenset({Status.NEW, Status.RECEIVED, Status.IN_PROCESS})),
    "supplement_received": (("receiver",), frozenset({Status.SUPPLEMENT_REQUESTED})),
    "refuse": (("receiver",), INTAKE | {Status.SUPPLEMENT_REQUESTED}),  # the latter only if asked at intake
    "withdraw": (("receiver",), OPEN),
    "stop": (("receiver",) + LEADER_ROLES, OPEN),
    "extend": (("receiver",), OPEN - {Status.SUPPLEMENT_REQUESTED}),
}

LABEL_VI = {
    "request_supplement": "yêu cầu bổ sung hồ sơ",
    "supplement_received": "nhận hồ sơ bổ sung",
    "refuse": "từ chối hồ sơ",
    "withdraw": "rút hồ sơ",
    "stop": "dừng xử lý",
    "extend": "gia hạn (xin lỗi, hẹn lại)",
}

EXTEND_WINDOW_HOURS = 8.0  # "about to be overdue": less than one working day left
MAX_EXTRA_DAYS = 365

# Outcomes decided by a legal action rather than by the diagram; a cancelled workflow keeps them.
CLOSED_BY_ACTION = frozenset({Status.WITHDRAWN, Status.STOPPED, Status.REFUSED})
_NOT_ACCEPTED = frozenset({Status.NEW, Status.REFUSED, Status.WITHDRAWN, Status.STOPPED})
_WAITING = (Status.SUPPLEMENT_REQUESTED, Status.PAYMENT_REQUIRED)


def require_roles(actor, action: str) -> None:
    """The roles a legal action needs, checked before anything is read (docs/security.md)."""
    actor.require(*WHO_MAY[action][0])


def local_time(dt: datetime | None) -> str:
    """An instant as the applicant reads it: `HH:MM dd/mm/yyyy` at UTC+7."""
    return dt.astimezone(VN_TZ).strftime("%H:%M %d/%m/%Y") if dt else ""


@dataclass(frozen=True)
class StepOutcome:
    """What the workflow says after it moved (read from it by the use case, engine/dossiers.py)."""

    completed: bool = False  # the workflow reached its end
    end_status: str | None = None  # the status declared by the last end event reached, if any
    waits_for_payment: bool = False  # it waits at the fee's message event (engine/payments.py)
    waits_for_supplement: bool = False  # it waits at a `supplement` message event (engine/messages.py)
    declared: tuple[str, ...] = ()  # the statuses declared by its open steps, in order
    task_completed: bool = False  # a user task was completed by this step


class Dossier:
    """One dossier: the columns of `dossiers` as attributes, and the rules above as methods."""

    transitions: list[str]
    portal_last: tuple[int, int | None] | None
    # the columns (engine/models.py), for readers and the type checker
    id: Any
    code: str
    procedure_version_id: int
    procedure_code: str
    agency: str
    channel: int
    applicant_name: str
    applicant_id_number: str | None
    applicant_phone: str | None
    applicant_email: str | None
    deadline_hours: float | None
    created_by: str | None
    updated_at: datetime | None
    status: str
    status_code: int
    data: dict
    received_at: datetime
    due_at: datetime | None
    original_due_at: datetime | None
    paused_at: datetime | None
    paused_hours: float
    supplement_count: int
    extended_at: datetime | None
    extension_reason: str | None
    processed_at: datetime | None
    returned_at: datetime | None
    finished: bool
    finished_at: datetime | None
    next_timer_at: datetime | None
    reminded_at: datetime | None
    overdue_flagged_at: datetime | None
    version: int

    def __init__(self, **columns):
        self.__dict__.update(columns)
        self.transitions = []  # the statuses this change went through, in order (the national portal)
        self.portal_last: tuple[int, int | None] | None = None  # the portal's last (sequence, code), if known

    def columns(self, names) -> dict:
        return {k: self.__dict__[k] for k in names}

    # -- status ------------------------------------------------------------------------------------
    def set_status(self, status: Status, now: datetime) -> None:
        """Move to `status`; processed/returned/finished instants are set the first time they are reached."""
        if self.status != status.value:  # every transition reaches the national portal
            self.transitions.append(status.value)
        self.status, self.status_code = status.value, status.code
        if status == Status.PROCESSED and self.processed_at is None:
            self.processed_at = now
        if status == Status.RETURNED and self.returned_at is None:
            self.returned_at = now
            if self.processed_at is None:
                self.processed_at = now
        if status in FINAL:
            self.finished, self.finished_at = True, self.finished_at or now

    def take_transitions(self) -> list[str]:
        """The statuses to tell the national portal of (at least the current one), and forget them."""
        pending = self.transitions or [self.status]
        self.transitions = []
        return pending

    def status_after_step(self, outcome: StepOutcome) -> tuple[Status, bool, str | None]:
        """(the status after the workflow moved, whether an online dossier was accepted at intake, the
        result when it is not the status itself: `refused` after acceptance, engine/statuses.portal_end)."""
        old = Status(self.status)
        new = old
        result = None
        if old in CLOSED_BY_ACTION:
            pass  # refused, withdrawn or stopped by a legal action: the workflow was cancelled
        elif outcome.completed:
            new = Status(outcome.end_status) if outcome.end_status else Status.RETURNED
            new, result = portal_end(new, old)  # refused after acceptance: processed, then returned
        elif outcome.waits_for_payment:
            new = Status.PAYMENT_REQUIRED  # the fee is due (engine/payments.py): processing waits
        elif outcome.waits_for_supplement:
            new = Status.SUPPLEMENT_REQUESTED  # the diagram asks for a supplement (engine/messages.py)
        elif old not in _WAITING:
            if outcome.declared:
                new = Status(outcome.declared[0])
            elif outcome.task_completed:
                new = Status.IN_PROCESS
        accepted = outcome.task_completed and old == Status.NEW and new not in _NOT_ACCEPTED
        return new, accepted, result

    def hold_clock_for_supplement(self, now: datetime) -> None:
        """A dossier that reached supplement_requested through its diagram (a `supplement` message wait)
        pauses its clock as the legal action does (`pause`), once."""
        if self.status == Status.SUPPLEMENT_REQUESTED.value and self.paused_at is None:
            self.paused_at, self.supplement_count = now, (self.supplement_count or 0) + 1

    def finish_if(self, completed: bool, now: datetime) -> None:
        if completed and not self.finished:
            self.finished, self.finished_at = True, now

    def check_processable(self) -> None:
        """A step may be completed unless the dossier waits for the applicant (documents, fee) or is closed."""
        if Status(self.status) in _WAITING or self.finished:
            raise Conflict(
                f"Hồ sơ đang ở trạng thái '{Status(self.status).label_vi}', chưa thể xử lý tiếp",
                f"the dossier is '{self.status}'; it cannot be processed now",
            )

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise Conflict(
                "Hồ sơ đã thay đổi từ khi bạn mở; vui lòng tải lại",
                "the dossier changed since you opened it; reload",
            )

    # -- overdue -----------------------------------------------------------------------------------
    def overdue(self, at: datetime) -> bool:
        return dossier_overdue(self, at)

    def watch_deadline(self, now: datetime, reminder_at: datetime | None) -> tuple[bool, bool]:
        """(tell the officers the deadline is near, tell them it passed): each at most once per due time
        (`reminded_at`, `overdue_flagged_at`, re-armed by `extend`), never for a dossier without a due time,
        finished, paused or processed. `reminder_at`: when the reminder is due (engine/scheduler.py); a
        reminder reached only once the due time has passed is marked sent and left to the overdue flag."""
        if self.due_at is None or self.finished or self.paused_at is not None or self.processed_at is not None:
            return False, False
        remind = False
        if self.reminded_at is None and reminder_at is not None and reminder_at <= now:
            self.reminded_at = now
            remind = now < self.due_at
        flag = self.overdue_flagged_at is None and self.due_at <= now
        if flag:
            self.overdue_flagged_at = now
        return remind, flag

    # -- who may act -------------------------------------------------------------------------------
    def check_action(self, actor, action: str, reads_it: bool = False) -> None:
        """A legal action on this dossier: staff of its agency (admins anywhere), from an allowed status.
        `reads_it`: the actor's agency performs a step of it (engine/auth.py, `performs_for`), so it may see
        the dossier but not act on it: 403, not the 404 of a dossier they cannot see."""
        if not (actor.is_admin or actor.agency == self.agency):
            if actor.sees_agency(self.agency) or reads_it:
                raise PermissionDenied(
                    "Chỉ cán bộ của cơ quan tiếp nhận hồ sơ được thực hiện thao tác này",
                    "only staff of the dossier's agency may do this",
                )
            raise NotFound(f"Không tìm thấy hồ sơ '{self.code}'", f"dossier '{self.code}' not found")
        status = Status(self.status)
        if self.finished or status in FINAL:
            raise Conflict(
                f"Hồ sơ đã kết thúc ({status.label_vi}); không thể {LABEL_VI[action]}",
                f"the dossier is closed ({status.value}); no further action is possible",
            )
        if status not in WHO_MAY[action][1]:
            raise Conflict(
                f"Không thể {LABEL_VI[action]} khi hồ sơ ở trạng thái '{status.label_vi}'",
                f"cannot {action.replace('_', ' ')} a dossier in status '{status.value}'",
            )

    # -- pause and resume --------------------------------------------------------------------------
    @staticmethod
    def status_before_pause(from_status: str | None) -> Status:
        """The status a supplement request paused (the `from_status` of its event); in_process if unknown."""
        try:
            prev = Status(from_status) if from_status else None
        except ValueError:
            prev = None
        return prev if prev in (Status.NEW, Status.RECEIVED, Status.IN_PROCESS) else Status.IN_PROCESS

    def pause(self, now: datetime) -> bool:
        """A supplement is requested: the clock stops. Returns whether this is a second request (late)."""
        self.supplement_count = (self.supplement_count or 0) + 1
        self.paused_at = now
        self.set_status(Status.SUPPLEMENT_REQUESTED, now)
        return self.supplement_count >= 2

    def working_hours_used(self, cal, now: datetime) -> float | None:
        """Working hours of the deadline used by `now`, the paused time not counted (None: no deadline)."""
        if self.due_at is None:
            return None
        start = cal.clock_start(self.received_at)
        return round(max(0.0, cal.working_hours_between(start, now)) - (self.paused_hours or 0), 4)

    def resume(self, cal, now: datetime, status_before: Status) -> tuple[datetime, float]:
        """The documents are back: the due time moves on by the paused working time (module doc).
        Returns (paused at, paused working hours); the use case moves the steps and timers by as much."""
        paused_at = self.paused_at or now
        paused = max(0.0, cal.working_hours_between(paused_at, now))
        if paused > 0 and self.due_at is not None:
            self.due_at = cal.add_working_hours(self.due_at, paused)
        self.paused_hours = (self.paused_hours or 0.0) + paused
        self.paused_at = None
        self.set_status(status_before, now)
        return paused_at, paused

    def close(self, action: str, target: Status, cal, now: datetime, status_before: Status | None) -> float:
        """Refused, withdrawn or stopped by a legal action; a pause so far is not the agency's time.
        `status_before`: the status a pending supplement request paused. Returns the paused hours added."""
        if action == "refuse" and Status(self.status) == Status.SUPPLEMENT_REQUESTED and status_before not in INTAKE:
            raise Conflict(
                "Hồ sơ đã vào giai đoạn xử lý; không thể từ chối tiếp nhận (hãy dùng 'dừng xử lý')",
                "processing has started; a refusal at intake is no longer possible (use stop)",
            )
        paused = 0.0
        if self.paused_at is not None:  # the clock stops for good
            paused = max(0.0, cal.working_hours_between(self.paused_at, now))
            self.paused_hours = (self.paused_hours or 0.0) + paused
            self.paused_at = None
        self.set_status(target, now)
        return paused

    # -- extension ---------------------------------------------------------------------------------
    def extend(
        self,
        cal,
        now: datetime,
        reason: str,
        window: float,
        new_due_at: datetime | None = None,
        extra_working_days: float | None = None,
    ) -> tuple[datetime, float]:
        """The apology letter's new due time (module doc). Returns (the due time before, working hours left)."""
        if self.extended_at is not None:
            raise Conflict(
                f"Hồ sơ đã được hẹn lại một lần ({local_time(self.extended_at)}); chỉ được hẹn lại một lần",
                "the dossier already had its one new due time",
            )
        if self.due_at is None:
            raise Conflict("Hồ sơ không có thời hạn giải quyết để gia hạn", "the dossier has no due time to extend")
        left = cal.working_hours_between(now, self.due_at)
        if left >= window:
            raise Conflict(
                f"Chỉ được hẹn lại khi hồ sơ đã quá hạn hoặc còn dưới {window:g} giờ làm việc (còn {left:g} giờ)",
                f"a new due time may only be set when overdue or with less than {window:g} "
                f"working hours left ({left:g} left)",
            )
        old_due = self.due_at
        if extra_working_days is not None:
            new_due = cal.add_working_hours(max(old_due, now), HOURS_PER_WORKING_DAY * float(extra_working_days))
            if new_due <= max(old_due, now):  # e.g. a few seconds' worth of a working day
                raise InvalidInput(
                    "Số ngày gia hạn quá nhỏ",
                    "too few extra working days",
                    {"fields": {"extra_working_days": "too small"}},
                )
        else:
            assert new_due_at is not None
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
        self.due_at = new_due
        self.extended_at, self.extension_reason = now, reason
        self.reminded_at = self.overdue_flagged_at = None  # re-armed for the new date
        return old_due, left
