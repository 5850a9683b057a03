"""The sandboxed expression language of analysts' BPMN diagrams.

Gateway conditions, script tasks and timer expressions are written in a small, Python-like language
and run here, never through Python's own evaluator. SpiffWorkflow's default script environment
(`TaskDataEnvironment`) hands them to the interpreter with task data as globals; `SandboxEnvironment`
replaces it, and `make_script_engine()` is the only script engine the product gives a workflow.

How an expression runs
    1. `check_expression()` parses it with `ast` and walks every node against a whitelist (the same check
       runs at deploy time, where it reports every problem, and before every run, where it refuses).
    2. A `simpleeval.EvalWithCompoundTypes` subclass walks the tree. Our subclass adds a step, time and
       allocation budget, stricter arithmetic, and its own method table in place of attribute access.

The language
    * literals (numbers, strings, lists, tuples, dicts, sets), arithmetic, comparisons, `and/or/not`,
      `x if c else y`, subscripts and slices, f-strings (format widths up to 100), list and dict
      comprehensions and generator expressions;
    * names are the dossier's data (plus, in SpiffWorkflow, its data objects); a missing name is an
      `ExpressionError` naming it; names starting with `__` are refused;
    * calls only to whitelisted functions (`DEFAULT_FUNCTIONS` plus any passed in, e.g. `working_days`);
    * no attribute access at all, except calling a whitelisted method (`READ_METHODS`) on a str, dict or
      list - `name.lower()`, `applicant.get('phone', '')`, `s.startswith('0')`. Scripts may also call the
      mutating methods of `SCRIPT_METHODS` (`items.append(x)`, `d.update(...)`); conditions may not;
    * scripts (`run_script`) are sequences of: assignments (`x = ...`, `x += ...`, `x: int = ...`,
      `d['k'] = ...`, `a, b = ...`), `if/elif/else`, `pass`, bare calls, and `for` loops over a list
      (with `break` / `continue`, without `else`). Loops are allowed because they are bounded: a script
      executes at most `MAX_SCRIPT_STEPS` statements in all, and shares one step/time budget.
    * no import, def, class, lambda, with, try, raise, global, nonlocal, del, while, yield, await, walrus,
      `*args` / `**kwargs`, `%`-formatting of strings, `assert`, `match`, `return`.

Limits (per evaluation, or per script run): `MAX_STEPS` AST nodes evaluated, `MAX_SECONDS` wall-clock,
`MAX_SIZE` items in any string/list/dict built, `MAX_ALLOCATION` items built in all (shared sub-lists
counted each time), integers up to `MAX_INT_BITS` bits, `MAX_COMPREHENSION` comprehension elements per
expression, `round()` to at most 100 digits. Scripts also: `MAX_SCRIPT_STATEMENTS` written,
`MAX_SCRIPT_STEPS` executed; they run on a copy of the data, which is replaced only on success.
"""

from __future__ import annotations

import ast
import contextvars
import copy
import re
import time
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from datetime import date as _date
from functools import lru_cache
from typing import Any
from uuid import UUID

import simpleeval

from engine.calendar import VN_TZ
from engine.errors import InvalidInput
from engine.sandbox_pool import WorkerFailed, WorkerPool

__all__ = [
    "ExpressionError",
    "safe_evaluate",
    "run_script",
    "check_expression",
    "runs_inline",
    "expression_error_of",
    "DEFAULT_FUNCTIONS",
    "READ_METHODS",
    "SCRIPT_METHODS",
]

# ---------------------------------------------------------------------------------------------------
# Limits
MAX_SOURCE_LENGTH = 20_000  # characters of one condition, timer or script
MAX_STEPS = 200_000  # AST nodes evaluated per expression / per script run
MAX_SECONDS = 1.0  # wall-clock per expression / per script run
MAX_SIZE = 100_000  # length of any string, list, dict, set or tuple produced
MAX_ALLOCATION = 500_000  # total items produced by one evaluation / script run
MAX_BYTES = 2_000_000  # total characters of text produced (or about to be) by one evaluation / script run
MAX_INT_BITS = 4_096  # about 1,233 decimal digits
# elements visited by all comprehensions of one expression (simpleeval's own bound, reset per expression)
MAX_COMPREHENSION = simpleeval.MAX_COMPREHENSION_LENGTH
MAX_SCRIPT_STEPS = 10_000  # statements executed by one script run (loop bodies included)
MAX_SCRIPT_STATEMENTS = 500  # statements written in one script
MAX_FORMAT_WIDTH = 100  # largest number allowed in an f-string format spec
# the limits above, by name: sent with every job to the worker pool so that both sides apply the same ones
LIMIT_NAMES = (
    "MAX_STEPS",
    "MAX_SECONDS",
    "MAX_SIZE",
    "MAX_ALLOCATION",
    "MAX_BYTES",
    "MAX_INT_BITS",
    "MAX_COMPREHENSION",
    "MAX_SCRIPT_STEPS",
    "MAX_SCRIPT_STATEMENTS",
)


KINDS = ("condition", "script", "timer")


class ExpressionError(InvalidInput):
    """An expression or script that cannot be accepted or failed while running.

    `message_vi` / `message_en` are for people; `details` is `{"expression": ..., "reason": ...}` plus
    `"name"` for a missing variable / unknown function and `"problems"` for a refused text.
    """

    code = "expression_invalid"

    def __init__(self, message_vi: str, message_en: str, details: dict | None = None):
        super().__init__(message_vi, message_en, details or {})

    @property
    def reason(self) -> str | None:
        return (self.details or {}).get("reason")


def _msg(vi: str, en: str) -> str:
    return f"{vi} / {en}"


# ---------------------------------------------------------------------------------------------------
# Whitelisted functions


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _safe_sum(iterable, start=0):
    """sum() of numbers only (summing lists is quadratic and unbounded in time)."""
    total = start
    if not _is_number(total):
        raise TypeError("sum() only adds numbers")
    for n, x in enumerate(iterable):
        if n >= MAX_SIZE:
            raise _TooLarge("sum() over too many items")
        if not isinstance(x, (int, float)):
            raise TypeError("sum() only adds numbers")
        total = total + x
        _check_int(total)
    return total


def _safe_round(number, ndigits=None):
    """round(), with ndigits bounded (round(5, -10**9) would compute 10**(10**9))."""
    if ndigits is None:
        return round(number)
    if not isinstance(ndigits, int) or abs(ndigits) > 100:
        raise _TooLarge("round() takes at most 100 digits")
    return round(number, ndigits)


def _safe_range(*args):
    r = range(*args)
    if len(r) > MAX_COMPREHENSION:
        raise _TooLarge(f"range() longer than {MAX_COMPREHENSION}")
    return r


def _to_vn_datetime(value) -> datetime:
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, _date):
        dt = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.strip())
    else:
        raise TypeError("expected an ISO 8601 date or datetime string")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=VN_TZ)
    return dt.astimezone(VN_TZ)


def _now() -> str:
    """The current time in Vietnam (UTC+7), ISO 8601 with offset, to the second."""
    return datetime.now(UTC).astimezone(VN_TZ).replace(microsecond=0).isoformat()


def _today() -> str:
    """Today's date in Vietnam (UTC+7), `YYYY-MM-DD`."""
    return datetime.now(UTC).astimezone(VN_TZ).date().isoformat()


def _date_of(value) -> str:
    """`date('2026-02-13T10:00:00+07:00')` -> `'2026-02-13'`: the Vietnamese calendar date of a value."""
    return _to_vn_datetime(value).date().isoformat()


def _days_between(start, end) -> int:
    """Calendar days from `start` to `end` (ISO dates or datetimes, taken in UTC+7)."""
    return (_to_vn_datetime(end).date() - _to_vn_datetime(start).date()).days


# The budget of the evaluation running in this thread (set by _Sandbox.run_node), for the builtins below:
# they are called by the tree walker, but also by sorted/min/max as a `key=`.
_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("expression_budget", default=None)


def _charge(nbytes: int = 0, items: int = 0) -> None:
    """Count text about to be built (and items) against the running evaluation's budget, before building."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(nbytes, items)


def _text_size(value, limit: int) -> int:
    """A lower bound of len(str(value)), stopping once past `limit` (so cheap whatever `value` is).

    Shared sub-lists count each time they occur, as `str` would print them.
    """
    total, stack = 0, [value]
    while stack:
        if total > limit:
            return total
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, int) and not isinstance(item, bool):
            total += max(1, item.bit_length() * 3 // 10)
        else:
            total += 4
    return total


def _to_text(value) -> str:
    """str(value), refused before building when the text would be longer than MAX_SIZE."""
    size = _text_size(value, MAX_SIZE)
    if size > MAX_SIZE:
        raise _TooLarge(f"text longer than {MAX_SIZE}")
    _charge(size)
    return str(value)


def _safe_str(*args):
    if len(args) != 1:
        raise TypeError("str() takes one value")
    return _to_text(args[0])


def _ordering(name: str, builtin: Callable):
    """sorted/min/max: the comparisons and every `key=` call are counted before they run."""

    def ordered(*args, key=None, **kwargs):
        items = list(args[0]) if len(args) == 1 else list(args)
        n = len(items)
        if n > MAX_SIZE:
            raise _TooLarge(f"{name}() over more than {MAX_SIZE} items")
        _charge(items=n)
        if key is not None:
            keys = [key(item) for item in items]  # key is a whitelisted (so budgeted) function
            weight = _text_size(keys, MAX_BYTES)
            _charge(weight * max(1, n.bit_length()), n)
            chosen = builtin(range(n), key=keys.__getitem__, **kwargs)
            return [items[i] for i in chosen] if name == "sorted" else items[chosen]
        weight = _text_size(items, MAX_BYTES)
        _charge(weight * max(1, n.bit_length()))  # n log n comparisons of at most this much text
        return builtin(items, **kwargs) if len(args) == 1 else builtin(*items, **kwargs)

    ordered.__name__ = name
    return ordered


def _collection(name: str, builtin: Callable):
    def build(*args, **kwargs):
        value = builtin(*args, **kwargs)  # linear in its input, itself already counted
        _charge(items=len(value))
        return value

    build.__name__ = name
    return build


DEFAULT_FUNCTIONS: dict[str, Callable] = {
    "len": len,
    "min": _ordering("min", min),
    "max": _ordering("max", max),
    "abs": abs,
    "round": _safe_round,
    "int": int,
    "float": float,
    "str": _safe_str,
    "bool": bool,
    "sum": _safe_sum,
    "any": any,
    "all": all,
    "sorted": _ordering("sorted", sorted),
    "list": _collection("list", list),
    "dict": _collection("dict", dict),
    "tuple": _collection("tuple", tuple),
    "set": _collection("set", set),
    "range": _safe_range,
    "now": _now,
    "today": _today,
    "date": _date_of,
    "days_between": _days_between,
}


# ---------------------------------------------------------------------------------------------------
# Methods: the only attribute access there is


def _check_len(n: int, what: str = "value"):
    if n > MAX_SIZE:
        raise _TooLarge(f"{what} longer than {MAX_SIZE}")


def _str_replace(s: str, old: str, new: str, count: int = -1):
    if not (isinstance(old, str) and isinstance(new, str)):
        raise TypeError("replace() takes strings")
    hits = s.count(old) if old else len(s) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    size = len(s) + hits * max(0, len(new) - len(old))
    _check_len(size, "string")
    _charge(size)
    return s.replace(old, new, count)


def _str_join(sep: str, items):
    items = list(items)
    if not all(isinstance(i, str) for i in items):
        raise TypeError("join() takes a list of strings")
    size = sum(len(i) for i in items) + len(sep) * max(0, len(items) - 1)
    _check_len(size, "string")
    _charge(size)
    return sep.join(items)


def _list_append(lst: list, item):
    _check_len(len(lst) + 1, "list")
    lst.append(item)


def _list_extend(lst: list, items):
    items = list(items)
    _check_len(len(lst) + len(items), "list")
    lst.extend(items)


def _list_insert(lst: list, index, item):
    _check_len(len(lst) + 1, "list")
    lst.insert(index, item)


def _dict_update(d: dict, other=(), **kw):
    other = dict(other)
    _check_len(len(d) + len(other) + len(kw), "dict")
    d.update(other, **kw)


READ_METHODS: dict[type, dict[str, Callable]] = {
    str: {
        **{
            name: getattr(str, name)
            for name in (
                "lower",
                "upper",
                "strip",
                "lstrip",
                "rstrip",
                "startswith",
                "endswith",
                "title",
                "capitalize",
                "casefold",
                "isdigit",
                "isalpha",
                "isalnum",
                "isspace",
                "isnumeric",
                "isdecimal",
                "islower",
                "isupper",
                "split",
                "rsplit",
                "splitlines",
                "count",
                "find",
                "rfind",
                "removeprefix",
                "removesuffix",
            )
        },
        "replace": _str_replace,
        "join": _str_join,
    },
    dict: {
        "get": dict.get,
        "keys": lambda d: list(d.keys()),
        "values": lambda d: list(d.values()),
        "items": lambda d: [list(kv) for kv in d.items()],
    },
    list: {"index": list.index, "count": list.count},
}

SCRIPT_METHODS: dict[type, dict[str, Callable]] = {
    list: {
        "append": _list_append,
        "extend": _list_extend,
        "insert": _list_insert,
        "pop": list.pop,
        "remove": list.remove,
        "clear": list.clear,
    },
    dict: {
        "update": _dict_update,
        "pop": dict.pop,
        "setdefault": dict.setdefault,
        "clear": dict.clear,
    },
}

_READ_METHOD_NAMES = frozenset(n for table in READ_METHODS.values() for n in table)
_SCRIPT_METHOD_NAMES = frozenset(n for table in SCRIPT_METHODS.values() for n in table) - _READ_METHOD_NAMES


def _method_for(obj, name: str, allow_mutation: bool):
    for typ in (str, dict, list):  # exact families only: no int/float/object attributes at all
        if isinstance(obj, typ):
            fn = READ_METHODS.get(typ, {}).get(name)
            if fn is None and allow_mutation:
                fn = SCRIPT_METHODS.get(typ, {}).get(name)
            if fn is None:
                if name in SCRIPT_METHODS.get(typ, {}):
                    raise _Refused(
                        _msg(
                            f"Phương thức .{name}() chỉ dùng được trong script, không dùng trong điều kiện",
                            f".{name}() may only be used in scripts, not in conditions",
                        )
                    )
                raise _Refused(
                    _msg(
                        f"Không cho phép gọi .{name}() trên giá trị kiểu {typ.__name__}",
                        f".{name}() is not allowed on a {typ.__name__}",
                    )
                )
            return fn
    raise _Refused(
        _msg(
            f"Không cho phép gọi .{name}() trên giá trị kiểu {type(obj).__name__}",
            f".{name}() is not allowed on a {type(obj).__name__}",
        )
    )


# ---------------------------------------------------------------------------------------------------
# Internal signals, turned into ExpressionError at the boundary


class _Refused(Exception):
    """Something the language does not allow (message already bilingual)."""


class _TooLarge(Exception):
    """A size/number limit was hit."""


class _OutOfBudget(Exception):
    """Step or time budget exhausted."""


class _Missing(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _check_int(value):
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _TooLarge(f"number larger than 2**{MAX_INT_BITS}")


# ---------------------------------------------------------------------------------------------------
# Operators with tighter bounds than simpleeval's defaults


def _sized(x) -> int | None:
    return len(x) if isinstance(x, (str, bytes, list, tuple, dict, set, frozenset)) else None


def _deep_size(value, limit: int) -> int:
    """Items in `value`, nested ones included and shared ones counted each time; stops past `limit`."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return count


def _pow(a, b):
    if isinstance(a, int) and isinstance(b, int) and b > 0:
        if b > MAX_INT_BITS or max(1, abs(a).bit_length()) * b > MAX_INT_BITS + 64 and abs(a) > 1:
            raise _TooLarge(f"{a} ** {b} is too large")
    elif _is_number(a) and _is_number(b) and abs(b) > MAX_INT_BITS and abs(a) > 1:
        raise _TooLarge(f"{a} ** {b} is too large")
    return a**b


def _mult(a, b):
    for seq, times in ((a, b), (b, a)):
        n = _sized(seq)
        if n is not None and isinstance(times, int) and times > 0:
            _check_len(n * times)
            if isinstance(seq, (str, bytes)):
                _charge(n * times)
            else:
                # [[0] * 99999] * 99999 is small in memory but huge to walk or to store as JSON
                deep = _deep_size(seq, MAX_ALLOCATION)
                if deep * times > MAX_ALLOCATION:
                    raise _TooLarge("repeated list too large")
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
            raise _TooLarge("product too large")
    return a * b


def _add(a, b):
    na, nb = _sized(a), _sized(b)
    if na is not None and nb is not None:
        _check_len(na + nb)
        if isinstance(a, str):
            _charge(na + nb)
    return a + b


def _mod(a, b):
    if isinstance(a, (str, bytes)):
        raise _Refused(
            _msg(
                "Không hỗ trợ định dạng chuỗi bằng %; hãy dùng f-string",
                "%-formatting of strings is not supported; use an f-string",
            )
        )
    return a % b


def _lshift(a, b):
    if isinstance(b, int) and b > MAX_INT_BITS:
        raise _TooLarge("shift too large")
    return a << b


def _rshift(a, b):
    if isinstance(b, int) and b > MAX_INT_BITS:
        raise _TooLarge("shift too large")
    return a >> b


_OPERATORS = dict(simpleeval.DEFAULT_OPERATORS)
_OPERATORS.update(
    {
        ast.Pow: _pow,
        ast.Mult: _mult,
        ast.Add: _add,
        ast.Mod: _mod,
        ast.LShift: _lshift,
        ast.RShift: _rshift,
    }
)
_OPERATORS.pop(ast.MatMult, None)


# ---------------------------------------------------------------------------------------------------
# The evaluator


class _Budget:
    """Steps, wall-clock and allocation shared by one evaluation or one script run."""

    def __init__(self, max_steps=None, max_seconds=None, max_allocation=None):
        # read the module's limits at run time, so that an operator (or a test) can tune them
        self.max_steps = MAX_STEPS if max_steps is None else max_steps
        self.deadline = time.monotonic() + (MAX_SECONDS if max_seconds is None else max_seconds)
        self.max_allocation = MAX_ALLOCATION if max_allocation is None else max_allocation
        self.max_bytes = MAX_BYTES
        self.steps = 0
        self.allocated = 0
        self.text = 0

    def tick(self):
        self.steps += 1
        if self.steps > self.max_steps:
            raise _OutOfBudget("steps")
        if not self.steps & 63 and time.monotonic() > self.deadline:
            raise _OutOfBudget("time")

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise _OutOfBudget("time")

    def allocate(self, n: int):
        self.allocated += n
        if self.allocated > self.max_allocation:
            raise _TooLarge("too much data built")

    def charge(self, nbytes: int, items: int = 0):
        """Count work about to be done; refuse it (before it is done) when over the budget."""
        if nbytes:
            self.text += nbytes
            if self.text > self.max_bytes:
                raise _TooLarge(f"more than {self.max_bytes} characters of text built")
        if items:
            self.allocate(items)
        self.check_time()


# Nodes whose value is fetched (from task data, a literal or a checked value) rather than built.
_FETCH_NODES = (ast.Name, ast.Constant, ast.Subscript)
_SCALARS = (int, float, complex, bool, type(None))
# Values SpiffWorkflow's serializer itself stores in task data; harmless, immutable, passed through as they are.
_SPIFF_VALUES = (datetime, _date, timedelta, UUID)


class _Sandbox(simpleeval.EvalWithCompoundTypes):
    """simpleeval's tree walker with our budget, operators, names and method table.

    Only ever fed trees that passed `check_expression`; the run-time checks below are a second wall.
    """

    def __init__(self, names: Mapping, functions: Mapping[str, Callable], budget: _Budget, allow_mutation: bool):
        super().__init__(operators=dict(_OPERATORS), functions=dict(functions), names=names)
        # EvalWithCompoundTypes adds list/tuple/dict/set itself; keep exactly the whitelist we were given.
        self.functions = dict(functions)
        self.budget = budget
        self.allow_mutation = allow_mutation
        self.ATTR_INDEX_FALLBACK = False
        self.nodes.pop(ast.Import, None)
        self.nodes.pop(ast.Assign, None)
        self.nodes.pop(ast.AugAssign, None)

    # one entry point, used by safe_evaluate and by the script runner
    def run_node(self, node: ast.AST, source: str):
        self.expr = source
        self._max_count = 0
        token = _BUDGET.set(self.budget)
        try:
            return self._eval(node)
        finally:
            _BUDGET.reset(token)

    def _eval(self, node):
        self.budget.tick()
        handler = self.nodes.get(type(node))  # simpleeval's dispatch table (the comprehension swaps Name)
        if handler is None:
            raise _Refused(
                _msg(f"Không cho phép cú pháp '{type(node).__name__}'", f"'{type(node).__name__}' is not available")
            )
        result = handler(node)
        if not isinstance(node, _FETCH_NODES):
            self._inspect(result)
        return result

    def _check_disallowed_items(self, item):  # replaced by the bounded walk of _inspect
        self._inspect(item)

    def _inspect(self, value):
        """Bounded walk of a value just built: sizes, integer sizes, and only data or whitelisted functions.

        Shared sub-lists are counted each time they occur, so aliasing cannot hide a huge structure; the
        walk stops at MAX_ALLOCATION items.
        """
        count, text, stack = 0, 0, [value]
        allowed_functions = self.functions.values()
        while stack:
            item = stack.pop()
            count += 1
            if count > MAX_ALLOCATION:
                raise _TooLarge("value too large")
            kind = type(item)
            if kind is int:
                _check_int(item)
            elif kind in _SCALARS or isinstance(item, (range, *_SPIFF_VALUES)):
                continue
            elif isinstance(item, (str, bytes)):
                _check_len(len(item), "string")
                text += len(item)
            elif isinstance(item, (list, tuple, set, frozenset)):
                _check_len(len(item))
                stack.extend(item)
            elif isinstance(item, dict):
                _check_len(len(item), "dict")
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, int):  # int subclasses
                _check_int(item)
            elif callable(item) and any(item is f for f in allowed_functions):
                continue
            else:
                raise _Refused(
                    _msg(
                        f"Giá trị kiểu {kind.__name__} không được phép",
                        f"values of type {kind.__name__} are not allowed",
                    )
                )
        self.budget.allocate(count)
        self.budget.charge(text)

    def _eval_name(self, node):
        name = node.id
        if name.startswith("__"):
            raise _Refused(_msg(f"Không được dùng tên '{name}'", f"the name '{name}' is not allowed"))
        try:
            return self.names[name]
        except KeyError:
            pass
        if name in ("True", "False", "None"):
            return {"True": True, "False": False, "None": None}[name]
        if name in self.functions:
            return self.functions[name]
        raise _Missing(name)

    def _eval_attribute(self, node):
        raise _Refused(
            _msg(
                f"Không cho phép truy cập thuộc tính '.{node.attr}' (chỉ được gọi các phương thức cho phép)",
                f"attribute access '.{node.attr}' is not allowed (only calls to whitelisted methods)",
            )
        )

    def _eval_call(self, node):
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _Refused(_msg("Không hỗ trợ *args, **kwargs", "*args, **kwargs are not supported"))
        if isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name.startswith("_"):
                raise _Refused(_msg(f"Không cho phép '.{name}'", f"'.{name}' is not allowed"))
            target = self._eval(node.func.value)
            method = _method_for(target, name, self.allow_mutation)
            args = [self._eval(a) for a in node.args]
            kwargs = {k.arg: self._eval(k.value) for k in node.keywords}
            return method(target, *args, **kwargs)
        if not isinstance(node.func, ast.Name):
            raise _Refused(_msg("Chỉ được gọi hàm theo tên", "only named functions may be called"))
        func = self.functions.get(node.func.id)
        if func is None:
            raise simpleeval.FunctionNotDefined(node.func.id, self.expr)
        if func in simpleeval.DISALLOW_FUNCTIONS:
            raise _Refused(_msg("Hàm bị cấm", "this function is forbidden"))
        args = [self._eval(a) for a in node.args]
        kwargs = {k.arg: self._eval(k.value) for k in node.keywords}
        for value in list(args) + list(kwargs.values()):
            if callable(value) and value not in self.functions.values():
                raise _Refused(
                    _msg(
                        "Không được truyền hàm lạ làm tham số", "only whitelisted functions may be passed as arguments"
                    )
                )
        return func(*args, **kwargs)

    def _eval_formattedvalue(self, node):
        value = self._eval(node.value)
        if node.conversion not in (-1, None):
            raise _Refused(_msg("Không hỗ trợ !r/!s/!a trong f-string", "!r/!s/!a are not supported in f-strings"))
        if node.format_spec is None:
            return _to_text(value)
        spec = self._eval(node.format_spec)
        if any(int(d) > MAX_FORMAT_WIDTH for d in re.findall(r"\d+", spec)):
            raise _TooLarge("format width too large")
        size = _text_size(value, MAX_SIZE)
        if size > MAX_SIZE:
            raise _TooLarge(f"text longer than {MAX_SIZE}")
        self.budget.charge(size + MAX_FORMAT_WIDTH)
        return format(value, spec)

    def _eval_joinedstr(self, node):
        parts, length = [], 0
        for part in node.values:
            text = self._eval(part)
            text = text if isinstance(text, str) else _to_text(text)
            length += len(text)
            _check_len(length, "string")
            parts.append(text)
        self.budget.charge(length)
        return "".join(parts)


# ---------------------------------------------------------------------------------------------------
# Static check


_EXPR_NODES = (
    ast.Expression,
    ast.Expr,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.keyword,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.Attribute,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)
_SCRIPT_NODES = (
    ast.Module,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.If,
    ast.Pass,
    ast.For,
    ast.Break,
    ast.Continue,
)

_FORBIDDEN = {
    ast.Import: ("câu lệnh import", "import statements"),
    ast.ImportFrom: ("câu lệnh import", "import statements"),
    ast.Lambda: ("lambda", "lambda"),
    ast.FunctionDef: ("định nghĩa hàm (def)", "function definitions (def)"),
    ast.AsyncFunctionDef: ("định nghĩa hàm (def)", "function definitions (def)"),
    ast.ClassDef: ("định nghĩa lớp (class)", "class definitions"),
    ast.With: ("with", "with"),
    ast.AsyncWith: ("with", "with"),
    ast.Try: ("try/except", "try/except"),
    ast.Raise: ("raise", "raise"),
    ast.Assert: ("assert", "assert"),
    ast.Global: ("global", "global"),
    ast.Nonlocal: ("nonlocal", "nonlocal"),
    ast.Delete: ("del", "del"),
    ast.While: ("vòng lặp while", "while loops"),
    ast.AsyncFor: ("async for", "async for"),
    ast.Yield: ("yield", "yield"),
    ast.YieldFrom: ("yield", "yield"),
    ast.Await: ("await", "await"),
    ast.Return: ("return", "return"),
    ast.Starred: ("toán tử * (giải nén)", "starred unpacking"),
    ast.NamedExpr: ("toán tử :=", "the := operator"),
    ast.SetComp: ("set comprehension (hãy dùng list)", "set comprehensions (use a list)"),
    ast.MatMult: ("toán tử @", "the @ operator"),
}
for _name in ("TryStar", "Match"):
    if hasattr(ast, _name):
        _FORBIDDEN[getattr(ast, _name)] = (_name.lower(), _name.lower())


def _where(node) -> tuple[str, str]:
    line = getattr(node, "lineno", None)
    return (f" (dòng {line})", f" (line {line})") if line else ("", "")


class _Checker(ast.NodeVisitor):
    def __init__(self, kind: str, functions: frozenset[str]):
        self.kind = kind
        self.functions = functions
        self.problems: list[str] = []

    def problem(self, node, vi: str, en: str):
        where_vi, where_en = _where(node) if self.kind == "script" else ("", "")
        self.problems.append(f"{vi}{where_vi} / {en}{where_en}")

    def generic_visit(self, node):
        allowed = _EXPR_NODES + (_SCRIPT_NODES if self.kind == "script" else ())
        forbidden = _FORBIDDEN.get(type(node))
        if forbidden:
            self.problem(node, f"Không cho phép {forbidden[0]}", f"{forbidden[1]} not allowed")
            return  # don't pile up messages for the inside of a refused construct
        if not isinstance(node, allowed):
            name = type(node).__name__
            self.problem(node, f"Không cho phép cú pháp '{name}'", f"'{name}' is not allowed here")
            return
        super().generic_visit(node)

    # names -------------------------------------------------------------------------------------
    def visit_Name(self, node):
        if node.id.startswith("__"):
            self.problem(node, f"Không được dùng tên '{node.id}'", f"the name '{node.id}' is not allowed")

    # calls and attributes -----------------------------------------------------------------------
    def visit_Attribute(self, node):
        # reached only when an attribute is not the callee of a call
        self.problem(
            node,
            f"Không cho phép truy cập thuộc tính '.{node.attr}'",
            f"attribute access '.{node.attr}' is not allowed",
        )

    def visit_Call(self, node):
        func = node.func
        if isinstance(func, ast.Name):
            if func.id.startswith("__"):
                self.problem(node, f"Không được dùng tên '{func.id}'", f"the name '{func.id}' is not allowed")
            elif func.id not in self.functions:
                self.problem(
                    node, f"Hàm '{func.id}' không có trong danh sách cho phép", f"unknown function '{func.id}'"
                )
        elif isinstance(func, ast.Attribute):
            name = func.attr
            if name.startswith("_"):
                self.problem(node, f"Không cho phép '.{name}'", f"'.{name}' is not allowed")
            elif name in _SCRIPT_METHOD_NAMES and self.kind != "script":
                self.problem(
                    node, f"Phương thức .{name}() chỉ dùng được trong script", f".{name}() may only be used in scripts"
                )
            elif name not in _READ_METHOD_NAMES and name not in _SCRIPT_METHOD_NAMES:
                self.problem(node, f"Không cho phép gọi phương thức .{name}()", f"the method .{name}() is not allowed")
            self.visit(func.value)
        else:
            self.problem(node, "Chỉ được gọi hàm theo tên", "only named functions may be called")
            self.visit(func)
        for arg in node.args:
            self.visit(arg)
        for kw in node.keywords:
            if kw.arg is None:
                self.problem(kw, "Không hỗ trợ **kwargs", "**kwargs are not supported")
            else:
                self.visit(kw.value)

    def visit_comprehension(self, node):
        if node.is_async:
            self.problem(node, "Không cho phép async", "async is not allowed")
        self.generic_visit(node)

    def visit_FormattedValue(self, node):
        if node.conversion not in (-1, None):
            self.problem(node, "Không hỗ trợ !r/!s/!a trong f-string", "!r/!s/!a are not supported in f-strings")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, (str, bytes)) and len(node.value) > MAX_SIZE:
            self.problem(node, "Chuỗi quá dài", "string literal too long")

    # statements (scripts only) ------------------------------------------------------------------
    def _check_target(self, target, node):
        if isinstance(target, ast.Name):
            if target.id.startswith("__"):
                self.problem(node, f"Không được dùng tên '{target.id}'", f"the name '{target.id}' is not allowed")
        elif isinstance(target, ast.Subscript):
            root = target
            while isinstance(root, ast.Subscript):
                self.visit(root.slice)
                root = root.value
            if not isinstance(root, ast.Name):
                self.problem(
                    node, "Chỉ được gán cho biến hoặc phần tử của biến", "only variables or their items may be assigned"
                )
            else:
                self._check_target(root, node)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                if isinstance(elt, ast.Starred):
                    self.problem(node, "Không cho phép toán tử * (giải nén)", "starred unpacking not allowed")
                else:
                    self._check_target(elt, node)
        elif isinstance(target, ast.Attribute):
            self.problem(
                node,
                f"Không được gán cho thuộc tính '.{target.attr}'",
                f"assigning to the attribute '.{target.attr}' is not allowed",
            )
        else:
            self.problem(node, "Đích gán không hợp lệ", "invalid assignment target")

    def visit_Assign(self, node):
        for t in node.targets:
            self._check_target(t, node)
        self.visit(node.value)

    def visit_AugAssign(self, node):
        if isinstance(node.target, (ast.Tuple, ast.List)):
            self.problem(node, "Đích gán không hợp lệ", "invalid assignment target")
        else:
            self._check_target(node.target, node)
        self.generic_visit(node.op)
        self.visit(node.value)

    def visit_AnnAssign(self, node):
        self._check_target(node.target, node)
        if node.value is not None:
            self.visit(node.value)
        # the annotation is never evaluated; it must still be harmless text
        if not isinstance(node.annotation, (ast.Name, ast.Constant)):
            self.problem(node, "Chú thích kiểu không hợp lệ", "invalid type annotation")

    def visit_Expr(self, node):
        if self.kind == "script" and not isinstance(node.value, (ast.Call, ast.Constant)):
            self.problem(
                node,
                "Câu lệnh không có tác dụng: chỉ được gọi hàm hoặc gán giá trị",
                "a statement must be an assignment, an if, a for or a call",
            )
        self.visit(node.value)

    def visit_For(self, node):
        if node.orelse:
            self.problem(node, "Không hỗ trợ for ... else", "for ... else is not supported")
        self._check_target(node.target, node)
        if isinstance(node.target, ast.Subscript):
            self.problem(node, "Biến vòng lặp phải là tên", "the loop variable must be a name")
        self.visit(node.iter)
        for stmt in node.body:
            self.visit(stmt)


# -- Where an expression runs ----------------------------------------------------------------------------
# In process: what is bounded by its syntax tree alone - names, constants, comparisons, and/or/not, x if c
# else y, subscripts and slices, literals, arithmetic (repetition and powers only by a number written in the
# text), and calls that build no data (below); in scripts also assignments, if and pass. Every operation of
# such an expression does work linear in its operands, each checked against the budget before it runs, and
# it runs once per node: the work is bounded by (size of the tree) x (size of the data). Anything else -
# comprehensions, f-strings, loops, str/sorted/min/max/join/... - runs in the worker pool under a CPU and
# memory ceiling (engine/sandbox_pool.py). See docs/security.md ("Expressions").
_INLINE_NODES = (
    ast.Expression,
    ast.Module,
    ast.Expr,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.BoolOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.Call,
    ast.keyword,
    ast.Attribute,
    ast.BinOp,
    ast.boolop,
    ast.unaryop,
    ast.cmpop,
    ast.operator,
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.If,
    ast.Pass,
)
_INLINE_FUNCTIONS = frozenset({"len", "abs", "round", "int", "float", "bool", "now", "today", "date", "days_between"})
_INLINE_METHODS = frozenset(
    (_READ_METHOD_NAMES | _SCRIPT_METHOD_NAMES) - {"join", "split", "rsplit", "splitlines", "keys", "values", "items"}
)
_REPEATING = (ast.Mult, ast.Pow, ast.LShift)


def _number_literal(node) -> bool:
    return isinstance(node, ast.Constant) and _is_number(node.value)


def _inline_node(node, extra: frozenset[str]) -> bool:
    if not isinstance(node, _INLINE_NODES):
        return False
    if isinstance(node, ast.BinOp) and isinstance(node.op, _REPEATING):
        return _number_literal(node.right) or (not isinstance(node.op, ast.Pow) and _number_literal(node.left))
    if isinstance(node, ast.AugAssign) and isinstance(node.op, _REPEATING):
        return _number_literal(node.value)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name):
            return node.func.id in _INLINE_FUNCTIONS or node.func.id in extra
        return isinstance(node.func, ast.Attribute) and node.func.attr in _INLINE_METHODS
    return True


def _placement(tree, functions: frozenset[str]) -> tuple[bool, list[str]]:
    """(runs inline, problems): an expression that needs the pool may not call the caller's own functions
    (the calendar's `working_days`...), which exist only in the caller's process."""
    extra = functions - frozenset(DEFAULT_FUNCTIONS)
    inline = all(_inline_node(n, extra) for n in ast.walk(tree))
    if inline or not extra:
        return inline, []
    called = sorted(
        {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)} & extra
    )
    if not called:
        return False, []
    names = ", ".join(f"{c}()" for c in called)
    return False, [
        _msg(
            f"{names} chỉ dùng được trong biểu thức đơn giản (không có vòng lặp, comprehension, f-string, "
            f"str/sorted/min/max/join...); hãy tính phần còn lại ở một script trước đó",
            f"{names} can only be used in simple expressions (no loops, comprehensions, f-strings, "
            f"str/sorted/min/max/join...); compute the rest in an earlier script",
        )
    ]


@lru_cache(maxsize=2048)
def _parse_and_check(source: str, kind: str, functions: frozenset[str]) -> tuple[ast.AST | None, tuple[str, ...], bool]:
    tree, problems = _parse_and_check_tree(source, kind, functions)
    if tree is None or problems:
        return tree, problems, False
    inline, placement = _placement(tree, functions)
    return tree, tuple(placement), inline


def _parse_and_check_tree(source: str, kind: str, functions: frozenset[str]) -> tuple[ast.AST | None, tuple[str, ...]]:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if len(source) > MAX_SOURCE_LENGTH:
        return None, (
            _msg(
                f"Biểu thức dài quá {MAX_SOURCE_LENGTH} ký tự", f"expression longer than {MAX_SOURCE_LENGTH} characters"
            ),
        )
    if not source.strip():
        return None, (_msg("Biểu thức trống", "empty expression"),)
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": the text is checked below anyway
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(
                source if kind == "script" else source.strip(), mode="exec" if kind == "script" else "eval"
            )
    except SyntaxError as err:
        line = f" {err.lineno}" if err.lineno else ""
        detail = err.msg or "syntax error"
        return None, (f"Lỗi cú pháp (dòng{line}): {detail} / Syntax error (line{line}): {detail}",)
    except (ValueError, MemoryError, RecursionError) as err:
        return None, (_msg(f"Biểu thức không hợp lệ: {err}", f"invalid expression: {err}"),)
    checker = _Checker(kind, functions)
    if kind == "script":
        count = sum(1 for n in ast.walk(tree) if isinstance(n, ast.stmt))
        if count > MAX_SCRIPT_STATEMENTS:
            checker.problems.append(
                _msg(
                    f"Script có quá {MAX_SCRIPT_STATEMENTS} câu lệnh",
                    f"script has more than {MAX_SCRIPT_STATEMENTS} statements",
                )
            )
    try:
        checker.visit(tree)
    except RecursionError:
        checker.problems.append(_msg("Biểu thức lồng nhau quá sâu", "expression nested too deeply"))
    return tree, tuple(dict.fromkeys(checker.problems))


def check_expression(
    expression: str, *, kind: str = "condition", known_functions: Iterable[str] | Mapping[str, Any] | None = None
) -> list[str]:
    """Deploy-time check of a condition, script or timer expression; returns the problems found.

    Each problem is one string, Vietnamese first then English (`"... / ..."`). An empty list means the
    text will be accepted by `safe_evaluate` / `run_script` (it may still fail on the data at run time,
    e.g. a missing variable). `known_functions` are function names usable besides `DEFAULT_FUNCTIONS`.
    """
    if not isinstance(expression, str):
        return [_msg("Biểu thức phải là chuỗi", "expression must be a string")]
    stripped = expression.strip()
    if kind != "script" and stripped[:2] in ("${", "#{") and stripped.endswith("}"):
        return [
            _msg(
                f"Biểu thức viết theo kiểu JUEL ({stripped[:2]}...}}): hãy bỏ {stripped[:2]} và }}, "
                f"ví dụ: amount > 1000",
                f"JUEL-style expression ({stripped[:2]}...}}): write it without {stripped[:2]} and }}, "
                f"e.g. amount > 1000",
            )
        ]
    names = frozenset(DEFAULT_FUNCTIONS) | frozenset(known_functions or ())
    return list(_parse_and_check(expression, kind, names)[1])


# ---------------------------------------------------------------------------------------------------
# Running


def all_functions(extra: Mapping[str, Callable] | None) -> dict[str, Callable]:
    functions = dict(DEFAULT_FUNCTIONS)
    if extra:
        for name, fn in extra.items():
            if not callable(fn) or fn in simpleeval.DISALLOW_FUNCTIONS or name.startswith("_"):
                raise ValueError(f"refusing to expose {name!r} to expressions")
            functions[name] = fn
    return functions


def _compile(source: str, kind: str, functions: Mapping[str, Callable]) -> tuple[Any, bool]:
    """(tree, runs inline) of an accepted text; ExpressionError listing the problems of a refused one."""
    if not isinstance(source, str):
        raise ExpressionError(
            "Biểu thức phải là chuỗi", "expression must be a string", {"reason": "invalid", "expression": repr(source)}
        )
    tree, problems, inline = _parse_and_check(source, kind, frozenset(functions))
    if problems:
        raise ExpressionError(
            "Biểu thức bị từ chối: " + "; ".join(p.split(" / ")[0] for p in problems),
            "expression refused: " + "; ".join(p.split(" / ", 1)[-1] for p in problems),
            {"reason": "refused", "expression": source, "problems": list(problems)},
        )
    return tree, inline or _IN_WORKER


def runs_inline(expression: str, *, kind: str = "condition", known_functions: Iterable[str] = ()) -> bool:
    """True when the text is evaluated in the caller's process, False when it goes to the worker pool."""
    names = frozenset(DEFAULT_FUNCTIONS) | frozenset(known_functions)
    tree, problems, inline = _parse_and_check(expression, kind, names)
    return bool(inline and not problems)


# -- The worker pool (engine/sandbox_pool.py) ------------------------------------------------------------------
_IN_WORKER = False  # set in a worker process: everything runs here
_POOL = WorkerPool("engine.expressions:run_job")
POOL_MARGIN = 0.5  # seconds a pool job may run past MAX_SECONDS before its worker is killed


def _clock_functions(now_utc: datetime) -> dict[str, Callable]:
    """now() / today() at the caller's instant (its clock may be moved, e.g. by tests), not the worker's."""
    vn = now_utc.astimezone(VN_TZ)
    return {"now": lambda: vn.replace(microsecond=0).isoformat(), "today": lambda: vn.date().isoformat()}


def _plain_names(names: Mapping[str, Any] | None) -> dict:
    return {k: v for k, v in dict(names or {}).items() if not callable(v)}


def _in_pool(job: tuple, source: str):
    limits = {name: globals()[name] for name in LIMIT_NAMES}
    try:
        reply = _POOL.run((limits, datetime.now(UTC), *job), timeout=MAX_SECONDS + POOL_MARGIN)
    except WorkerFailed as failed:
        err = _OutOfBudget("time") if failed.reason == "time" else _TooLarge("memory")
        raise _translate(err, source) from None
    if reply[0] == "ok":
        return reply[1]
    if reply[0] == "failed":
        raise _translate(_TooLarge("memory"), source)
    _, message_vi, message_en, details = reply
    raise ExpressionError(message_vi, message_en, details)


def run_job(job: tuple) -> tuple:
    """A worker's side of `_in_pool`: ('ok', value) or ('error', vi, en, details)."""
    global _IN_WORKER
    _IN_WORKER = True
    limits, now_utc, what, source, kind, names, external = job
    globals().update({k: v for k, v in limits.items() if k in LIMIT_NAMES})
    try:
        if what == "script":
            run_script(source, names, _clock_functions(now_utc), external=external)
            return ("ok", names)
        return ("ok", safe_evaluate(source, names, functions=_clock_functions(now_utc), kind=kind))
    except ExpressionError as err:
        return ("error", err.message_vi, err.message_en, dict(err.details or {}))


def _translate(err: BaseException, source: str) -> ExpressionError:
    """Turn whatever happened inside the sandbox into an ExpressionError."""
    if isinstance(err, ExpressionError):
        return err
    d = {"expression": source}
    if isinstance(err, _Missing):
        d.update(reason="missing_variable", name=err.name)
        return ExpressionError(
            f"Biến '{err.name}' chưa có giá trị (không có trong dữ liệu hồ sơ)",
            f"variable '{err.name}' is not defined (not in the dossier's data)",
            d,
        )
    if isinstance(err, simpleeval.NameNotDefined):
        name = getattr(err, "name", "?")
        d.update(reason="missing_variable", name=name)
        return ExpressionError(f"Biến '{name}' chưa có giá trị", f"variable '{name}' is not defined", d)
    if isinstance(err, simpleeval.FunctionNotDefined):
        name = getattr(err, "func_name", "?")
        d.update(reason="unknown_function", name=name)
        return ExpressionError(f"Hàm '{name}' không có trong danh sách cho phép", f"unknown function '{name}'", d)
    if isinstance(err, _Refused):
        d.update(reason="refused")
        vi, _, en = str(err).partition(" / ")
        return ExpressionError(vi, en or vi, d)
    if isinstance(err, (_TooLarge, simpleeval.NumberTooHigh, simpleeval.IterableTooLong, OverflowError, MemoryError)):
        d.update(reason="too_large")
        return ExpressionError(
            "Giá trị quá lớn, vượt giới hạn an toàn", f"value too large, over the sandbox limit ({err})", d
        )
    if isinstance(err, (_OutOfBudget, RecursionError)):
        d.update(reason="too_long")
        return ExpressionError(
            "Biểu thức chạy quá lâu hoặc quá nhiều bước", "expression ran too long or took too many steps", d
        )
    if isinstance(err, simpleeval.FeatureNotAvailable):
        d.update(reason="refused")
        return ExpressionError("Cú pháp hoặc hàm không được phép", f"not allowed: {err}", d)
    if isinstance(err, ZeroDivisionError):
        d.update(reason="division_by_zero")
        return ExpressionError("Chia cho 0", "division by zero", d)
    if isinstance(err, KeyError):
        key = err.args[0] if err.args else "?"
        d.update(reason="missing_key", name=str(key))
        return ExpressionError(f"Không có khóa {key!r} trong dữ liệu", f"key {key!r} not found", d)
    if isinstance(err, IndexError):
        d.update(reason="index_error")
        return ExpressionError("Chỉ số vượt quá độ dài danh sách", "index out of range", d)
    d.update(reason="error", error=type(err).__name__)
    return ExpressionError(f"Lỗi khi tính biểu thức: {err}", f"error evaluating expression: {err}", d)


def safe_evaluate(
    expression: str,
    names: Mapping[str, Any] | None = None,
    *,
    functions: Mapping[str, Callable] | None = None,
    kind: str = "condition",
) -> Any:
    """Evaluate one expression over `names` (the dossier's data) in the sandbox.

    `functions` are extra callables made available by name (e.g. the calendar's `working_days`).
    Raises `ExpressionError` for anything refused, missing or failing; never runs Python's evaluator.
    """
    funcs = all_functions(functions)
    tree, inline = _compile(expression, "timer" if kind == "timer" else "condition", funcs)
    if not inline:
        return _in_pool(("evaluate", expression, kind, _plain_names(names), None), expression)
    sandbox = _Sandbox(names if names is not None else {}, funcs, _Budget(), allow_mutation=False)
    try:
        return sandbox.run_node(tree.body, expression)
    except ExpressionError:
        raise
    except Exception as err:  # everything the sandbox or a whitelisted function can raise
        raise _translate(err, expression) from err


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _ScriptRunner:
    def __init__(self, sandbox: _Sandbox, variables: dict, source: str):
        self.sandbox = sandbox
        self.vars = variables
        self.source = source
        self.statements = 0

    def value(self, node):
        return self.sandbox.run_node(node, self.source)

    def block(self, stmts):
        for stmt in stmts:
            self.stmt(stmt)

    def stmt(self, s):
        self.statements += 1
        if self.statements > MAX_SCRIPT_STEPS:
            raise _OutOfBudget("statements")
        self.sandbox.budget.check_time()
        if isinstance(s, ast.Assign):
            value = self.value(s.value)
            for target in s.targets:
                self.assign(target, value)
        elif isinstance(s, ast.AugAssign):
            operator = self.sandbox.operators.get(type(s.op))
            if operator is None:
                raise _Refused(_msg("Toán tử không được hỗ trợ", "operator not supported"))
            current = self.load(s.target)
            result = operator(current, self.value(s.value))
            n = _sized(result)
            if n is not None:
                _check_len(n)
            _check_int(result)
            self.assign(s.target, result)
        elif isinstance(s, ast.AnnAssign):
            if s.value is not None:
                self.assign(s.target, self.value(s.value))
        elif isinstance(s, ast.If):
            self.block(s.body if self.value(s.test) else s.orelse)
        elif isinstance(s, ast.Pass):
            pass
        elif isinstance(s, ast.Expr):
            self.value(s.value)
        elif isinstance(s, ast.For):
            items = self.value(s.iter)
            if isinstance(items, dict):
                items = list(items)
            if not isinstance(items, (list, tuple, str, range, set)):
                raise _Refused(_msg("Chỉ lặp được trên danh sách", "for loops only iterate over lists"))
            for item in list(items):
                self.assign(s.target, item)
                try:
                    self.block(s.body)
                except _Break:
                    break
                except _Continue:
                    continue
        elif isinstance(s, ast.Break):
            raise _Break()
        elif isinstance(s, ast.Continue):
            raise _Continue()
        else:  # unreachable after check_expression
            raise _Refused(
                _msg(f"Không cho phép câu lệnh {type(s).__name__}", f"statement {type(s).__name__} not allowed")
            )

    def load(self, target):
        return self.value(ast.fix_missing_locations(ast.copy_location(_as_load(target), target)))

    def assign(self, target, value):
        if isinstance(target, ast.Name):
            if target.id.startswith("__"):
                raise _Refused(_msg(f"Không được dùng tên '{target.id}'", f"the name '{target.id}' is not allowed"))
            self.vars[target.id] = value
        elif isinstance(target, ast.Subscript):
            container = self.value(_as_load(target.value))
            key = self.value(target.slice)
            if not isinstance(container, (dict, list)):
                raise _Refused(
                    _msg(
                        "Chỉ gán được phần tử của danh sách hoặc từ điển",
                        "only items of lists and dicts can be assigned",
                    )
                )
            if isinstance(container, dict):
                _check_len(len(container) + 1, "dict")
            container[key] = value
            if isinstance(container, list):
                _check_len(len(container), "list")
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = list(value)
            if len(values) != len(target.elts):
                raise _Refused(_msg("Số giá trị không khớp số biến", "wrong number of values to unpack"))
            for t, v in zip(target.elts, values):
                self.assign(t, v)
        else:
            raise _Refused(_msg("Đích gán không hợp lệ", "invalid assignment target"))


def _as_load(node):
    """A Load-context copy of an assignment target (for `x += 1` and `d['a']['b'] = 1`)."""
    node = copy.deepcopy(node)
    for sub in ast.walk(node):
        if hasattr(sub, "ctx"):
            sub.ctx = ast.Load()
    return node


def _jsonable(value, path: str, counter: list[int]):
    """Task data must stay JSON: tuples become lists, anything else non-JSON is refused.

    `counter` bounds the walk (shared lists are copied each time they occur, so they are counted each time).
    """
    counter[0] += 1
    if counter[0] > MAX_ALLOCATION:
        raise _TooLarge("data too large")
    if isinstance(value, bool) or value is None or type(value) in (int, float, str):
        return value
    if isinstance(value, str):  # str subclasses
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, _SPIFF_VALUES):  # already in task data (SpiffWorkflow's serializer keeps them)
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{path}[{i}]", counter) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Refused(_msg(f"Khóa của '{path}' phải là chuỗi", f"keys of '{path}' must be strings"))
            out[k] = _jsonable(v, f"{path}[{k!r}]", counter)
        return out
    raise _Refused(
        _msg(
            f"Không lưu được giá trị kiểu {type(value).__name__} vào '{path}' (hãy dùng list, dict, chuỗi hoặc số)",
            f"cannot store a {type(value).__name__} in '{path}' (use a list, dict, string or number)",
        )
    )


def run_script(
    script: str,
    data: dict,
    functions: Mapping[str, Callable] | None = None,
    *,
    external: Mapping[str, Any] | None = None,
) -> None:
    """Run a script task's text over `data` (task data), updating `data` in place.

    All or nothing: the script runs on a copy, and `data` changes only if it finishes; a refused or
    failing script raises `ExpressionError` and leaves `data` as it was. Values written must be JSON
    (tuples become lists; sets and other types are refused). `external` names are readable, not stored.
    """
    funcs = all_functions(functions)
    tree, inline = _compile(script, "script", funcs)
    if not inline:
        result = _in_pool(("script", script, "script", dict(data), _plain_names(external)), script)
        data.clear()
        data.update(result)
        return
    work = copy.deepcopy(data)
    names = ChainMap(work, dict(external or {}))
    sandbox = _Sandbox(names, funcs, _Budget(), allow_mutation=True)
    runner = _ScriptRunner(sandbox, work, script)
    try:
        runner.block(tree.body)
        counter = [0]
        cleaned = {k: _jsonable(v, k, counter) for k, v in work.items()}
    except ExpressionError:
        raise
    except (_Break, _Continue):
        raise ExpressionError(
            "break/continue nằm ngoài vòng lặp",
            "break/continue outside a loop",
            {"reason": "refused", "expression": script},
        ) from None
    except Exception as err:
        raise _translate(err, script) from err
    data.clear()
    data.update(cleaned)


def expression_error_of(exc: BaseException | None) -> ExpressionError | None:
    """The ExpressionError behind a SpiffWorkflow exception (SpiffWorkflow wraps errors it sees)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ExpressionError):
            return exc
        seen.add(id(exc))
        exc = getattr(exc, "expression_error", None) or exc.__cause__ or exc.__context__
    return None
