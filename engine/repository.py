"""Where a dossier is loaded from and saved to: the hot path's prebuilt Core statements and the optimistic
version check, behind one object per transaction.

`DossierRepository(session)` lives for one `Database.uow()`. It hands out plain `Dossier` objects
(engine/dossier.py) and remembers, for each, the column values as stored, so that `save` writes only what
the change touched, in one `UPDATE … WHERE id = :id AND version = :version`: a concurrent writer makes it
match no row and the change fails with `Conflict.dossier_changed` (HTTP 409), rolled back whole.

Every write of a dossier row (`add`, `save`, `save_fields`) also adds the change of the period report's
aggregates in the same transaction (engine/report_counts.py, `dossier_changed`): this is the one place where
dossier rows are written, so it is the one place that rule is applied.

The statements are built once at import: SQLAlchemy caches their compiled form, so a step costs one locking
read, a few indexed writes and no ORM bookkeeping (DEVELOPERS.md, "Persistence and speed").
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import cast

from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, Table, bindparam, select

from . import report_counts
from .dossier import Dossier
from .errors import Conflict, NotFound
from .models import Dossier as DossierRow
from .models import Event, Task, TaskRole, WorkflowState

DOSSIERS = cast(Table, DossierRow.__table__)
STATES = cast(Table, WorkflowState.__table__)
TASKS = cast(Table, Task.__table__)
ROLES = cast(Table, TaskRole.__table__)
EVENTS = cast(Table, Event.__table__)
COLUMNS = [c.key for c in DOSSIERS.columns]
WRITABLE = [k for k in COLUMNS if k not in ("id", "version", "code", "created_by")]

# Hot-path statements, built once: their compiled form is cached and reused by every step.
UPDATE_DOSSIER = DOSSIERS.update().where(DOSSIERS.c.id == bindparam("_id"), DOSSIERS.c.version == bindparam("_version"))
INSERT_DOSSIER = DOSSIERS.insert().returning(DOSSIERS.c.id)
SELECT_DOSSIER_BY_ID = select(DOSSIERS).where(DOSSIERS.c.id == bindparam("_id")).with_for_update()
SELECT_DOSSIER_BY_CODE = select(DOSSIERS).where(DOSSIERS.c.code == bindparam("_code")).with_for_update()
SELECT_STATE = select(STATES.c.state).where(STATES.c.dossier_id == bindparam("_id"))
UPDATE_STATE = STATES.update().where(STATES.c.dossier_id == bindparam("_id"))
INSERT_STATE = STATES.insert()
UPDATE_TASK = TASKS.update().where(TASKS.c.id == bindparam("_id"))
CANCEL_TASKS = TASKS.update().where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
SELECT_TASKS = select(TASKS).where(TASKS.c.id.in_(bindparam("ids", expanding=True)))
INSERT_TASK = TASKS.insert()
INSERT_ROLE = ROLES.insert()
DELETE_ROLES = ROLES.delete().where(ROLES.c.task_id.in_(bindparam("ids", expanding=True)))
INSERT_EVENT = EVENTS.insert()
LAST_EVENT_FROM = (
    select(EVENTS.c.from_status)
    .where(EVENTS.c.dossier_id == bindparam("_id"), EVENTS.c.action == bindparam("_action"))
    .order_by(EVENTS.c.id.desc())
    .limit(1)
)
SELECT_TASK_DOSSIER = (
    select(TASKS, DOSSIERS)
    .join(DOSSIERS, DOSSIERS.c.id == TASKS.c.dossier_id)
    .where(TASKS.c.id == bindparam("_id"))
    .with_for_update()
    .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
)
_TASK_COLS = [(f"tasks_{c.key}", c.key) for c in TASKS.columns]
_DOSSIER_COLS = [(f"dossiers_{c.key}", c.key) for c in DOSSIERS.columns]


class TaskRow(SimpleNamespace):
    """A plain copy of a task row on the hot path: the attribute names of the mapped class, no ORM."""


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
        dossier_id = self.conn.execute(INSERT_DOSSIER, values).scalar_one()
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
            row = self.conn.execute(SELECT_DOSSIER_BY_CODE, {"_code": code}).first()
        else:
            row = self.conn.execute(SELECT_DOSSIER_BY_ID, {"_id": dossier_id}).first()
        if row is None:
            raise _not_found(code or dossier_id)
        return self._loaded(dict(row._mapping))

    def task_for_update(self, task_id: str) -> tuple[TaskRow, Dossier] | None:
        """A task and its dossier in one round trip, both locked (a concurrent completion waits, then sees it
        completed); None when there is no such task."""
        row = self.conn.execute(SELECT_TASK_DOSSIER, {"_id": task_id}).first()
        if row is None:
            return None
        m = row._mapping
        task = TaskRow(**{k: m[label] for label, k in _TASK_COLS})
        return task, self._loaded({k: m[label] for label, k in _DOSSIER_COLS})

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
        if self.conn.execute(UPDATE_DOSSIER, values).rowcount != 1:
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
        return self.conn.execute(SELECT_STATE, {"_id": dossier_id}).scalar_one()

    def add_state(self, dossier_id: int, blob: bytes) -> None:
        self.conn.execute(INSERT_STATE, {"dossier_id": dossier_id, "state": blob})

    def save_state(self, dossier_id: int, blob: bytes) -> None:
        self.conn.execute(UPDATE_STATE, {"_id": dossier_id, "state": blob})

    # -- task rows ---------------------------------------------------------------------------------
    def task_completed(self, task_id: str, by: str, now: datetime) -> None:
        self.conn.execute(UPDATE_TASK, {"_id": task_id, "state": "completed", "completed_at": now, "completed_by": by})

    def tasks_cancelled(self, task_ids: list[str], now: datetime) -> None:
        self.conn.execute(CANCEL_TASKS, {"ids": task_ids, "state": "cancelled", "completed_at": now})

    def roles_dropped(self, task_ids: list[str]) -> None:
        self.conn.execute(DELETE_ROLES, {"ids": task_ids})

    def tasks(self, task_ids: list[str]) -> list[TaskRow]:
        return [TaskRow(**r._mapping) for r in self.conn.execute(SELECT_TASKS, {"ids": task_ids})]

    def redefine_task(self, task_id: str, values: dict, roles: list[str] | None = None) -> None:
        """Rewrite an open task's row (`values`: the columns that change); `roles` (None: unchanged) replaces
        its candidate roles in the inbox index, in the row's performing agency (`values["agency"]`)."""
        self.conn.execute(UPDATE_TASK, {"_id": task_id, **values})
        if roles is not None:
            self.conn.execute(DELETE_ROLES, {"ids": [task_id]})
            rows = [{"task_id": task_id, "role": role, "agency": values["agency"]} for role in roles]
            if rows:
                self.conn.execute(INSERT_ROLE, rows[0] if len(rows) == 1 else rows)

    def add_tasks(self, rows: list[dict], role_rows: list[dict]) -> list[TaskRow]:
        if rows:
            self.conn.execute(INSERT_TASK, rows[0] if len(rows) == 1 else rows)
        if role_rows:
            self.conn.execute(INSERT_ROLE, role_rows[0] if len(role_rows) == 1 else role_rows)
        return [TaskRow(**r) for r in rows]

    # -- audit -------------------------------------------------------------------------------------
    def add_event(self, **row) -> None:
        row.setdefault("task_id", None)
        self.conn.execute(INSERT_EVENT, row)

    def last_from_status(self, dossier_id: int, action: str) -> str | None:
        """The status the dossier was in when its last event `action` happened (None: no such event)."""
        return self.conn.execute(LAST_EVENT_FROM, {"_id": dossier_id, "_action": action}).scalar()
