"""Decision tables (DMN) deployed beside a procedure's .bpmn file: reading them safely, checking them at
deploy time, and the dossier's fee a table decides. docs/bpmn-conventions.md ("Bảng quyết định / Decision
tables") is the analyst's side of it.

A `.dmn` file uploaded with the BPMN (or lying beside it in its folder) holds one `dmn:decision` with one
`dmn:decisionTable`; a `bpmn:businessRuleTask` names it by id (`camunda:decisionRef`, or Spiff's
`spiffworkflow:calledDecisionId`). SpiffWorkflow evaluates the table; every input expression, input entry
and output entry goes through the product's script engine, i.e. the expression sandbox with its step, time
and memory budget (engine/expressions.py, engine/script_engine.py). Nothing here evaluates analysts' text.

Checked at deploy, each problem naming the element (`check_table`):
- the hit policy is UNIQUE (the default), FIRST or COLLECT without aggregation - the ones SpiffWorkflow
  evaluates as the DMN standard says;
- every expression is in the sandbox's language (FEEL ranges such as `[1..5]` are refused with the Python
  form to write instead);
- under UNIQUE no two rules can match the same inputs. Entries are read as sets of values (`-`, a literal,
  `in (…)`, `not in (…)`, `!= x`, `< x`, `>= x`, `a < ? <= b`): two rules overlap when, column by column,
  their sets share a value; that value is found among finitely many witnesses (the constants of both
  entries, a value between, below and above them). An entry reading other data cannot be decided: the
  table is accepted with a warning naming the rules.

The dossier's fee: a decision output named `fee` (`FEE_OUTPUT`) is the dossier's fee (`decided_fee`), in
place of the procedure's `fee` property: the receipt shows it and an online payment order asks for it.
"""

from __future__ import annotations

import ast
import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.util.task import TaskState

from . import bpmn_xml
from .expressions import check_expression

DMN_NAMESPACES = (
    "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
    "http://www.omg.org/spec/DMN/20180521/MODEL/",
    "https://www.omg.org/spec/DMN/20191111/MODEL/",
    "https://www.omg.org/spec/DMN/20230324/MODEL/",
)
HIT_POLICIES = ("UNIQUE", "FIRST", "COLLECT")
FEE_OUTPUT = "fee"
INPUT_NAME = "dmninputexpr"  # what SpiffWorkflow puts in place of `?` in an input entry


def _p(element, vi, en):
    return {"element": element, "message_vi": vi, "message_en": en}


@dataclass
class DecisionFile:
    """One deployed .dmn file: its decision's id, name, hit policy and output names."""

    filename: str
    root: Any
    decision_id: str | None = None
    name: str | None = None
    hit_policy: str = "UNIQUE"
    outputs: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"file": self.filename, "name": self.name, "hit_policy": self.hit_policy, "outputs": self.outputs}


def is_decision_file(name: str) -> bool:
    return name.lower().endswith(".dmn")


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el, name: str) -> list:
    return [c for c in el if _local(c) == name]


def _text_of(el, name: str = "text") -> str | None:
    for c in el:
        if _local(c) == name:
            return (c.text or "").strip()
    return None


def load_decisions(files: dict[str, bytes], max_bytes: int, problems: list, warnings: list) -> dict[str, DecisionFile]:
    """Parse and check every .dmn file; the decisions by id. Problems and warnings are appended."""
    out: dict[str, DecisionFile] = {}
    for filename in sorted(files):
        try:
            root = bpmn_xml.parse_untrusted(files[filename], max_bytes)
        except bpmn_xml.XmlRefused as exc:
            problems.append(_p(filename, f"{filename}: {exc.message_vi}", f"{filename}: {exc.message_en}"))
            continue
        if etree.QName(root).namespace not in DMN_NAMESPACES or _local(root) != "definitions":
            problems.append(
                _p(filename, f"{filename}: không phải tệp DMN (dmn:definitions)", f"{filename}: not a DMN file")
            )
            continue
        decisions = _children(root, "decision")
        if len(decisions) != 1:
            problems.append(
                _p(
                    filename,
                    f"{filename}: mỗi tệp DMN chứa đúng một quyết định (dmn:decision), tệp này có {len(decisions)}",
                    f"{filename}: a DMN file holds exactly one dmn:decision, this one has {len(decisions)}",
                )
            )
            continue
        decision = decisions[0]
        df = DecisionFile(filename, root, decision.get("id"), decision.get("name"))
        tables = _children(decision, "decisionTable")
        if len(tables) != 1:
            problems.append(
                _p(
                    df.decision_id,
                    f"Quyết định '{df.decision_id}' phải có đúng một bảng (dmn:decisionTable)",
                    f"decision '{df.decision_id}' needs exactly one dmn:decisionTable",
                )
            )
            continue
        if df.decision_id in out:
            problems.append(
                _p(
                    df.decision_id,
                    f"Hai tệp DMN cùng khai báo quyết định '{df.decision_id}'",
                    f"two DMN files declare decision '{df.decision_id}'",
                )
            )
            continue
        check_table(df, tables[0], problems, warnings)
        out[str(df.decision_id)] = df
    return out


# -- checking a table -----------------------------------------------------------------------------------


def _expression_problems(
    text: str, where: tuple[str, str], el_id: str, problems: list, written: str | None = None
) -> bool:
    """Append the sandbox's objections to `text` (as `written` by the analyst); True when it is accepted.
    `where` names the cell: (Vietnamese, English)."""
    written = written or text
    where_vi, where_en = where
    if ".." in written and written.lstrip()[:1] in "[(]":
        problems.append(
            _p(
                el_id,
                f"{where_vi}: khoảng kiểu FEEL '{written}' không được hỗ trợ; viết dạng 1 <= ? <= 5",
                f"{where_en}: the FEEL range '{written}' is not supported; write 1 <= ? <= 5",
            )
        )
        return False
    found = check_expression(text, kind="condition")
    for msg in found:
        vi, _, en = msg.partition(" / ")
        problems.append(_p(el_id, f"{where_vi}: {vi}", f"{where_en}: {en or vi}"))
    return not found


def _entry_expression(text: str) -> str:
    """The entry as the sandbox will see it: `?` as a name, or an entry starting with an operator completed."""
    if "?" in text:
        return text.replace("?", INPUT_NAME)
    try:
        ast.parse(text, mode="eval")
        return text
    except SyntaxError:
        return f"{INPUT_NAME} {text}"


def check_table(df: DecisionFile, table, problems: list, warnings: list) -> None:
    tid = table.get("id") or df.decision_id
    policy = (table.get("hitPolicy") or "UNIQUE").upper()
    df.hit_policy = policy
    if policy not in HIT_POLICIES or table.get("aggregation"):
        what = policy + (f" {table.get('aggregation')}" if table.get("aggregation") else "")
        problems.append(
            _p(
                tid,
                f"Bảng '{tid}': chính sách '{what}' chưa được hỗ trợ (UNIQUE, FIRST, COLLECT không gộp)",
                f"table '{tid}': hit policy '{what}' is not supported (UNIQUE, FIRST, COLLECT without aggregation)",
            )
        )
    inputs = _children(table, "input")
    outputs = _children(table, "output")
    df.outputs = [o.get("name") or o.get("label") or "" for o in outputs]
    for o, name in zip(outputs, df.outputs, strict=True):
        if not name.replace("_", "a").replace(".", "a").isalnum():
            problems.append(
                _p(
                    o.get("id"),
                    f"Cột kết quả '{o.get('id')}' cần tên (name) là tên biến, ví dụ fee",
                    f"output '{o.get('id')}' needs a variable name (name), e.g. fee",
                )
            )
    for i in inputs:
        expr = next((_text_of(e) for e in i if _local(e) == "inputExpression"), None)
        if not expr:
            problems.append(
                _p(
                    i.get("id"),
                    f"Cột điều kiện '{i.get('id')}' thiếu biểu thức (inputExpression)",
                    f"input '{i.get('id')}' has no inputExpression",
                )
            )
            continue
        _expression_problems(expr, (f"Cột điều kiện '{i.get('id')}'", f"input '{i.get('id')}'"), i.get("id"), problems)
    rules = _children(table, "rule")
    parsed: list[tuple[Any, list]] = []
    for rule in rules:
        rid = rule.get("id") or "?"
        entries = _children(rule, "inputEntry")
        outs = _children(rule, "outputEntry")
        if len(entries) != len(inputs) or len(outs) != len(outputs):
            problems.append(
                _p(
                    rid,
                    f"Dòng '{rid}' có {len(entries)}/{len(outputs) and len(outs)} ô, bảng có "
                    f"{len(inputs)} cột điều kiện và {len(outputs)} cột kết quả",
                    f"rule '{rid}' has {len(entries)} input and {len(outs)} output entries; the table has "
                    f"{len(inputs)} inputs and {len(outputs)} outputs",
                )
            )
            continue
        sets: list[ValueSet | None] = []
        for e in entries:
            text = _text_of(e) or ""
            if text in ("", "-"):
                sets.append(ANY)
                continue
            expr = _entry_expression(text)
            if expr != text and "?" not in text and text[:1].isalpha():
                # SpiffWorkflow writes the input right before such an entry (`channelin (1, 3)`)
                problems.append(
                    _p(
                        rid,
                        f"Dòng '{rid}', ô '{text}': hãy viết có dấu ? thay cho giá trị đầu vào, ví dụ ? {text}",
                        f"rule '{rid}', entry '{text}': write it with ? for the input value, e.g. ? {text}",
                    )
                )
                sets.append(None)
                continue
            ok = _expression_problems(
                expr, (f"Dòng '{rid}', ô '{text}'", f"rule '{rid}', entry '{text}'"), rid, problems, text
            )
            sets.append(value_set(text) if ok else None)
        for e in outs:
            text = _text_of(e) or ""
            if text:
                _expression_problems(
                    text, (f"Dòng '{rid}', kết quả '{text}'", f"rule '{rid}', output '{text}'"), rid, problems
                )
        parsed.append((rule, sets))
    if policy != "UNIQUE":
        return
    for (r1, s1), (r2, s2) in itertools.combinations(parsed, 2):
        verdict = rules_overlap(s1, s2)
        a, b = r1.get("id"), r2.get("id")
        if verdict is True:
            problems.append(
                _p(
                    a,
                    f"Bảng '{tid}' (UNIQUE): dòng '{a}' và dòng '{b}' cùng khớp một bộ giá trị đầu vào; "
                    "hãy tách điều kiện hoặc dùng chính sách FIRST",
                    f"table '{tid}' (UNIQUE): rules '{a}' and '{b}' overlap (both match the same inputs); "
                    "make their entries disjoint or use the FIRST hit policy",
                )
            )
        elif verdict is None:
            warnings.append(
                _p(
                    a,
                    f"Bảng '{tid}' (UNIQUE): không kiểm tra được dòng '{a}' và '{b}' có trùng nhau không "
                    "(ô đọc dữ liệu khác)",
                    f"table '{tid}' (UNIQUE): cannot tell whether rules '{a}' and '{b}' overlap "
                    "(an entry reads other data)",
                )
            )


# -- entries as sets of values ----------------------------------------------------------------------------

_OPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


@dataclass(frozen=True)
class ValueSet:
    """The values an input entry accepts: a conjunction of comparisons of the input with constants."""

    tests: tuple[tuple[Callable[[Any, Any], bool], Any], ...]  # (op, constant): accepts v when op(v, constant)
    any: bool = False

    def constants(self) -> list:
        out: list = []
        for _, c in self.tests:
            out.extend(c if isinstance(c, tuple | frozenset) else [c])
        return out

    def accepts(self, v) -> bool:
        if self.any:
            return True
        try:
            return all(op(v, c) for op, c in self.tests)
        except TypeError:  # a string against a number: not accepted
            return False


ANY = ValueSet((), any=True)


def _constant(node):
    """A literal, a tuple/list/set of literals, or a negative number; else raises ValueError."""
    value = ast.literal_eval(node)
    if isinstance(value, list | set | tuple | frozenset):
        if not all(isinstance(x, str | int | float | bool) or x is None for x in value):
            raise ValueError
        return tuple(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    raise ValueError


def value_set(text: str) -> ValueSet | None:
    """The entry as a `ValueSet`, or None when it reads anything but the input and constants."""
    expr = _entry_expression(text)
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None
    if expr == text and "?" not in text:  # a bare value: equality (SpiffWorkflow's `(input) == (entry)`)
        try:
            return ValueSet(((operator.eq, _constant(tree)),))
        except (ValueError, SyntaxError, TypeError):
            return None
    if not isinstance(tree, ast.Compare):
        return None
    items = [tree.left, *tree.comparators]
    tests = []
    for (left, right), op in zip(itertools.pairwise(items), tree.ops, strict=True):
        fn = _OPS.get(type(op))
        if fn is None:
            return None
        try:
            if isinstance(left, ast.Name) and left.id == INPUT_NAME:
                tests.append((fn, _constant(right)))
            elif isinstance(right, ast.Name) and right.id == INPUT_NAME and type(op) in _FLIP:
                tests.append((_OPS[_FLIP[type(op)]], _constant(left)))
            else:
                return None
        except (ValueError, SyntaxError, TypeError):
            return None
    return ValueSet(tuple(tests))


_FLIP: dict[type, type] = {
    ast.Lt: ast.Gt,
    ast.LtE: ast.GtE,
    ast.Gt: ast.Lt,
    ast.GtE: ast.LtE,
    ast.Eq: ast.Eq,
    ast.NotEq: ast.NotEq,
}


def _witnesses(constants: list) -> list:
    """Values enough to find a common one of two sets bounded by these constants, if there is one."""
    numbers = sorted({c for c in constants if isinstance(c, int | float) and not isinstance(c, bool)})
    out: list = list(dict.fromkeys(constants))
    if numbers:
        out += [numbers[0] - 1, numbers[-1] + 1]
        out += [(a + b) / 2 for a, b in itertools.pairwise(numbers)]
    else:
        out += [0]
    out += ["\x00motcua-other", True, False, None]
    return out


def sets_intersect(a: ValueSet | None, b: ValueSet | None) -> bool | None:
    if a is None or b is None:
        return None
    if a.any or b.any:
        return True
    return any(a.accepts(v) and b.accepts(v) for v in _witnesses(a.constants() + b.constants()))


def rules_overlap(a: list, b: list) -> bool | None:
    """True when some inputs match both rules, False when none can, None when it cannot be decided."""
    undecided = False
    for x, y in zip(a, b, strict=True):
        verdict = sets_intersect(x, y)
        if verdict is False:
            return False
        if verdict is None:
            undecided = True
    return None if undecided else True


# -- business rule tasks of a process ----------------------------------------------------------------------


def decided_fee(workflow) -> int | None:
    """The fee the last business rule task that decided one put into the workflow's data, or None."""
    best = None
    for t in workflow.get_tasks():
        if getattr(t.task_spec, "dmnEngine", None) is None or not t.has_state(TaskState.COMPLETED):
            continue
        outputs = {o.name for o in t.task_spec.dmnEngine.decision_table.outputs}
        if FEE_OUTPUT in outputs and (best is None or t.last_state_change > best.last_state_change):
            best = t
    if best is None:
        return None
    try:
        return max(0, int(best.data.get(FEE_OUTPUT)))
    except (TypeError, ValueError):
        return None


def record_fee(dossier, workflow) -> None:
    """Keep the decided fee in the dossier's data (`fee`), which the receipt and the dossier page read."""
    fee = decided_fee(workflow)
    if fee is not None and (dossier.data or {}).get(FEE_OUTPUT) != fee:
        dossier.data = {**(dossier.data or {}), FEE_OUTPUT: fee}  # a new dict: the row writer compares values
