"""The hot path's Core statements executed on the driver's cursor, SQLAlchemy's work done once per statement.

`Connection.execute` of a prebuilt statement looks its compiled form up in the cache, then for every
execution builds an execution context: the parameters re-assembled bind by bind (`construct_params`), the
Python-side column defaults evaluated, the bind processors applied, a `CursorResult` and its metadata made.
That is 10-20 µs of Python per statement on SQLite, where sqlite3's own execute of the same statement takes
1-2 µs, and a completion runs 8-11 statements (docs/performance.md, "The hot statements on the driver").

`FastStatement` does the same work with SQLAlchemy's own pieces, but plans it once per dialect and set of
parameter names: the statement compiled by the connection's dialect (the same SQL text `Connection.execute`
sends), each bind resolved to a parameter name, a constant (already converted) or a column default, with the
compiled statement's own bind processor (so a value is stored exactly as SQLAlchemy stores it: UTC
datetimes, JSON, booleans); rows are converted with the result processors SQLAlchemy would use for the
cursor's columns. Per execution only the parameter values are converted and the driver called.

What stays as `Connection.execute` does it:
- the engine's `before_execute` listeners see every statement with its parameters (the worker's wake-ups
  after a commit that wrote a timer or outbox rows, engine/worker.py), and its `before_cursor_execute` /
  `after_cursor_execute` listeners every SQL text (the hot path's statement count in
  tests/api/test_hot_path.py, the idempotency wrapper's "this request wrote"); `after_execute`, which
  expects a `CursorResult`, is not called (nothing in motcua listens to it);
- a driver error goes through the connection's own handling (`Connection._handle_dbapi_exception`): the
  same `IntegrityError` / `OperationalError` / ... wrapper, `handle_error` listeners, a lost connection
  invalidated with its pool, so engine/db.py and api/errors.py map it as before (409, 503);
- the statement runs in the connection's transaction (the session's); a connection outside a transaction,
  or with a schema translation, goes through `Connection.execute` unchanged.

A statement whose plan would need more than this (an expanding IN, a default computed by SQL or a sequence
executed beforehand, a sentinel column) is executed by `Connection.execute` too: correct, just not faster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Executable
from sqlalchemy.sql.dml import Insert, Update

_PARAM, _CONST, _DEFAULT = 0, 1, 2
_PLANS = "_motcua_fast_plans"  # attribute of a dialect: {(FastStatement, parameter names, many): plan}
_UNSUPPORTED = object()


class _Plan:
    __slots__ = ("sql", "positional", "binds", "result_types", "result_processors")

    def __init__(self, sql: str, positional: bool, binds: list, result_types: list | None):
        self.sql = sql
        self.positional = positional
        # (name sent to the driver, kind, parameter name | constant | default callable, bind processor | None)
        self.binds = binds
        self.result_types = result_types  # None: the statement returns no rows
        self.result_processors: list | None = None  # made at the first execution, from the cursor's columns

    def args(self, params: Mapping[str, Any]) -> tuple | dict:
        values = []
        for _name, kind, src, proc in self.binds:
            if kind == _PARAM:
                v = params[src]
            elif kind == _CONST:
                values.append(src)  # converted when the plan was made
                continue
            else:
                v = src(None)
            values.append(v if proc is None else proc(v))
        if self.positional:
            return tuple(values)
        return {b[0]: v for b, v in zip(self.binds, values, strict=True)}


def _plan(statement: Any, dialect, keys: frozenset, many: bool) -> _Plan | object:
    kw: dict[str, Any] = {"dialect": dialect, "for_executemany": many}
    if isinstance(statement, Insert | Update):
        kw["column_keys"] = sorted(keys)
    compiled: Any = statement.compile(**kw)
    if compiled._render_postcompile or compiled.post_compile_params or compiled.literal_execute_params:
        return _UNSUPPORTED  # an expanding IN: its text depends on the values
    prefetch = {}
    for c, description in [(c, c._default_description_tuple) for c in compiled.insert_prefetch] + [
        (c, c._onupdate_description_tuple) for c in compiled.update_prefetch
    ]:
        arg, is_scalar, is_callable, is_sentinel = description
        # a Python value or function without arguments (`default=utcnow`, `default=list`): SQLAlchemy wraps such
        # a function to take the execution context, and the wrapper ignores it; a function that reads the
        # context, a SQL expression or a sequence go through Connection.execute
        if is_sentinel or not (is_scalar or (is_callable and hasattr(arg, "__wrapped__"))):
            return _UNSUPPORTED
        prefetch[compiled._within_exec_param_key_getter(c)] = (_CONST, arg) if is_scalar else (_DEFAULT, arg)
    processors = compiled._bind_processors
    escaped = compiled.escaped_bind_names or {}
    by_name = {name: bp for bp, name in compiled.bind_names.items()}
    order = compiled.positiontup if compiled.positional else list(by_name)
    binds = []
    for name in order:
        bp, proc = by_name[name], processors.get(name)
        if name in prefetch:
            kind, src = prefetch[name]
        elif bp.key in keys:
            kind, src = _PARAM, bp.key
        elif name in keys:
            kind, src = _PARAM, name
        elif bp.required or bp.callable is not None:
            return _UNSUPPORTED  # a missing value (Connection.execute says which) or one computed per execution
        else:
            kind, src = _CONST, bp.value
        if kind == _CONST:
            src, proc = (src if proc is None else proc(src)), None
        binds.append((escaped.get(name, name), kind, src, proc))
    # the columns of a SELECT or a RETURNING, in the cursor's order (none: a write without RETURNING)
    result_types = [col[3] for col in compiled._result_columns]
    return _Plan(compiled.string, compiled.positional, binds, result_types or None)


class FastStatement:
    """A Core statement executed on the DBAPI cursor of a connection in a transaction (module docstring).

    `run` gives the rowcount, `rows` the converted rows (tuples in the statement's column order), `first` the
    first of them or None. `params`: one mapping, or a list of mappings with the same names (executemany).
    """

    __slots__ = ("statement",)

    def __init__(self, statement: Executable):
        self.statement = statement

    def run(self, conn: Connection, params: Mapping | Sequence[Mapping]) -> int:
        return self._execute(conn, params, False)

    def rows(self, conn: Connection, params: Mapping | Sequence[Mapping]) -> list:
        return self._execute(conn, params, True)

    def first(self, conn: Connection, params: Mapping) -> Any:
        rows = self._execute(conn, params, True)
        return rows[0] if rows else None

    def _fallback(self, conn: Connection, params, fetch: bool):
        result = conn.execute(self.statement, params)
        return [tuple(r) for r in result] if fetch else result.rowcount

    def _execute(self, conn: Connection, params, fetch: bool):
        many = not isinstance(params, Mapping)
        if many and len(params) <= 1:
            if not params:
                return self._fallback(conn, params, fetch)
            params, many = params[0], False
        first = params[0] if many else params
        keys = frozenset(first)
        dialect = conn.dialect
        plans = dialect.__dict__.get(_PLANS)
        if plans is None:
            plans = dialect.__dict__.setdefault(_PLANS, {})
        plan = plans.get((self, keys, many))
        if plan is None:
            plan = plans.setdefault((self, keys, many), _plan(self.statement, dialect, keys, many))
        if (
            plan is _UNSUPPORTED
            or not conn.in_transaction()
            or conn._execution_options.get("schema_translate_map")
            or (many and any(frozenset(p) != keys for p in params))
        ):
            return self._fallback(conn, params, fetch)
        assert isinstance(plan, _Plan)
        if conn.dispatch.before_execute:
            _before_execute(conn, self.statement, params, many)
        return _on_cursor(conn, plan, params, many, fetch)


def _before_execute(conn: Connection, statement, params, many: bool) -> None:
    """The engine's `before_execute` listeners, called as `Connection.execute` calls them (the statement, and
    its parameters as one mapping or a list of them): the worker's wake-ups (engine/worker.py) learn from
    them that a change wrote a timer or outbox rows. They observe: a listener that would replace the
    statement or its parameters (`retval=True`) is not honoured on this path."""
    multiparams, single = (list(params), {}) if many else ([], params)
    for fn in conn.dispatch.before_execute:
        fn(conn, statement, multiparams, single, conn._execution_options)


def _on_cursor(conn: Connection, plan: _Plan, params, many: bool, fetch: bool):
    """Execute as `Connection._execute_context` does, minus the execution context: the listeners called
    around the driver's call, a driver error handled by the connection."""
    sql, cursor = plan.sql, None
    args: Any = None
    try:
        args = [plan.args(p) for p in params] if many else plan.args(params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        dispatch = conn.dispatch
        for fn in dispatch.before_cursor_execute:
            sql, args = fn(conn, cursor, sql, args, None, many)
        if many:
            cursor.executemany(sql, args)
        else:
            cursor.execute(sql, args)
        dispatch.after_cursor_execute(conn, cursor, sql, args, None, many)
        if plan.result_types is None:
            out: Any = cursor.rowcount
        else:
            out = _converted(conn, plan, cursor)
        cursor.close()
        return out
    except BaseException as e:
        conn._handle_dbapi_exception(e, sql, args, cursor, None)


def _converted(conn: Connection, plan: _Plan, cursor) -> list:
    rows = cursor.fetchall()
    procs = plan.result_processors
    if procs is None:
        dialect = conn.dialect
        assert plan.result_types is not None
        procs = plan.result_processors = [
            t._cached_result_processor(dialect, d[1])
            for t, d in zip(plan.result_types, cursor.description, strict=True)
        ]
    if not any(procs):
        return [tuple(r) for r in rows]
    pairs: list[tuple[int, Callable]] = [(i, p) for i, p in enumerate(procs) if p is not None]
    out = []
    for r in rows:
        r = list(r)
        for i, p in pairs:
            r[i] = p(r[i])
        out.append(tuple(r))
    return out
