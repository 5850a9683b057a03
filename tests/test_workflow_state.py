"""The stored workflow state (engine/workflow_state.py) and the step's one walk of the tree (engine/walk.py).

The lean dump writes each task's dict itself, and what it writes must stay what SpiffWorkflow's converters
wrote through the registry, byte for byte, so that the states already in a database restore, and the states
written now restore wherever they are read. The walk must find what SpiffWorkflow's own walks find.

`tests/data/states/*.state` were stored by the code before the lean dump (main at 697b094, by the service
as the scenarios below run): a dossier inside a called procedure (a subprocess in the state) and one
waiting for a supplement (a message catch event), both with user data that needs the escape.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine import dossiers, messages, workflow_state
from engine.dossiers import DossierService
from engine.procedures import CALLED_VERSIONS, deploy_bytes, form_files_beside
from engine.walk import Walk
from tests.helpers import AGENCY, ALL_ROLES, staff
from tests.test_call_activities import SUB_FORM, callee, caller

ROOT = Path(__file__).resolve().parents[1]
STATES = ROOT / "tests" / "data" / "states"
WAITS = ROOT / "tests" / "data" / "waits" / "waits.bpmn"
FORMS = form_files_beside(ROOT / "tests" / "data" / "online" / "online_fee.bpmn")
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
ODD = {
    "ghi_chu": {"typename": "BpmnWorkflow", "x": 1},
    "x": {"~": [["a", 1]]},
    "ds": [{"typename": "UUID", "value": "v"}],
    "so": 3.5,
    "co": True,
    "khong": None,
}
receiver = staff({"receiver"}, name="tiepnhan")


class _RegistryWorkflowConverter(BpmnWorkflowConverter):
    """The dump before the lean one: every task through the registry and `DataTaskConverter`."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct


def registry_dump(dialect: str, workflow) -> str:
    config = workflow_state._config(dialect)
    config[BpmnWorkflow] = _RegistryWorkflowConverter
    config[Task] = workflow_state.DataTaskConverter
    s = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(config, workflow_state.DataRegistry()))
    dct = s.to_dict(workflow)
    dct["serializer_version"] = workflow_state.SERIALIZER_VERSION
    dct[workflow_state.ESCAPE_MARKER] = 1
    return json.dumps(dct, separators=(",", ":"))


@pytest.fixture
def dumps(monkeypatch):
    """Every state the service stores is checked against the registry's dump of the same workflow."""
    seen: list = []
    waits: list = []

    def checked(dialect, workflow):
        blob = workflow_state.dump_state(dialect, workflow)
        assert zlib.decompress(blob).decode() == registry_dump(dialect, workflow)
        # and the step's one walk found what each of SpiffWorkflow's own walks finds
        walk = Walk(workflow)
        assert list(walk.ready) == [str(t.id) for t in workflow.get_tasks(state=TaskState.READY, manual=True)]
        assert walk.waiting() == messages.waiting(workflow)
        assert walk.waiting(messages.SUPPLEMENT) == messages.waiting(workflow, messages.SUPPLEMENT)
        assert walk.started == workflow.get_tasks(state=TaskState.STARTED)
        waits.append(bool(walk.waits))
        seen.append(blob)
        return blob

    monkeypatch.setattr(dossiers, "dump_state", checked)
    return seen, waits


@pytest.fixture
def service(db, settings):
    deploy_bytes(db, callee(), "sub.bpmn", {"sub_form.json": SUB_FORM}, actor="test")
    deploy_bytes(db, caller(), "main.bpmn", actor="test")
    free = WAITS.read_bytes().replace(b'name="fee" value="15000"', b'name="fee" value="0"')
    deploy_bytes(db, free, WAITS.name, FORMS, actor="test")  # no fee: the payment wait is passed at once
    return DossierService(db, settings)


def test_the_lean_dump_writes_what_the_registry_wrote(service, dumps):
    # a called procedure (a subprocess of its own tasks), odd user data at intake and at a step
    d = service.start_dossier(receiver, "9.000401", APPLICANT, data=ODD)
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {"y_kien": {"typename": "Task"}})
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {"opinion": "Đủ", "~": {"typename": 1}})
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {})
    assert d["finished"]
    # message waits: the fee passed at once, then a supplement and its delivery
    d = service.start_dossier(receiver, "9.000501", APPLICANT, data={"purpose": "Xin việc", **ODD})
    accept = {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], accept)
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {"proposal": "supplement"})
    assert d["status"] == "supplement_requested"
    seen, waits = dumps
    assert len(seen) == 7 and waits[-1]  # the last one waits for the supplement


def _restore(service, db, blob: bytes, code: str):
    with db.read() as s:
        vid = dossiers.current_version_id(s, code, AGENCY)
        rt = service.runtimes.get(s, vid)
        workflow = workflow_state.load_state(
            rt.dialect,
            blob,
            rt.spec,
            lambda called: service.runtimes.called_specs(s, rt, AGENCY, called)[0],
            service.script_engine(service.calendar(s)),
            CALLED_VERSIONS,
        )
    return rt, workflow


@pytest.mark.parametrize("name, code", [("call_activity", "9.000401"), ("supplement_wait", "9.000501")])
def test_a_state_stored_before_the_lean_dump_restores_and_runs_on(service, db, name, code):
    blob = (STATES / f"{name}.state").read_bytes()
    rt, workflow = _restore(service, db, blob, code)
    # read back and written again: the very same text (nothing of the format changed)
    assert zlib.decompress(workflow_state.dump_state(rt.dialect, workflow)) == zlib.decompress(blob)
    walk = Walk(workflow)
    if name == "supplement_wait":
        assert not walk.ready and [t.task_spec.name for t in walk.waiting(messages.SUPPLEMENT)] == ["Event_Supplement"]
        assert messages.deliver(workflow, messages.SUPPLEMENT)
    else:
        (task,) = walk.ready.values()  # the callee's step, inside the subprocess
        assert task.task_spec.name == "Task_Intake" and task.workflow is not workflow
        assert task.data["ghi_chu"] == ODD["ghi_chu"] and task.data["y_kien"] == {"typename": "Task"}
    for _ in range(10):  # every step after it, to the end, with data the diagrams accept
        ready = list(Walk(workflow).ready.values())
        if not ready:
            break
        ready[0].data.update({"opinion": "Đủ", "decision": "accept", "proposal": "approve", "approved": True})
        ready[0].run()
        workflow.do_engine_steps()
    assert workflow.completed, [t.task_spec.name for t in Walk(workflow).ready.values()]
    # it stores and restores again
    again = workflow_state.dump_state(rt.dialect, workflow)
    _, back = _restore(service, db, again, code)
    assert workflow_state.dump_state(rt.dialect, back) == again
    assert back.data.get(CALLED_VERSIONS) == workflow.data.get(CALLED_VERSIONS)


def test_spiffworkflow_logs_no_task_list_once_logging_is_configured(monkeypatch, service, db):
    """SpiffWorkflow reads its loggers' own level (not the inherited one) to decide whether each workflow
    record lists every task id (a walk of the whole tree): `logs.configure` sets it on them."""
    import logging

    from engine import logs

    root = logging.getLogger()
    names = ("spiff", "spiff.workflow", "spiff.task")
    saved = (list(root.handlers), root.level, [logging.getLogger(n).level for n in names])
    monkeypatch.setattr(root, "_motcua_configured", False, raising=False)
    try:
        for n in names:  # as in a process that has not configured its logging
            logging.getLogger(n).setLevel(logging.NOTSET)
        rt, workflow = _restore(service, db, (STATES / "supplement_wait.state").read_bytes(), "9.000501")
        assert "tasks" in workflow.collect_log_extras()  # unconfigured: the walk is made
        logs.configure(level=logging.INFO)
        assert "tasks" not in workflow.collect_log_extras()
        assert [logging.getLogger(n).getEffectiveLevel() for n in names] == [logging.WARNING] * 3
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for n, level in zip(names, saved[2], strict=True):
            logging.getLogger(n).setLevel(level)
