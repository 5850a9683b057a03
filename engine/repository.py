"""Where a dossier is loaded from and saved to: the hot path's prebuilt Core statements and the optimistic
version check, behind one object per transaction.

`DossierRepository(session)` lives for one `Database.uow()`. It hands out plain `Dossier` objects
(engine/dossier.py) and remembers, for each, the column values as stored, so that `save` writes only what
the change touched, in one `UPDATE … WHERE id = :id AND version = :version`: a concurrent writer makes it
match no row and the change fails with `Conflict.dossier_changed` (HTTP 409), rolled back whole.

Every write of a dossier row (`add`, `save`, `save_fields`) also adds the change of the period report's
aggregates in the same transaction (engine/report_counts.py, `dossier_changed`): this is the one place where
dossier rows are written, so it is the one place that rule is applied.

The statements are built once at import and executed on the driver's cursor (engine/fastsql.py: compiled
once per dialect, converted with SQLAlchemy's own bind and result processors, the engine's statement
listeners called), so a step costs one locking read, a few indexed writes and no ORM bookkeeping nor
SQLAlchemy execution context (DEVELOPERS.md, "Persistence and speed").
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import cast

from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, Table, bindparam, select

from . import report_counts
from .dossier import Dossier
from .errors import Conflict, NotFound
from .fastsql import FastStatement
from .models import Dossier as DossierRow
from .models import Event, Task, TaskRole, WorkflowState

DOSSIERS = cast(Table, DossierRow.__table__)
STATES = cast(Table, WorkflowState.__table__)
TASKS = cast(Table, Task.__table__)
ROLES = cast(Table, TaskRole.__table__)
EVENTS = cast(Table, Event.__table__)
COLUMNS = [c.key for c in DOSSIERS.columns]
WRITABLE = [k for k in COLUMNS if k not in ("id", "version", "code", "created_by")]

# Hot-path statements, built once and planned once per dialect (engine/fastsql.py).
UPDATE_DOSSIER = FastStatement(
    DOSSIERS.update().where(DOSSIERS.c.id == bindparam("_id"), DOSSIERS.c.version == bindparam("_version"))
)
INSERT_DOSSIER = FastStatement(DOSSIERS.insert().returning(DOSSIERS.c.id))
SELECT_DOSSIER_BY_ID = FastStatement(select(DOSSIERS).where(DOSSIERS.c.id == bindparam("_id")).with_for_update())
SELECT_DOSSIER_BY_CODE = FastStatement(select(DOSSIERS).where(DOSSIERS.c.code == bindparam("_code")).with_for_update())
SELECT_STATE = FastStatement(select(STATES.c.state).where(STATES.c.dossier_id == bindparam("_id")))
UPDATE_STATE = FastStatement(STATES.update().where(STATES.c.dossier_id == bindparam("_id")))
INSERT_STATE = FastStatement(STATES.insert())
UPDATE_TASK = FastStatement(TASKS.update().where(TASKS.c.id == bindparam("_id")))
# an expanding IN's text depends on the number of ids: these go through Connection.execute
CANCEL_TASKS = TASKS.update().where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
SELECT_TASKS = select(TASKS).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
DELETE_ROLES = ROLES.delete().where(ROLES.c.task_id.in_(bindparam("ids", expanding=True)))
# ... but a step drops the roles of the one task it completed: the same DELETE for one id
DELETE_ROLES_OF = FastStatement(ROLES.delete().where(ROLES.c.task_id == bindparam("_id")))
INSERT_TASK = FastStatement(TASKS.insert())
INSERT_ROLE = FastStatement(ROLES.insert())
INSERT_EVENT = FastStatement(EVENTS.insert())
LAST_EVENT_FROM = FastStatement(
    select(EVENTS.c.from_status)
    .where(EVENTS.c.dossier_id == bindparam("_id"), EVENTS.c.action == bindparam("_action"))
    .order_by(EVENTS.c.id.desc())
    .limit(1)
)
SELECT_TASK_DOSSIER = FastStatement(
    select(TASKS, DOSSIERS)
    .join(DOSSIERS, DOSSIERS.c.id == TASKS.c.dossier_id)
    .where(TASKS.c.id == bindparam("_id"))
    .with_for_update()
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)
_TASK_KEYS = [c.key for c in TASKS.columns]
_DOSSIER_KEYS = COLUMNS
_N_TASK = len(_TASK_KEYS)


class TaskRow(SimpleNamespace):
    """A plain copy of a task row on the hot path: the attribute names of the mapped class, no ORM."""


def _one_row_expected(n: int) -> Exception:
    from sqlalchemy.exc import MultipleResultsFound, NoResultFound

    return NoResultFound("No row was found when one was required") if n == 0 else MultipleResultsFound()


def _not_found(key) -> NotFound:
    return NotFound(f"Không tìm thấy hồ sơ '{key}'", f"dossier '{key}' not found")


class DossierRepository:
    """Dossiers, their workflow state, task rows and audit events inside one transaction."""

    def __init__(self, session, national_calendar=None):
        """`national_calendar`: a callable giving the national working calendar (the service's cached one),
        read by the report's aggregates when a result is ready; None reads it from the database then."""
        self.session = session
        self.conn = session.connection()
        self._calendar = national_calendar
        self._stored: dict[int, dict] = {}  # dossier id -> its writable columns as stored
        self._inserted: set[int] = set()  # written by this transaction's INSERT, not yet updated
        # the change's outbox rows not written yet (engine/channels/notify.py): the use case writes them in
        # one INSERT when the change is complete (`take_outbox`)
        self.outbox: list[dict] = []

    # -- dossiers ----------------------------------------------------------------------------------
    def add(self, values: dict) -> Dossier:
        """Insert a new dossier (`values`: every column but id); the returned object has its id."""
        (dossier_id,) = INSERT_DOSSIER.first(self.conn, values)
        self._stored[dossier_id] = {k: values.get(k) for k in WRITABLE}
        self._inserted.add(dossier_id)
        report_counts.dossier_changed(self.session, None, dict(values, id=dossier_id), self._facts())
        return Dossier(id=dossier_id, **values)

    def _loaded(self, columns: dict) -> Dossier:
        self._stored[columns["id"]] = {k: columns[k] for k in WRITABLE}
        return Dossier(**columns)

    def get_for_update(self, *, code: str | None = None, dossier_id: int | None = None) -> Dossier:
        """The dossier, its row locked until the transaction ends (PostgreSQL; SQLite's writer lock)."""
        if code is not None:
            row = SELECT_DOSSIER_BY_CODE.first(self.conn, {"_code": code})
        else:
            row = SELECT_DOSSIER_BY_ID.first(self.conn, {"_id": dossier_id})
        if row is None:
            raise _not_found(code or dossier_id)
        return self._loaded(dict(zip(COLUMNS, row, strict=True)))

    def task_for_update(self, task_id: str) -> tuple[TaskRow, Dossier] | None:
        """A task and its dossier in one round trip, both locked (a concurrent completion waits, then sees it
        completed); None when there is no such task."""
        row = SELECT_TASK_DOSSIER.first(self.conn, {"_id": task_id})
        if row is None:
            return None
        task = TaskRow(**dict(zip(_TASK_KEYS, row[:_N_TASK], strict=True)))
        return task, self._loaded(dict(zip(_DOSSIER_KEYS, row[_N_TASK:], strict=True)))

    def save(self, dossier: Dossier, now: datetime) -> None:
        """Write the dossier back in one UPDATE guarded by its version: a concurrent writer → Conflict.

        Only changed columns are written; `data` always is (it is a mutable JSON value). A dossier inserted
        by this transaction and unchanged since is not written again.
        """
        stored = self._stored[dossier.id]
        current = dossier.columns(WRITABLE)
        if dossier.id in self._inserted:
            self._inserted.discard(dossier.id)
            if all(stored.get(k) == v for k, v in current.items() if k != "updated_at"):
                return
        values = {k: v for k, v in current.items() if k == "data" or stored[k] != v}
        self._update(dossier, now, values)

    def save_fields(self, dossier: Dossier, now: datetime, **values) -> None:
        """Set some columns and write them now, guarded by the version (a change made after `save`)."""
        for k, v in values.items():
            setattr(dossier, k, v)
        self._inserted.discard(dossier.id)
        self._update(dossier, now, values)

    def _update(self, dossier: Dossier, now: datetime, values: dict) -> None:
        values["updated_at"] = now
        values.update(_id=dossier.id, _version=dossier.version, version=dossier.version + 1)
        if UPDATE_DOSSIER.run(self.conn, values) != 1:
            raise Conflict.dossier_changed()
        dossier.version += 1
        stored = self._stored[dossier.id]
        before = dict(stored, id=dossier.id)
        stored.update((k, v) for k, v in values.items() if not k.startswith("_") and k != "version")
        # the report's aggregates change in the same transaction (engine/report_counts.py)
        report_counts.dossier_changed(self.session, before, dict(stored, id=dossier.id), self._facts())

    def _facts(self) -> report_counts.Facts:
        return report_counts.Facts(self.session, calendar=self._calendar)

    def take_outbox(self) -> list[dict]:
        rows, self.outbox = self.outbox, []
        return rows

    # -- workflow state ----------------------------------------------------------------------------
    def state(self, dossier_id: int) -> bytes:
        rows = SELECT_STATE.rows(self.conn, {"_id": dossier_id})
        if len(rows) != 1:
            raise _one_row_expected(len(rows))
        return rows[0][0]

    def add_state(self, dossier_id: int, blob: bytes) -> None:
        INSERT_STATE.run(self.conn, {"dossier_id": dossier_id, "state": blob})

    def save_state(self, dossier_id: int, blob: bytes) -> None:
        UPDATE_STATE.run(self.conn, {"_id": dossier_id, "state": blob})

    # -- task rows ---------------------------------------------------------------------------------
    def task_completed(self, task_id: str, by: str, now: datetime) -> None:
        UPDATE_TASK.run(self.conn, {"_id": task_id, "state": "completed", "completed_at": now, "completed_by": by})

    def tasks_cancelled(self, task_ids: list[str], now: datetime) -> None:
        self.conn.execute(CANCEL_TASKS, {"ids": task_ids, "state": "cancelled", "completed_at": now})

    def roles_dropped(self, task_ids: list[str]) -> None:
        if len(task_ids) == 1:
            DELETE_ROLES_OF.run(self.conn, {"_id": task_ids[0]})
        else:
            self.conn.execute(DELETE_ROLES, {"ids": task_ids})

    def tasks(self, task_ids: list[str]) -> list[TaskRow]:
        return [TaskRow(**r._mapping) for r in self.conn.execute(SELECT_TASKS, {"ids": task_ids})]

    def redefine_task(self, task_id: str, values: dict, roles: list[str] | None = None) -> None:
        """Rewrite an open task's row (`values`: the columns that change); `roles` (None: unchanged) replaces
        its candidate roles in the inbox index, in the row's performing agency (`values["agency"]`)."""
        UPDATE_TASK.run(self.conn, {"_id": task_id, **values})
        if roles is not None:
            DELETE_ROLES_OF.run(self.conn, {"_id": task_id})
            rows = [{"task_id": task_id, "role": role, "agency": values["agency"]} for role in roles]
            if rows:
                INSERT_ROLE.run(self.conn, rows)

    def add_tasks(self, rows: list[dict], role_rows: list[dict]) -> list[TaskRow]:
        if rows:
            INSERT_TASK.run(self.conn, rows)
        if role_rows:
            INSERT_ROLE.run(self.conn, role_rows)
        return [TaskRow(**r) for r in rows]

    # -- audit -------------------------------------------------------------------------------------
    def add_event(self, **row) -> None:
        row.setdefault("task_id", None)
        INSERT_EVENT.run(self.conn, row)

    def last_from_status(self, dossier_id: int, action: str) -> str | None:
        """The status the dossier was in when its last event `action` happened (None: no such event)."""
        row = LAST_EVENT_FROM.first(self.conn, {"_id": dossier_id, "_action": action})
        return None if row is None else row[0]
