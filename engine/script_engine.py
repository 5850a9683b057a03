"""The script engine SpiffWorkflow runs analysts' BPMN with: everything goes through the sandbox.

SpiffWorkflow's default script environment (`TaskDataEnvironment`) hands conditions and scripts to Python's
own evaluator with task data as globals; `SandboxEnvironment` replaces it with `engine.expressions`, and
`make_script_engine()` is the only script engine the product gives a workflow (also after every restore).
Timer expressions are shaped for their timer by `engine.timers`. This module depends on both; neither
depends on it (no import cycle).
"""

from __future__ import annotations

import ast
from collections import ChainMap
from collections.abc import Callable, Mapping

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException

from . import timers
from .expressions import (
    ExpressionError,
    all_functions,
    check_expression,
    expression_error_of,
    run_script,
    safe_evaluate,
)

__all__ = ["SandboxEnvironment", "SandboxScriptEngine", "make_script_engine"]


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that runs everything through the sandbox.

    `evaluate` serves gateway conditions, timer expressions, multi-instance cardinalities and conditional
    events; `execute` serves script tasks. `external_context` (SpiffWorkflow passes data objects there) is
    readable with lower priority than task data and is never written back.
    """

    def __init__(self, functions: Mapping[str, Callable] | None = None):
        super().__init__({})
        self.functions = all_functions(functions)

    def evaluate(self, expression, context, external_context=None):
        names = ChainMap(context, dict(external_context or {})) if external_context else context
        return safe_evaluate(expression, names, functions=self.functions)

    def evaluate_timer(self, expression, context, external_context=None):
        names = ChainMap(context, dict(external_context or {})) if external_context else context
        return safe_evaluate(expression, names, functions=self.functions, kind="timer")

    def execute(self, script, context, external_context=None):
        run_script(script, context, self.functions, external=external_context or None)
        return True

    def call_service(self, context, **kwargs):
        raise ExpressionError("Chưa hỗ trợ service task", "service tasks are not supported", {"reason": "refused"})


def _timer_kind(task, expression) -> str | None:
    """'date' / 'duration' / 'cycle' when SpiffWorkflow is evaluating a timer's expression, else None."""
    definition = getattr(getattr(task, "task_spec", None), "event_definition", None)
    candidates = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
    for d in candidates:
        if getattr(d, "expression", None) == expression:
            if isinstance(d, TimeDateEventDefinition):
                return "date"
            if isinstance(d, DurationTimerEventDefinition):
                return "duration"
            if isinstance(d, CycleTimerEventDefinition):
                return "cycle"
    return None


_ENVIRONMENTS: dict = {}  # calendar -> the environment whose working_days/working_hours count on it


def _timer_environment(task):
    """The environment for a timer whose working time counts on another agency's calendar (`timers.timer_calendar`),
    one per calendar; None: the engine's own."""
    cal = timers.timer_calendar(task)
    if cal is None:
        return None
    env = _ENVIRONMENTS.get(cal)
    if env is None:
        if len(_ENVIRONMENTS) >= 64:
            _ENVIRONMENTS.clear()
        env = _ENVIRONMENTS[cal] = SandboxEnvironment(timers.timer_functions(cal.add_working_hours))
    return env


class SandboxScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine with the sandbox, and timer expressions made forgiving.

    When SpiffWorkflow evaluates a timer's expression, the text is first normalised (an unquoted ISO
    literal becomes a string) and the result is shaped for that timer type (see `engine.timers`):
    a working-time due instant in a timeDuration becomes the duration until it, and so on.

    Errors reach SpiffWorkflow as `WorkflowTaskException` (so its own error paths keep working) with the
    `ExpressionError` as `.expression_error` and as `__cause__`; see `expression_error_of`.
    """

    def __init__(self, environment: SandboxEnvironment | None = None):
        super().__init__(environment=environment or SandboxEnvironment())

    def validate(self, expression):
        # A text that is not an expression at all is a SyntaxError, as from SpiffWorkflow's own engine: its DMN
        # engine relies on it to tell an entry such as `< 5` (the input is prepended) from a value such as `5`.
        ast.parse(expression, mode="eval")
        problems = check_expression(expression, kind="condition", known_functions=self.environment.functions)
        if problems:
            raise ExpressionError(
                "Biểu thức bị từ chối: " + "; ".join(problems),
                "expression refused: " + "; ".join(problems),
                {"problems": problems},
            )

    @staticmethod
    def _wrap(task, what: str, text: str, err: Exception) -> WorkflowTaskException:
        if isinstance(err, ExpressionError):
            wte = WorkflowTaskException(f"{what} '{text}': {err.message}", task=task, exception=err)
        else:
            wte = WorkflowTaskException(f"{what} '{text}': {type(err).__name__}: {err}", task=task, exception=err)
        wte.expression_error = expression_error_of(err)
        return wte

    def evaluate(self, task, expression, external_context=None):
        kind = _timer_kind(task, expression)
        try:
            if kind is None:
                return self.environment.evaluate(expression, task.data, external_context)
            return timers.evaluate_timer(_timer_environment(task) or self.environment, expression, task.data, kind)
        except SpiffWorkflowException as se:
            se.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise self._wrap(task, "Error evaluating expression", expression, err) from err

    def execute(self, task, script, external_context=None):
        try:
            return self.environment.execute(script, task.data, external_context or {})
        except SpiffWorkflowException as se:
            se.add_note("Error running script")
            raise
        except Exception as err:
            raise self._wrap(task, "Error running script", script, err) from err


def make_script_engine(calendar_functions: Mapping[str, Callable] | None = None) -> PythonScriptEngine:
    """The only script engine to give a BpmnWorkflow (also after every deserialisation).

    `calendar_functions` are extra functions for expressions, typically
    `engine.timers.timer_functions(calendar.add_working_hours, now)`.
    """
    return SandboxScriptEngine(environment=SandboxEnvironment(calendar_functions))
