"""One walk of a workflow's task tree for everything a step reads of where the workflow stands.

After the engine ran, a step needs the ready user tasks (the inbox rows, engine/dossiers.py), the message
events it waits at (the fee and the supplement, engine/messages.py and engine/payments.py) and the
service tasks waiting for their connector (engine/connectors.py). Each was a `Workflow.get_tasks` of its
own, a full walk of the tree every time (about five per step). `Walk` takes them from one pass of
SpiffWorkflow's own iterator, filtered on the three states: the iterator prunes as it does for each of
them alone (it descends into FUTURE-or-later tasks and into called processes), in the same depth-first
order, so each list is exactly what its own `get_tasks` gave.

A walk describes the workflow as it stood when it was taken: whoever moves the workflow afterwards (runs a
task, delivers a message) takes a new one.
"""

from __future__ import annotations

from SpiffWorkflow.util.task import TaskState

from .messages import WAIT_MESSAGES, wait_name

_READY, _WAITING = TaskState.READY, TaskState.WAITING
_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED


class Walk:
    """The open tasks of a workflow, from one walk of its task tree (its called processes' included).

    - `ready`: the ready user tasks by task id (the ids of their inbox rows), as `get_tasks(state=READY,
      manual=True)` lists them;
    - `waits`: the tasks waiting at a message catch event named in `messages.WAIT_MESSAGES`;
    - `started`: the STARTED tasks (a service task waiting for its connector is one).
    """

    __slots__ = ("ready", "started", "waits")

    def __init__(self, workflow):
        ready: dict = {}
        waits: list = []
        started: list = []
        for t in workflow.get_tasks_iterator(state=_OPEN):
            state = t.state
            if state == _READY:
                if t.task_spec.manual:
                    ready[str(t.id)] = t
            elif state == _WAITING:
                if wait_name(t) in WAIT_MESSAGES:
                    waits.append(t)
            else:
                started.append(t)
        self.ready, self.waits, self.started = ready, waits, started

    def waiting(self, name: str | None = None) -> list:
        """The tasks waiting at a message catch event named `name` (any of `WAIT_MESSAGES` if None)."""
        if name is None:
            return list(self.waits)
        return [t for t in self.waits if wait_name(t) == name]
