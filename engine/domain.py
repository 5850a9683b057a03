"""The dossier's own rules, as plain Python: no session, no Flask, no SQL except each rule's SQL twin.

Overdue (quá hạn), the one definition used by the dossier views, the lists, the inbox, the monitor and the
report (docs/deadlines.md, "Overdue"):

* a **dossier** is overdue at instant `t` when it has a due time before `t`, was neither finished nor
  processed by `t` (its result ready: it only waits to be handed over) and was not paused at `t` (while the
  applicant supplements documents the clock stands still);
* a **step** (a task) is overdue at `t` when it is ready, its due time is before `t` and its dossier is not
  paused (nobody can work on a step while the applicant supplements documents).

Each rule is written three times, next to each other, and means the same: the Python predicate over a row
(`dossier_overdue`, `step_overdue`), its SQL twin at the current instant in the form the partial indexes
answer (`dossier_overdue_sql`, `step_overdue_sql`), and, for the dossier, the twin "as of" a past instant
read from the history columns (`dossier_overdue_as_of_sql`, `step_overdue_as_of_sql`: the report's period
end).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, false, or_, select

from .models import Dossier as DossierRow
from .models import Task as TaskRow

# ---------------------------------------------------------------------------------------------------
# Overdue


def dossier_overdue(d, at: datetime) -> bool:
    """Is the dossier `d` (any object with the dossier's columns) overdue at the instant `at`?"""
    due = d.due_at
    if due is None or not due < at:
        return False
    if d.finished and (d.finished_at is None or d.finished_at < at):
        return False
    if d.processed_at is not None and d.processed_at < at:
        return False
    return d.paused_at is None or d.paused_at >= at


def dossier_overdue_sql(now: datetime, D=DossierRow):
    """SQL twin of `dossier_overdue` at the current instant: open, no result, not paused, due before now
    (the conditions of the partial index ix_dossiers_running_due)."""
    return and_(D.finished == false(), D.processed_at.is_(None), D.paused_at.is_(None), D.due_at < now)


def dossier_not_overdue_sql(now: datetime, D=DossierRow):
    """The complement of `dossier_overdue_sql` (a dossier without a due time is never overdue)."""
    return or_(D.due_at.is_(None), ~dossier_overdue_sql(now, D))


def dossier_overdue_as_of_sql(at, D):
    """SQL twin of `dossier_overdue` at a past instant `at` (e.g. a report's period end), read from the time
    columns of `D` (a table or a subquery with due_at, processed_at, finished_at and paused_at): not closed
    by `at` and not paused at `at`. For `at` = now it selects the same rows as `dossier_overdue_sql`."""
    return and_(
        D.due_at < at,
        or_(D.processed_at.is_(None), D.processed_at >= at),
        or_(D.finished_at.is_(None), D.finished_at >= at),
        or_(D.paused_at.is_(None), D.paused_at >= at),
    )


def step_overdue(t, at: datetime, dossier_paused: bool) -> bool:
    """Is the task `t` overdue at `at`? `dossier_paused`: its dossier is paused for a supplement."""
    return t.state == "ready" and t.due_at is not None and t.due_at < at and not dossier_paused


def paused_dossier_ids():
    """The ids of the paused dossiers (few; the partial index ix_dossiers_paused lists them)."""
    return select(DossierRow.id).where(DossierRow.paused_at.is_not(None))


def step_overdue_sql(now: datetime, T=TaskRow):
    """SQL twin of `step_overdue`: a ready task due before now whose dossier is not paused."""
    return and_(T.state == "ready", T.due_at < now, T.dossier_id.not_in(paused_dossier_ids()))


def step_overdue_as_of_sql(at, T):
    """SQL twin of `step_overdue` at a past instant `at` (the report's period end), read from the history
    columns of `T` (a table or subquery with dossier_id, created_at, due_at, completed_at): open at `at`
    (created before it, not completed or cancelled by it), due before `at`, its dossier not paused at `at`
    (the few paused dossiers, `ix_dossiers_paused`). For `at` = now it selects the same rows as
    `step_overdue_sql`."""
    return and_(
        T.created_at < at,
        T.due_at < at,
        or_(T.completed_at.is_(None), T.completed_at >= at),
        T.dossier_id.not_in(select(DossierRow.id).where(DossierRow.paused_at.is_not(None), DossierRow.paused_at < at)),
    )


def step_not_overdue_sql(now: datetime, T=TaskRow):
    """The complement of `step_overdue_sql` among ready tasks."""
    return or_(T.due_at.is_(None), T.due_at >= now, T.dossier_id.in_(paused_dossier_ids()))
