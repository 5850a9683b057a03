"""Moving running dossiers to another version of their procedure (`motcua migrate`, POST
/procedures/{code}/migrations; docs/bpmn-conventions.md, "Migrating running dossiers").

A dossier keeps the version it started on (engine/procedures.py); an administrator may move the running
dossiers of one variant to another of its versions. Each task of the dossier's workflow is mapped to the new
version's element of the same id (SpiffWorkflow's `SpecDiff`, which also aligns a renamed element by its
neighbours). A dossier waiting at an element the new version no longer has is listed and left alone; its
row, state and tasks are untouched. Every other dossier moves in a transaction of its own: its ready
steps are predicted again from the new diagram (their task ids, inbox rows and holders stay; waiting
events keep their armed instants), completed
steps the new version dropped are taken out of the history tree (the task rows and the timeline keep
them), and one `dossier.migrated` audit event records it. A dossier changed since the page was listed is
reported as conflicted and not touched (the optimistic version check, DEVELOPERS.md); one the new
diagram cannot carry on (a script or condition failing on its data) is left alone with the error.

The work is paged: one call handles at most `limit` dossiers after the cursor `after` (a dossier id) and
says where the next page starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select

from .auth import Actor
from .dossiers import ready_user_tasks, step_reminder_at
from .errors import Conflict, InvalidInput, NotFound, WorkflowDataError
from .models import Dossier, Event, ProcedureVersion, utcnow
from .paging import MAX_PER_PAGE
from .procedures import CALLED_VERSIONS, variant_for
from .workflow_state import full_serializer

#: A task in one of these states is where the dossier stands now: its element must exist in the new version.
CURRENT = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR
#: Done steps: history, kept when their element still exists, dropped from the tree when it does not.
DONE = TaskState.COMPLETED | TaskState.CANCELLED

#: Predicted again from the new diagram: the ready steps. A waiting event (a timer, a payment or supplement wait)
#: keeps what it was armed with - its instant, its correlation - and finds its next element in the new
#: diagram when it fires.
RESET = TaskState.READY

MIGRATED, WOULD_MIGRATE, LEFT_ALONE, CONFLICTED = "migrated", "would_migrate", "left_alone", "conflicted"


@dataclass
class Plan:
    """What moving one workflow to a new spec would do: the elements that block it, else the diffs to apply."""

    missing: list[str] = field(default_factory=list)
    forks: list[str] = field(default_factory=list)  # parallel forks it would sit behind without having passed
    diffs: tuple = ()


def plan(workflow, new_spec, new_dependencies: dict, dialect: str) -> Plan:
    """Compare a restored workflow with the new spec (and the specs of its sub-processes): the ids of the
    elements it stands at that the new version lacks, or the diffs `apply` needs."""
    registry = full_serializer(dialect).registry
    top, subs = diff_workflow(registry, workflow, new_spec, new_dependencies)
    missing = [t.task_spec.name for t in top.removed if t.has_state(CURRENT)]
    for sp_id, diff in subs.items():
        sp = workflow.subprocesses[sp_id]
        if diff is None:  # a running sub-process whose whole process the new version lacks
            if not sp.completed:
                missing.append(sp.spec.name)
            continue
        missing += [t.task_spec.name for t in diff.removed if t.has_state(CURRENT)]
    return Plan(missing=sorted(set(missing)), forks=_forks_not_passed(workflow, new_spec), diffs=(top, subs))


def _forks_not_passed(workflow, new_spec) -> list[str]:
    """The parallel forks of the new version a step the dossier stands at would sit behind although the
    dossier never passed them (e.g. a step that came one after another before and runs beside another step
    now): moved, it would wait at the join for a branch nobody opened, so the dossier is left alone naming
    the fork. Walks back from each such step to the nearest join (past it the branches met already)."""
    passed = {t.task_spec.name for t in workflow.get_tasks(state=TaskState.COMPLETED)}
    blocking = set()
    for task in workflow.get_tasks(state=CURRENT):
        spec = new_spec.task_specs.get(task.task_spec.name)
        todo, seen = list(spec.inputs) if spec is not None else [], set()
        while todo:
            up = todo.pop()
            if up.name in seen:
                continue
            seen.add(up.name)
            if isinstance(up, ParallelGateway) and len(up.inputs) > 1:
                continue  # a join: the branches before it met there
            if isinstance(up, ParallelGateway) and len(up.outputs) > 1 and up.name not in passed:
                blocking.add(up.name)
            todo.extend(up.inputs)
    return sorted(blocking)


def apply(workflow, p: Plan, new_spec, new_dependencies: dict) -> None:
    """Move the workflow to the new spec: every task onto its aligned element, the waiting steps predicted
    again from the new diagram, the done steps of removed elements spliced out of the tree."""
    top, subs = p.diffs
    workflow.subprocess_specs = new_dependencies
    migrate_workflow(top, workflow, new_spec, reset_mask=RESET)
    _splice_removed(workflow, new_spec)
    for sp_id, diff in subs.items():
        sp = workflow.subprocesses.get(sp_id)
        if diff is None or sp is None:
            continue
        spec = new_dependencies[sp.spec.name]
        migrate_workflow(diff, sp, spec, reset_mask=RESET)
        _splice_removed(sp, spec)


def _splice_removed(workflow, spec) -> None:
    """Take out of the tree the tasks whose element `spec` lacks: done steps give their children to their
    parent; a predicted one left over (a branch not reset) is dropped with its branch."""
    for task in list(workflow.tasks.values()):
        if task.id not in workflow.tasks or spec.task_specs.get(task.task_spec.name) is task.task_spec:
            continue
        parent = task.parent
        if task.has_state(DONE) and parent is not None:
            at = parent._children.index(task.id)
            parent._children[at : at + 1] = task._children
            for child in task.children:
                child._parent = parent.id
            del workflow.tasks[task.id]
        elif task.has_state(TaskState.PREDICTED_MASK) and parent is not None:
            for gone in list(task):
                workflow.tasks.pop(gone.id, None)
            parent._children.remove(task.id)
        else:  # plan() refuses such a dossier; reaching here is a bug, and the transaction rolls back
            raise Conflict(
                f"Không chuyển được bước '{task.task_spec.name}' sang phiên bản mới",
                f"step '{task.task_spec.name}' cannot be moved to the new version",
            )
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = None


def _target(session, code: str, to_version, agency: str | None) -> tuple[ProcedureVersion, list[int]]:
    """The version asked for and the ids of the variant's other versions."""
    if isinstance(to_version, bool) or not isinstance(to_version, int) or to_version < 1:
        raise InvalidInput(
            "to_version phải là số nguyên dương",
            "to_version must be a positive integer",
            {"fields": {"to_version": "integer ≥ 1"}},
        )
    current_id, _ = variant_for(session, code, agency)
    procedure_id = session.scalar(select(ProcedureVersion.procedure_id).where(ProcedureVersion.id == current_id))
    versions = dict(
        session.execute(
            select(ProcedureVersion.version, ProcedureVersion.id).where(ProcedureVersion.procedure_id == procedure_id)
        ).all()
    )
    if to_version not in versions:
        raise InvalidInput(
            f"Thủ tục '{code}' không có phiên bản {to_version} (có: {', '.join(map(str, sorted(versions)))})",
            f"procedure '{code}' has no version {to_version} (it has {', '.join(map(str, sorted(versions)))})",
            {"fields": {"to_version": f"one of {sorted(versions)}"}},
        )
    target = session.get(ProcedureVersion, versions[to_version])
    return target, [vid for vid in versions.values() if vid != target.id]


def _page_limit(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PER_PAGE:
        raise InvalidInput(
            f"limit phải từ 1 đến {MAX_PER_PAGE}",
            f"limit must be between 1 and {MAX_PER_PAGE}",
            {"fields": {"limit": f"1–{MAX_PER_PAGE}"}},
        )
    return limit


def _running(other_ids: list[int], after: int):
    return select(Dossier.id, Dossier.version, Dossier.code).where(
        Dossier.procedure_version_id.in_(other_ids), Dossier.finished.is_(False), Dossier.id > after
    )


def migrate_page(
    service,
    actor: Actor,
    code: str,
    to_version,
    *,
    dry_run: bool = False,
    agency: str | None = None,
    after: int = 0,
    limit: int = MAX_PER_PAGE,
    progress=None,
) -> dict:
    """Move (or, with `dry_run`, only check) the next `limit` running dossiers of the variant of `code`
    (the province-wide one, or `agency`'s) that are on another version than `to_version`, in dossier id
    order after `after`. `service` is the `DossierService`; `progress(item)` is called after each dossier.

    Returns `{code, to_version, dry_run, total, items: [{code, from_version, outcome, at, missing}], counts,
    next_after}`: `total` counts the dossiers still to look at from `after` on, `next_after` is the cursor of
    the next page (None: this was the last)."""
    actor.require_permission("admin")
    limit = _page_limit(limit)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise InvalidInput("after phải ≥ 0", "after must be ≥ 0", {"fields": {"after": "integer ≥ 0"}})
    with service.db.read() as s:
        target, other_ids = _target(s, code, to_version, agency)
        target_id = target.id
        q = _running(other_ids, after)
        total = s.scalar(q.with_only_columns(func.count()).order_by(None)) if other_ids else 0
        rows = s.execute(q.order_by(Dossier.id).limit(limit + 1)).all() if other_ids else []
    more = len(rows) > limit
    rows = rows[:limit]
    items = []
    for dossier_id, seen_version, dossier_code in rows:
        item = _migrate_one(service, actor, dossier_id, seen_version, target_id, dry_run)
        item = {"code": dossier_code, "from_version": None, "at": [], "missing": [], **item}
        items.append(item)
        if progress is not None:
            progress(item)
    counts = {k: sum(1 for i in items if i["outcome"] == k) for k in (MIGRATED, WOULD_MIGRATE, LEFT_ALONE, CONFLICTED)}
    return {
        "code": code,
        "to_version": to_version,
        "dry_run": dry_run,
        "total": int(total or 0),
        "items": items,
        "counts": counts,
        "next_after": rows[-1][0] if more else None,
    }


class _LeftAlone(Exception):
    def __init__(self, item: dict):
        super().__init__(item.get("error"))
        self.item = item


class _DryRun(Exception):
    """Raised at the end of a dry run's transaction so that everything it did is rolled back."""

    def __init__(self, item: dict):
        super().__init__(item["outcome"])
        self.item = item


#: The columns of an open step's row that its element's definition decides (engine/dossiers.py,
#: `DossierService.step_definition`).
DEFINED = ("agency", "for_agency", "title", "roles", "assignee", "form_key")


def _redefine_open_steps(service, s, loaded, old_deadlines: dict[str, str | None], now) -> list[dict]:
    """Bring the rows of the steps the dossier still waits at in line with the new version's element of the
    same id: performing agency, title, candidate roles (the inbox index), assignee, form. The step's due time
    is counted again from the instant the step opened (`tasks.created_at`) when its deadline or its performing
    agency changed, plus the supplement pauses it lived through, else kept (the pauses already added to it); a
    reminder already sent is not sent again; a late flag stays only when the new due time has passed too. A claim is released when the step
    changed hands (agency, roles or assignee): its holder may no longer be one of those who do it.
    Returns what changed, step by step, for the audit event (docs/bpmn-conventions.md, "Migrating running
    dossiers")."""
    d, repo = loaded.dossier, loaded.repo
    still = [tid for tid in ready_user_tasks(loaded.workflow) if tid in old_deadlines]
    changes = []
    pauses = None
    for row in repo.tasks(still) if still else []:
        t = loaded.workflow.get_task_from_id(UUID(row.id))
        new = service.step_definition(s, loaded.rt, t, d, loaded.cal, row.created_at)
        values = {k: new[k] for k in DEFINED if getattr(row, k) != new[k]}
        if new["agency"] != row.agency or loaded.rt.user_task(t).get("deadline") != old_deadlines[row.id]:
            if new["due_at"] is not None:  # the supplement pauses the step lived through count again
                pauses = _pauses(s, d.id) if pauses is None else pauses
                paused = sum(hours for started, hours in pauses if started >= row.created_at)
                if paused > 0:
                    step_cal = loaded.cal if new["agency"] == d.agency else service.calendar(s, new["agency"])
                    new["due_at"] = step_cal.add_working_hours(new["due_at"], paused)
                    new["remind_at"] = step_reminder_at(row.created_at, new["due_at"], step_cal, service.settings)
            values["due_at"], values["remind_at"] = new["due_at"], new["remind_at"]
            if row.due_at is not None and row.remind_at is None:  # its reminder was sent already
                values["remind_at"] = None
            late = new["due_at"] is not None and new["due_at"] <= now
            values["overdue_flagged_at"] = row.overdue_flagged_at if late else None
            values = {k: v for k, v in values.items() if getattr(row, k) != v}
        if row.claimed_by and values.keys() & {"agency", "roles", "assignee"}:
            values.update(claimed_by=None, claimed_at=None)
        if not values:
            continue
        repo.redefine_task(
            row.id, {"agency": new["agency"], **values}, new["roles"] if values.keys() & {"agency", "roles"} else None
        )
        service.task_rights.forget(row.id)  # who may work on it changed (engine/dossiers.py, TaskRights)
        changes.append(
            {
                "task_id": row.id,
                "task": row.spec_name,
                "changed": {k: [_json(getattr(row, k)), _json(v)] for k, v in values.items()},
            }
        )
    return changes


def _pauses(s, dossier_id: int) -> list[tuple[datetime, float]]:
    """(start, paused working hours) of each supplement pause the dossier ended, from its audit events (the
    `supplement.received` event records both: engine/actions.py)."""
    out = []
    for details in s.scalars(
        select(Event.details).where(Event.dossier_id == dossier_id, Event.action == "supplement.received")
    ):
        if details and details.get("paused_at") and details.get("paused_working_hours"):
            out.append((datetime.fromisoformat(details["paused_at"]), float(details["paused_working_hours"])))
    return out


def _json(value):
    return value.isoformat() if isinstance(value, datetime) else value


def _migrate_one(service, actor: Actor, dossier_id: int, seen_version: int, target_id: int, dry_run: bool) -> dict:
    """One dossier in its own transaction: locked, checked against the version listed, then moved or left.
    A dry run does all of it and rolls the transaction back, so it finds what the real run would."""
    kept = None
    try:
        with service.db.uow() as s:
            loaded = service.open_for_update(s, dossier_id=dossier_id)
            d = loaded.dossier
            item = {"from_version": loaded.rt.version}
            kept = (d.id, d.version, loaded.workflow)
            if d.version != seen_version or d.finished:
                return {**item, "outcome": CONFLICTED}
            workflow = loaded.workflow
            item["at"] = sorted({t.task_spec.name for t in workflow.get_tasks(state=CURRENT)})
            new_rt = service.runtimes.get(s, target_id)
            pinned = workflow.data.get(CALLED_VERSIONS)
            new_deps, new_pinned = service.runtimes.called_specs(s, new_rt, d.agency, pinned)
            p = plan(workflow, new_rt.spec, new_deps, new_rt.dialect)
            if p.missing:
                return {**item, "outcome": LEFT_ALONE, "missing": p.missing}
            if p.forks:  # moved, it would wait at a join for a branch never opened
                forks = ", ".join(p.forks)
                message = (
                    f"the dossier stands after the parallel gateway {forks} of the new version without having "
                    "passed it: it would wait at the join for a branch never opened"
                )
                return {**item, "outcome": LEFT_ALONE, "error": message}
            old_deadlines = {tid: loaded.rt.user_task(t).get("deadline") for tid, t in loaded.before.items()}
            kept = None  # the live workflow is about to change: it goes back to the cache only if committed
            now, old_status = utcnow(), d.status
            try:
                apply(workflow, p, new_rt.spec, new_deps)
                if new_pinned:
                    workflow.data[CALLED_VERSIONS] = new_pinned
                service.run_engine(workflow, new_rt)
                d.procedure_version_id = target_id
                loaded.rt = new_rt
                steps = _redefine_open_steps(service, s, loaded, old_deadlines, now)
                service.finish_step(s, loaded, actor, now)
            except (SpiffWorkflowException, WorkflowDataError) as exc:  # the new diagram cannot go on with this data
                message = getattr(exc, "message_en", None) or str(exc).strip() or type(exc).__name__
                raise _LeftAlone({**item, "outcome": LEFT_ALONE, "error": message}) from exc
            if dry_run:
                raise _DryRun({**item, "outcome": WOULD_MIGRATE})
            loaded.repo.add_event(
                dossier_id=d.id,
                actor=actor.username,
                action="dossier.migrated",
                at=now,
                from_status=old_status,
                to_status=d.status,
                details={
                    "from_version": item["from_version"],
                    "to_version": new_rt.version,
                    "at": item["at"],
                    "steps": steps,
                },
            )
            kept = (d.id, d.version, workflow)
            return {**item, "outcome": MIGRATED}
    except (_LeftAlone, _DryRun) as out:  # this transaction rolled back: nothing of the dossier changed
        return out.item
    except (Conflict, NotFound):  # changed (or gone) meanwhile: this transaction rolled back
        kept = None
        return {"outcome": CONFLICTED}
    finally:
        if kept is not None:
            service.workflows.put(*kept)
