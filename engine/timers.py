"""Timer expressions of BPMN timer events, and the working-time functions they may use.

Forms accepted in `timeDate`, `timeDuration` and `timeCycle` (quoted or not):
    * ISO 8601 dates/times: `2026-12-01T09:00:00+07:00`, `'2026-12-01T09:00'`, `2026-12-01`, `2026-W49-2`;
    * ISO 8601 durations: `PT30S`, `"P3D"`, `P1Y2M`, `PT1.5H`;
    * ISO 8601 repeating intervals: `R3/PT1H`, `R/PT10M`, `R2/2026-12-01T09:00:00+07:00/P1D`;
    * sandboxed expressions over the dossier's data (`engine.expressions`), e.g. `working_days(3)`,
      `working_hours(extra_hours + 2)`, `"PT" + str(hours) + "H"`.

Date/times written without an offset are Vietnam time (UTC+7), not the server's local time (SpiffWorkflow
on its own would use the server's zone).

How SpiffWorkflow uses a timer expression (SpiffWorkflow 3.2, `bpmn/specs/event_definitions/timer.py`)
    The expression is evaluated once, when the timer task is first updated - i.e. when a catch event is
    reached, or when the activity a boundary timer is attached to becomes ready - and the result is kept in
    the task's `internal_data['event_value']`; later refreshes only compare it with
    `datetime.now(timezone.utc)`:
    * timeDate: the value must be a date/time string; `event_value` is that string.
    * timeDuration: the value must be an ISO duration string; `event_value` is `(now + duration).isoformat()`.
    * timeCycle: the value must be an `R<n>/...` string; `event_value` is
      `{'cycles': n, 'next': iso, 'duration': seconds}`, `next` moving on at each firing.

How `working_days(n)` / `working_hours(n)` fit
    They return the due instant - `add_working_hours(now(), 8 * n)` / `add_working_hours(now(), n)` on the
    office calendar - as an ISO 8601 string with offset. `SandboxScriptEngine` knows which timer it is
    evaluating and hands the value to `timer_value()`:
    * in a timeDate the ISO date/time is used as is;
    * in a timeDuration a date/time is turned into the duration from now until it, `PT<seconds>S`, so
      SpiffWorkflow's `now + duration` lands on the working-time due instant (a past instant gives `PT0S`);
    * in a timeCycle working time is refused (a cycle repeats a fixed wall-clock interval).
    A duration given to a timeDate becomes `now + duration`. No change to the BPMN file is needed; the
    unquoted forms are quoted at evaluation time by `normalize_timer_expression()`.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.calendar import HOURS_PER_WORKING_DAY, VN_TZ
from engine.expressions import ExpressionError, check_expression, safe_evaluate

__all__ = [
    "TIMER_CALENDAR",
    "timer_calendar",
    "TIMER_KINDS",
    "TIMER_FUNCTION_NAMES",
    "normalize_timer_expression",
    "check_timer_expression",
    "timer_functions",
    "timer_value",
    "evaluate_timer",
    "pending_timers",
    "due_of_event_value",
]

TIMER_KINDS = ("date", "duration", "cycle")
TIMER_FUNCTION_NAMES = frozenset({"working_days", "working_hours"})
MAX_WORKING_HOURS = HOURS_PER_WORKING_DAY * 366 * 5  # five years of working days
MAX_DURATION_YEARS = 100  # longest timer duration accepted
_PER_YEAR = {
    "years": 1,
    "months": 12,
    "weeks": 52,
    "days": 365,
    "hours": 8760,
    "minutes": 525_600,
    "seconds": 31_536_000,
}

_NUM = r"\d+(?:[.,]\d+)?"
_DURATION_RE = re.compile(
    rf"^P(?=[\dT])(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?(?:T(?=\d)(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?$",
    re.IGNORECASE,
)
_DATE_RE = re.compile(
    r"^\d{4}-?(?:\d{2}-?\d{2}|W\d{2}(?:-?\d)?)(?:[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$",
    re.IGNORECASE,
)
_CYCLE_RE = re.compile(r"^R\d*/[^/\s]+(?:/[^/\s]+)?$", re.IGNORECASE)
# Text meant as an ISO literal, valid or not (`PT30X`, `P1DT`, `R3/PTX`): it is quoted too, so that a
# typo gives an ISO error naming the text instead of a "missing variable PT30X" at run time.
_ISO_ATTEMPT_RE = re.compile(r"^(?:P[\dT]?|R\d*/|\d{4}-?(?:\d{2}|W))[^\s'\"()\[\]{},]*$", re.IGNORECASE)


def _msg(vi: str, en: str) -> str:
    return f"{vi} / {en}"


def _error(vi: str, en: str, **details) -> ExpressionError:
    return ExpressionError(vi, en, {"reason": "timer", **details})


# ---------------------------------------------------------------------------------------------------
# Literal forms


def _is_iso_literal(text: str) -> bool:
    return bool(
        _DURATION_RE.match(text) or _DATE_RE.match(text) or _CYCLE_RE.match(text) or _ISO_ATTEMPT_RE.match(text)
    )


def normalize_timer_expression(text: str) -> str:
    """Quote an unquoted ISO 8601 literal so it evaluates to a string; leave anything else as written.

    `PT30S` -> `"PT30S"`, `R3/PT1H` -> `"R3/PT1H"`, `2026-12-01T09:00:00+07:00` -> `"2026-12-01T09:00:00+07:00"`;
    `"PT30S"`, `'P1D'`, `working_days(3)` are returned stripped but unchanged.
    """
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if _is_iso_literal(stripped):
        return f'"{stripped}"'
    return stripped


def _parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date/time (week dates too), naive ones taken as Vietnam time."""
    text = text.strip()
    if not _DATE_RE.match(text):
        raise ValueError(f"not an ISO 8601 date/time: {text!r}")
    if "W" in text.upper():
        m = re.match(r"^(\d{4})-?W(\d{2})-?(\d)?(.*)$", text, re.IGNORECASE)
        if m is None:
            raise ValueError(f"not an ISO 8601 week date: {text!r}")
        year, week, day, rest = m.groups()
        day_date = datetime.fromisocalendar(int(year), int(week), int(day or 1)).date()
        text = day_date.isoformat() + rest
    dt = datetime.fromisoformat(text.replace(",", ".").replace(" ", "T"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=VN_TZ)
    return dt


def _parse_duration(text: str, start: datetime) -> timedelta:
    """An ISO 8601 duration as SpiffWorkflow will compute it from `start` (months/years by the calendar)."""
    text = text.strip()
    if not _DURATION_RE.match(text):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    parsed = TimerEventDefinition.parse_iso_duration(text)  # SpiffWorkflow's own reading must accept it
    # SpiffWorkflow walks the calendar one month at a time: bound the length before it does (P99999999999Y)
    years = sum(float(parsed.get(unit, 0)) / per_year for unit, per_year in _PER_YEAR.items())
    if years > MAX_DURATION_YEARS:
        raise ValueError(f"a timer duration longer than {MAX_DURATION_YEARS} years: {text!r}")
    return TimerEventDefinition.get_timedelta_from_start(parsed, start)


def _duration_text(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    if seconds <= 0:
        return "PT0S"
    if seconds == int(seconds):
        return f"PT{int(seconds)}S"
    return f"PT{math.ceil(seconds * 1_000_000) / 1_000_000:.6f}S"


def _cycle_text(text: str, now: datetime) -> str:
    """Validate a repeating interval; date/times without an offset get +07:00."""
    text = text.strip()
    if not _CYCLE_RE.match(text):
        raise ValueError(f"not an ISO 8601 repeating interval: {text!r}")
    head, *parts = text.split("/")
    fixed = []
    for part in parts:
        if _DURATION_RE.match(part):
            if _parse_duration(part, now).total_seconds() <= 0:
                raise ValueError("a cycle's interval must be longer than zero")
            fixed.append(part)
        else:
            fixed.append(_parse_datetime(part).isoformat())
    if all(_DATE_RE.match(p) for p in fixed):
        raise ValueError("a repeating interval needs a duration")
    result = "/".join([head.upper(), *fixed])
    TimerEventDefinition.parse_iso_recurring_interval(result)  # SpiffWorkflow's own reading must accept it
    return result


# ---------------------------------------------------------------------------------------------------
# Deploy-time check


def check_timer_expression(text: str, kind: str, known_functions: Iterable[str] | None = None) -> list[str]:
    """Problems with a timer's text (`kind`: 'date' | 'duration' | 'cycle'); empty when it is acceptable.

    Each problem is one string, Vietnamese first then English. Literals are checked completely; an
    expression is checked for what the sandbox allows (the value it yields is checked when it runs).
    """
    if kind not in TIMER_KINDS:
        raise ValueError(f"kind must be one of {TIMER_KINDS}")
    if not isinstance(text, str) or not text.strip():
        return [_msg("Biểu thức hẹn giờ trống", "empty timer expression")]
    source = normalize_timer_expression(text)
    functions = TIMER_FUNCTION_NAMES | frozenset(known_functions or ())
    problems = check_expression(source, kind="timer", known_functions=functions)
    if problems:
        return problems
    tree = ast.parse(source, mode="eval").body
    now = datetime.now(UTC)
    if isinstance(tree, ast.Constant):
        if not isinstance(tree.value, str):
            return [
                _msg(
                    "Hẹn giờ phải là chuỗi ISO 8601 hoặc biểu thức cho ra chuỗi đó",
                    "a timer must be an ISO 8601 text or an expression giving one",
                )
            ]
        return _check_literal(tree.value, kind, now)
    used = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    if kind == "cycle" and used & TIMER_FUNCTION_NAMES:
        return [
            _msg(
                "Không dùng working_days/working_hours trong timeCycle (chu kỳ lặp theo giờ đồng hồ)",
                "working_days/working_hours cannot be used in a timeCycle (cycles repeat wall-clock intervals)",
            )
        ]
    return []


_EXAMPLES = {
    "date": "2026-12-01T09:00:00+07:00",
    "duration": "PT30M, P3D",
    "cycle": "R3/PT1H",
}


def _check_literal(value: str, kind: str, now: datetime) -> list[str]:
    value = value.strip()
    example = _EXAMPLES[kind]
    try:
        if kind == "date":
            if _DURATION_RE.match(value):
                return [
                    _msg(
                        f"timeDate cần ngày giờ, không phải khoảng thời gian '{value}' (hãy dùng timeDuration)",
                        f"timeDate needs a date/time, not the duration '{value}' (use timeDuration)",
                    )
                ]
            _parse_datetime(value)
        elif kind == "duration":
            if _DATE_RE.match(value):
                return [
                    _msg(
                        f"timeDuration cần khoảng thời gian, không phải ngày giờ '{value}' (hãy dùng timeDate)",
                        f"timeDuration needs a duration, not the date/time '{value}' (use timeDate)",
                    )
                ]
            _parse_duration(value, now)
        else:
            _cycle_text(value, now)
    except Exception as err:
        return [
            _msg(
                f"'{value}' không phải giá trị ISO 8601 hợp lệ cho hẹn giờ (ví dụ: {example}): {err}",
                f"'{value}' is not a valid ISO 8601 value for this timer (e.g. {example}): {err}",
            )
        ]
    return []


# ---------------------------------------------------------------------------------------------------
# Run time

#: attribute of a live top-level workflow: `(timer task) -> WorkCalendar | None`, the calendar of the agency
#: doing the work a timer watches (set by the dossier service each time it loads the workflow; None: the
#: receiving agency's, the workflow's own script engine's); read by `timer_calendar`
TIMER_CALENDAR = "motcua_timer_calendar"


def timer_calendar(task):
    """The calendar a timer task's working time counts on, when not the receiving agency's (`TIMER_CALENDAR`)."""
    workflow = getattr(task, "workflow", None)
    top = getattr(workflow, "top_workflow", workflow)
    choose = getattr(top, TIMER_CALENDAR, None)
    return choose(task) if choose is not None else None


def timer_functions(
    add_working_hours: Callable[[datetime, float], datetime], now: Callable[[], datetime] | None = None
) -> dict[str, Callable]:
    """`working_days(n)` and `working_hours(n)` for `make_script_engine(calendar_functions=...)`.

    `add_working_hours(start, hours)` is the office calendar (aware datetimes in and out); `now()` gives
    the aware current time (default: `datetime.now(timezone.utc)`, the clock SpiffWorkflow's timers use).
    Both functions return the due instant as an ISO 8601 string in UTC+7; one working day is 8 working hours.
    """
    clock = now or (lambda: datetime.now(UTC))

    def working_hours(n):
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
            raise _error("working_hours() cần một số", "working_hours() needs a number")
        if n < 0 or n > MAX_WORKING_HOURS:
            raise _error(
                f"Số giờ làm việc phải từ 0 đến {MAX_WORKING_HOURS}",
                f"working hours must be between 0 and {MAX_WORKING_HOURS}",
            )
        start = clock()
        if start.tzinfo is None:
            raise ValueError("now() must return an aware datetime")
        due = add_working_hours(start, float(n))
        if not isinstance(due, datetime) or due.tzinfo is None:
            raise ValueError("add_working_hours() must return an aware datetime")
        return due.astimezone(VN_TZ).isoformat()

    def working_days(n):
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
            raise _error("working_days() cần một số", "working_days() needs a number")
        return working_hours(n * HOURS_PER_WORKING_DAY)

    return {"working_days": working_days, "working_hours": working_hours}


def timer_value(value: Any, kind: str, now: datetime | None = None) -> str:
    """Shape an evaluated timer expression into what SpiffWorkflow's timer of that `kind` parses.

    date -> an ISO date/time with offset; duration -> an ISO duration (a date/time becomes the duration
    from `now` until it); cycle -> an `R<n>/...` text with offsets filled in.
    """
    now = now or datetime.now(UTC)
    if kind not in TIMER_KINDS:
        raise ValueError(f"kind must be one of {TIMER_KINDS}")
    try:
        if kind == "date":
            if isinstance(value, datetime):
                return (value if value.tzinfo else value.replace(tzinfo=VN_TZ)).isoformat()
            if isinstance(value, str):
                if _DURATION_RE.match(value.strip()):
                    return (now + _parse_duration(value, now)).isoformat()
                return _parse_datetime(value).isoformat()
        elif kind == "duration":
            if isinstance(value, timedelta):
                return _duration_text(value)
            if isinstance(value, datetime):
                due = value if value.tzinfo else value.replace(tzinfo=VN_TZ)
                return _duration_text(due - now)
            if isinstance(value, str):
                text = value.strip()
                if _DURATION_RE.match(text):
                    _parse_duration(text, now)
                    return text
                return _duration_text(_parse_datetime(text) - now)
        else:
            if isinstance(value, str):
                return _cycle_text(value, now)
    except ExpressionError:
        raise
    except Exception as err:
        raise _error(
            f"Giá trị hẹn giờ không hợp lệ: {value!r} ({err})",
            f"invalid timer value: {value!r} ({err})",
            kind=kind,
            value=str(value),
        ) from err
    raise _error(
        f"Giá trị hẹn giờ không hợp lệ: {value!r} (cần chuỗi ISO 8601)",
        f"invalid timer value: {value!r} (an ISO 8601 text is needed)",
        kind=kind,
        value=str(value),
    )


def evaluate_timer(environment, expression: str, data: dict, kind: str) -> str:
    """Normalise, evaluate in the sandbox and shape a timer expression (used by SandboxScriptEngine)."""
    source = normalize_timer_expression(expression)
    if hasattr(environment, "evaluate_timer"):
        value = environment.evaluate_timer(source, data)
    else:
        value = safe_evaluate(source, data, kind="timer")
    return timer_value(value, kind)


def due_of_event_value(event_value) -> datetime | None:
    """The due instant (UTC) kept in a timer task's `internal_data['event_value']`, None if none is left.

    timeDate / timeDuration: an ISO date/time string; timeCycle: `{'cycles', 'next', 'duration'}`.
    """
    if isinstance(event_value, dict):  # cycle: {'cycles', 'next', 'duration'}
        if event_value.get("cycles") == 0 or not event_value.get("next"):
            return None
        return datetime.fromisoformat(event_value["next"]).astimezone(UTC)
    if isinstance(event_value, str):
        try:
            return _parse_datetime(event_value).astimezone(UTC)
        except ValueError:
            return TimerEventDefinition.get_datetime(event_value)
    return None


def pending_timers(workflow) -> list[tuple[UUID, datetime]]:
    """`(task id, due instant in UTC)` of every timer the workflow waits on, soonest first.

    Reads SpiffWorkflow's event manager (rebuilt on deserialisation) and each timer task's
    `internal_data['event_value']`. A cycle timer gives its next firing. Timers not evaluated yet
    (their activity not reached) are not listed.
    """
    top = getattr(workflow, "top_workflow", workflow)
    result = []
    for task in list(top.event_manager.tasks.values()):
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, MultipleEventDefinition):
            is_timer = any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
        else:
            is_timer = isinstance(definition, TimerEventDefinition)
        if not is_timer:
            continue
        due = due_of_event_value(task.internal_data.get("event_value"))
        if due is not None:
            result.append((task.id, due))
    result.sort(key=lambda pair: pair[1])
    return result
