"""Timer expressions: ISO forms quoted or not, working time, and how SpiffWorkflow fires them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import time_machine
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnParser
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.util.task import TaskState

from engine.expressions import ExpressionError, expression_error_of
from engine.script_engine import make_script_engine
from engine.timers import (
    check_timer_expression,
    normalize_timer_expression,
    pending_timers,
    timer_functions,
    timer_value,
)

VN = timezone(timedelta(hours=7))
UTC = UTC


def soonest(wf):
    """The soonest pending timer's due instant, as the scheduler reads it."""
    pending = pending_timers(wf)
    return pending[0][1] if pending else None


# ---------------------------------------------------------------------------------------------------
# A stand-in for the office calendar (the real one is engine/calendar.py, injected by the integrator):
# Monday-Friday, 07:00-11:30 and 13:30-17:00 UTC+7, no holidays.

PERIODS = [((7, 0), (11, 30)), ((13, 30), (17, 0))]


def stub_add_working_hours(start: datetime, hours: float) -> datetime:
    assert start.tzinfo is not None
    remaining = timedelta(hours=hours)
    current = start.astimezone(VN)
    while True:
        if current.weekday() < 5:
            for (h1, m1), (h2, m2) in PERIODS:
                begin = current.replace(hour=h1, minute=m1, second=0, microsecond=0)
                end = current.replace(hour=h2, minute=m2, second=0, microsecond=0)
                if current >= end:
                    continue
                current = max(current, begin)
                if current + remaining <= end:
                    return current + remaining
                remaining -= end - current
                current = end
        current = (current + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def test_stub_calendar_matches_the_domain_example_without_holidays():
    # Friday 10:00 + 3 working days: 5 h Friday, 8 h Monday, 8 h Tuesday, 3 h Wednesday -> Wednesday 10:00
    friday = datetime(2026, 3, 6, 10, 0, tzinfo=VN)
    assert stub_add_working_hours(friday, 24) == datetime(2026, 3, 11, 10, 0, tzinfo=VN)


def calendar_functions(now=None):
    return timer_functions(stub_add_working_hours, now)


# ---------------------------------------------------------------------------------------------------
# normalize / check / timer_value


@pytest.mark.parametrize(
    "text, expected",
    [
        ("PT30S", '"PT30S"'),
        ("  PT30S \n", '"PT30S"'),
        ('"PT30S"', '"PT30S"'),
        ("'PT30S'", "'PT30S'"),
        ("P3D", '"P3D"'),
        ("p1y2m", '"p1y2m"'),
        ("R3/PT1H", '"R3/PT1H"'),
        ("R/PT10M", '"R/PT10M"'),
        ("2026-12-01T09:00:00+07:00", '"2026-12-01T09:00:00+07:00"'),
        ("2026-12-11", '"2026-12-11"'),  # would otherwise be the number 2003
        ("2026-W49-2", '"2026-W49-2"'),
        ("working_days(3)", "working_days(3)"),
        ("'PT' + str(hours) + 'H'", "'PT' + str(hours) + 'H'"),
    ],
)
def test_normalize_quotes_only_bare_iso_literals(text, expected):
    assert normalize_timer_expression(text) == expected


@pytest.mark.parametrize(
    "text, kind",
    [
        ("PT30S", "duration"),
        ('"PT30S"', "duration"),
        ("'P3DT4H'", "duration"),
        ("P1.5D", "duration"),
        ("P2W", "duration"),
        ("2026-12-01T09:00:00+07:00", "date"),
        ("'2026-12-01T09:00:00+07:00'", "date"),
        ("2026-12-01T09:00", "date"),
        ("2026-12-01", "date"),
        ("2026-W49-2T09:00", "date"),
        ("R3/PT1H", "cycle"),
        ('"R/P1D"', "cycle"),
        ("R2/2026-12-01T09:00:00+07:00/P1D", "cycle"),
        ("working_days(3)", "duration"),
        ("working_days(3)", "date"),
        ("working_hours(deadline_hours * 2)", "duration"),
        ("'PT' + str(hours) + 'H'", "duration"),
    ],
)
def test_good_timer_texts_pass_the_deploy_check(text, kind):
    assert check_timer_expression(text, kind) == []


@pytest.mark.parametrize(
    "text, kind, fragment",
    [
        ("", "duration", "trống"),
        ("PT30X", "duration", "PT30X"),
        ("30 minutes", "duration", "Syntax error"),
        ("P", "duration", "'P'"),
        ("PT", "duration", "PT"),
        ("PT30S", "date", "timeDuration"),
        ("2026-12-01T09:00:00+07:00", "duration", "timeDate"),
        ("2026-13-45T09:00:00", "date", "2026-13-45"),
        ("R3/PT0S", "cycle", "R3/PT0S"),
        ("PT1H", "cycle", "PT1H"),
        ("R3/2026-12-01", "cycle", "R3/2026-12-01"),
        ("working_days(3)", "cycle", "timeCycle"),
        ("__import__('os').system('x')", "duration", "__import__"),
        ("sleep(10)", "duration", "sleep"),
        ("42", "duration", "ISO 8601"),
    ],
)
def test_bad_timer_texts_are_refused_with_a_message(text, kind, fragment):
    problems = check_timer_expression(text, kind)
    assert problems, text
    joined = " | ".join(problems)
    assert fragment in joined
    for problem in problems:
        vi, en = problem.split(" / ", 1)
        assert vi and en


def test_timer_value_shapes_values_for_each_timer_type():
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
    due = "2026-03-03T10:00:00+07:00"
    # a due instant in a timeDuration becomes the duration until it
    assert timer_value(due, "duration", now) == "PT90000S"
    assert timer_value(datetime(2026, 3, 2, 2, 0, 30, 500000, tzinfo=UTC), "duration", now) == "PT30.500000S"
    assert timer_value("2026-03-01T00:00:00+07:00", "duration", now) == "PT0S"  # already past
    assert timer_value(timedelta(minutes=5), "duration", now) == "PT300S"
    assert timer_value("PT30S", "duration", now) == "PT30S"
    # a timeDate gets an offset; naive texts are Vietnam time
    assert timer_value("2026-12-01T09:00", "date", now) == "2026-12-01T09:00:00+07:00"
    assert timer_value("PT1H", "date", now) == "2026-03-02T03:00:00+00:00"
    assert timer_value("R2/2026-12-01T09:00/PT1H", "cycle", now) == "R2/2026-12-01T09:00:00+07:00/PT1H"
    with pytest.raises(ExpressionError):
        timer_value(30, "duration", now)
    with pytest.raises(ExpressionError):
        timer_value("tomorrow", "date", now)
    with pytest.raises(ExpressionError):
        timer_value("PT1H", "cycle", now)


def test_working_days_and_hours_use_the_injected_calendar_and_clock():
    now = datetime(2026, 3, 6, 3, 0, tzinfo=UTC)  # Friday 10:00 in Vietnam
    fns = timer_functions(stub_add_working_hours, lambda: now)
    assert fns["working_days"](3) == "2026-03-11T10:00:00+07:00"
    assert fns["working_hours"](4) == "2026-03-06T16:00:00+07:00"  # 1.5 h before lunch, 2.5 h after
    assert fns["working_days"](0.5) == fns["working_hours"](4)
    for bad in (-1, "3", True, float("nan")):
        with pytest.raises(ExpressionError):
            fns["working_days"](bad)


# ---------------------------------------------------------------------------------------------------
# In SpiffWorkflow

NS = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="defs" targetNamespace="http://motcua.test"'
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def catch_process(tag: str, text: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS}>
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait" name="Wait">
      <bpmn:timerEventDefinition><bpmn:{tag}>{_esc(text)}</bpmn:{tag}></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"""


def boundary_process(tag: str, text: str, interrupting: bool = True) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {NS}>
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review"/>
    <bpmn:userTask id="review" name="Review"/>
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="done"/>
    <bpmn:endEvent id="done"/>
    <bpmn:boundaryEvent id="deadline" name="Deadline" attachedToRef="review"
                        cancelActivity="{"true" if interrupting else "false"}">
      <bpmn:timerEventDefinition><bpmn:{tag}>{_esc(text)}</bpmn:{tag}></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="deadline" targetRef="remind"/>
    <bpmn:scriptTask id="remind"><bpmn:script>reminded = True</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f4" sourceRef="remind" targetRef="escalated"/>
    <bpmn:endEvent id="escalated"/>
  </bpmn:process>
</bpmn:definitions>"""


def start(xml: str, data=None, parser_class=BpmnParser, functions=None) -> BpmnWorkflow:
    parser = parser_class()
    parser.add_bpmn_str(xml.encode("utf-8"))
    wf = BpmnWorkflow(parser.get_spec("p"), script_engine=make_script_engine(functions))
    if data:
        for task in wf.get_tasks():
            task.data.update(data)
    wf.do_engine_steps()
    return wf


def tick(wf: BpmnWorkflow) -> None:
    """What the integrator's timer sweep does: re-check timers, then run what became ready."""
    wf.refresh_timers()
    wf.do_engine_steps()


T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 09:00 in Vietnam


@pytest.mark.parametrize("parser_class", [BpmnParser, CamundaParser])
@pytest.mark.parametrize("text", ["PT30S", '"PT30S"', "'PT30S'", " PT30S\n", "'PT' + str(seconds) + 'S'"])
def test_duration_timer_quoted_or_not_fires_after_its_time(text, parser_class):
    with time_machine.travel(T0, tick=False):
        wf = start(catch_process("timeDuration", text), {"seconds": 30}, parser_class)
        assert not wf.is_completed()
        [(task_id, due)] = pending_timers(wf)
        assert due == T0 + timedelta(seconds=30)
        assert wf.get_task_from_id(task_id).task_spec.name == "wait"
        assert wf.waiting_events()[0].value == (T0 + timedelta(seconds=30)).isoformat()
    with time_machine.travel(T0 + timedelta(seconds=29), tick=False):
        tick(wf)
        assert not wf.is_completed()
    with time_machine.travel(T0 + timedelta(seconds=31), tick=False):
        tick(wf)
        assert wf.is_completed()
        assert pending_timers(wf) == []


@pytest.mark.parametrize(
    "text, due",
    [
        ("2026-03-02T09:10:00+07:00", datetime(2026, 3, 2, 2, 10, tzinfo=UTC)),
        ("'2026-03-02T09:10:00+07:00'", datetime(2026, 3, 2, 2, 10, tzinfo=UTC)),
        ("2026-03-02T09:10:00", datetime(2026, 3, 2, 2, 10, tzinfo=UTC)),  # no offset: Vietnam time
        ("2026-03-02T02:10:00Z", datetime(2026, 3, 2, 2, 10, tzinfo=UTC)),
    ],
)
def test_date_timer_quoted_or_not_fires_at_its_instant(text, due):
    with time_machine.travel(T0, tick=False):
        wf = start(catch_process("timeDate", text))
        assert soonest(wf) == due
    with time_machine.travel(due - timedelta(seconds=1), tick=False):
        tick(wf)
        assert not wf.is_completed()
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        tick(wf)
        assert wf.is_completed()


def test_cycle_timer_fires_each_period_then_stops():
    with time_machine.travel(T0, tick=False):
        wf = start(boundary_process("timeCycle", "R3/PT1H", interrupting=False))
        assert soonest(wf) == T0 + timedelta(hours=1)
    fired = []
    for hour in range(1, 6):
        with time_machine.travel(T0 + timedelta(hours=hour, seconds=1), tick=False):
            tick(wf)
            # not get_tasks(state=COMPLETED): SpiffWorkflow's iterator then skips the children of the
            # WAITING cycle timer, where the completed reminder paths hang
            fired.append(len([t for t in wf.get_tasks(spec_name="remind") if t.state == TaskState.COMPLETED]))
    assert fired == [1, 2, 3, 3, 3]
    review = wf.get_tasks(spec_name="review")[0]
    assert review.state == TaskState.READY  # non-interrupting: the user task is still open
    assert pending_timers(wf) == []
    review.run()
    wf.do_engine_steps()
    assert wf.is_completed()


def test_working_days_in_a_boundary_duration_timer_lands_on_working_time():
    # Friday 10:00 in Vietnam: 2 working days -> Tuesday 10:00 (the weekend does not count)
    friday = datetime(2026, 3, 6, 3, 0, tzinfo=UTC)
    due = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    with time_machine.travel(friday, tick=False):
        wf = start(boundary_process("timeDuration", "working_days(days)"), {"days": 2}, functions=calendar_functions())
        [(task_id, at)] = pending_timers(wf)
        assert at == due
        assert wf.get_task_from_id(task_id).task_spec.name == "deadline"
        # SpiffWorkflow itself stored now + the duration computed from the working-time due instant
        assert wf.get_task_from_id(task_id).internal_data["event_value"] == due.isoformat()
    with time_machine.travel(due - timedelta(seconds=1), tick=False):
        tick(wf)
        assert wf.get_tasks(spec_name="review")[0].state == TaskState.READY
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        tick(wf)
        assert wf.is_completed()
        assert wf.get_tasks(spec_name="review")[0].state == TaskState.CANCELLED
        assert wf.get_tasks(spec_name="escalated")[0].data["reminded"] is True


def test_working_hours_in_a_boundary_date_timer():
    friday = datetime(2026, 3, 6, 3, 0, tzinfo=UTC)  # 10:00 in Vietnam
    due = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # 16:00 in Vietnam: 1.5 h before lunch, 2.5 h after
    with time_machine.travel(friday, tick=False):
        wf = start(boundary_process("timeDate", "working_hours(4)"), functions=calendar_functions())
        assert soonest(wf) == due
    with time_machine.travel(due + timedelta(seconds=1), tick=False):
        tick(wf)
        assert wf.is_completed()


def test_completing_the_task_first_clears_its_boundary_timer():
    with time_machine.travel(T0, tick=False):
        wf = start(boundary_process("timeDuration", "working_days(1)"), functions=calendar_functions())
        assert len(pending_timers(wf)) == 1
        wf.get_tasks(spec_name="review")[0].run()
        wf.do_engine_steps()
        assert wf.is_completed()
        assert pending_timers(wf) == []
        assert not [t for t in wf.get_tasks(spec_name="remind") if t.state == TaskState.COMPLETED]


def test_pending_timers_survive_serialization():
    with time_machine.travel(T0, tick=False):
        wf = start(boundary_process("timeDuration", "PT2H"))
        before = pending_timers(wf)
        serializer = BpmnWorkflowSerializer()
        restored = serializer.deserialize_json(serializer.serialize_json(wf))
        restored.script_engine = make_script_engine()  # the serializer does not keep the engine
        assert pending_timers(restored) == before
    with time_machine.travel(T0 + timedelta(hours=2, seconds=1), tick=False):
        tick(restored)
        assert restored.is_completed()


def test_a_bad_runtime_timer_value_is_an_expression_error():
    with time_machine.travel(T0, tick=False):
        with pytest.raises(WorkflowTaskException) as err:
            start(catch_process("timeDuration", "'in ' + str(n) + ' days'"), {"n": 3})
    assert isinstance(expression_error_of(err.value), ExpressionError)


def test_hostile_timer_expression_is_refused_at_run_time():
    with time_machine.travel(T0, tick=False):
        with pytest.raises(WorkflowTaskException) as err:
            start(catch_process("timeDuration", "__import__('os').system('touch /tmp/motcua-pwned')"))
    assert expression_error_of(err.value).reason == "refused"


@pytest.mark.parametrize(
    "text, kind", [("P99999999999Y", "duration"), ("R3/P99999999999M", "cycle"), ("P9999999999W", "date")]
)
def test_a_duration_of_a_billion_years_is_refused_at_once(text, kind):
    """SpiffWorkflow adds a duration's months one at a time: the length is bounded before it does."""
    t0 = time.monotonic()
    problems = check_timer_expression(text, kind)
    assert problems and ("100" in problems[0] or kind == "date")  # a timeDate is told to use a timeDuration
    with pytest.raises(ExpressionError):
        timer_value(text, kind)
    assert time.monotonic() - t0 < 1
