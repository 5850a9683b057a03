"""Where a dossier waits for someone outside the agency: message catch events the engine correlates by the
dossier's code (docs/bpmn-conventions.md, "Sự kiện chờ / Waits").

An intermediate message catch event whose message is named
- `payment` ("Chờ nộp lệ phí"): the gateway's confirmation of the fee (engine/payments.py) delivers it;
- `supplement` ("Chờ bổ sung hồ sơ"): the dossier takes status 5 with its clock paused, and the desk's
  "supplement received" action (engine/actions.py) delivers it, the workflow then runs on from the event.

Each such event a dossier waits at is a row of `tasks` in state `waiting` (no role, no due time: nobody's
inbox), written when the wait begins and `waited` when the message arrives, so the diagram's live counts
show how many dossiers wait there and the dossier's timeline shows the wait (not counted in any agency's
share of the time, nor as a hand-over between agencies); a called procedure's waits (call activities,
engine/procedures.py) are the calling dossier's. Versions deployed before this (no `waits` in their
metadata) and diagrams without such events or calls are untouched: no row, no extra query.
"""

from __future__ import annotations

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import insert, select, update

from .models import Task

PAYMENT = "payment"
SUPPLEMENT = "supplement"
WAIT_MESSAGES = (PAYMENT, SUPPLEMENT)
WAITING = "waiting"  # the state of a wait's task row while the dossier waits there
WAITED = "waited"  # … once the message came: never a step of the agency's own (no share of its time)
WAIT_STATES = (WAITING, WAITED)


def wait_name(task) -> str | None:
    """The name of the message (or other event) a task's event definition names, if any."""
    definition = getattr(task.task_spec, "event_definition", None)
    return getattr(definition, "name", None) if definition is not None else None


def waiting(workflow, name: str | None = None) -> list:
    """The workflow's tasks waiting at a message catch event named `name` (any of `WAIT_MESSAGES` if None).
    A step reads them from its one walk of the tree instead (engine/walk.py)."""
    names = (name,) if name else WAIT_MESSAGES
    return [t for t in workflow.get_tasks(state=TaskState.WAITING) if wait_name(t) in names]


def deliver(workflow, name: str, payload: dict | None = None) -> bool:
    """The message `name` reaches the event the workflow waits at; the workflow runs on to its next wait.
    False when it waits at no such event (a diagram without it: the caller's action stands alone)."""
    from SpiffWorkflow.bpmn.util import BpmnEvent

    found = waiting(workflow, name)
    if not found:
        return False
    # the dialect's own event definition (Camunda and Spiff subclass the message definition); Camunda's puts
    # `payload` into the task data under `result_var`
    definition = found[0].task_spec.event_definition
    data = payload or {}
    if hasattr(definition, "result_var"):
        data = {"payload": data, "result_var": name}
    workflow.send_event(BpmnEvent(definition, payload=data))
    workflow.do_engine_steps()
    return True


def sync_waits(s, dossier, workflow, now, waits: list | None = None) -> None:
    """Bring the dossier's `waiting` task rows in line with the events its workflow waits at (its own
    process's or a called procedure's). Called only for versions whose metadata has `waits` or `calls`.
    `waits`: those tasks when the caller has them already (`Walk.waiting()`, engine/walk.py)."""
    current = {str(t.id): t for t in (waiting(workflow) if waits is None else waits)}
    conn = s.connection()
    rows = set(
        conn.execute(select(Task.id).where(Task.dossier_id == dossier.id, Task.state == WAITING)).scalars().all()
    )
    gone = sorted(rows - set(current))
    if gone:
        conn.execute(update(Task).where(Task.id.in_(gone)).values(state=WAITED, completed_at=now))
    new = [
        dict(
            id=tid,
            dossier_id=dossier.id,
            dossier_code=dossier.code,
            procedure_code=dossier.procedure_code,
            agency=dossier.agency,
            spec_name=t.task_spec.name,
            title=(t.task_spec.bpmn_name or t.task_spec.name)[:500],
            roles=[],
            state=WAITING,
            created_at=now,
        )
        for tid, t in current.items()
        if tid not in rows
    ]
    if new:
        conn.execute(insert(Task), new)


def wait_events(root, involved) -> dict[str, str]:
    """`{event id: message name}` of the message catch events of these processes that wait for one of
    `WAIT_MESSAGES` (read at deploy from the BPMN root and its processes' infos)."""
    from . import bpmn_xml

    names = {m.get("id"): (m.get("name") or "").strip() for m in root.iter(f"{{{bpmn_xml.BPMN_NS}}}message")}
    ids = {info.id for info in involved}
    out = {}
    for process in bpmn_xml.processes(root):
        if process.get("id") not in ids:
            continue
        for ev in process.iter(f"{{{bpmn_xml.BPMN_NS}}}intermediateCatchEvent"):
            for md in ev.iter(f"{{{bpmn_xml.BPMN_NS}}}messageEventDefinition"):
                name = names.get(md.get("messageRef"))
                if name in WAIT_MESSAGES and ev.get("id"):
                    out[ev.get("id")] = name
    return out
