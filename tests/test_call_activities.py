"""Call activities across files through the service layer and the API: a procedure calls another deployed
procedure by its code; the called version is the one current when the dossier starts, kept for its whole
life; a callee that is not deployed is refused at deploy naming the call activity
(docs/bpmn-conventions.md, "Gọi thủ tục khác / Calling another procedure")."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine.dossiers import DossierService
from engine.errors import ProcedureInvalid
from engine.models import Dossier, Event
from engine.procedures import deploy, deploy_bytes, load_procedure
from tests.helpers import ALL_ROLES, staff

AGENCY = "000.31.14.H56"
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
receiver = staff({"receiver"}, name="tiepnhan")

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="http://motcua.test">'
)


def props(**kw) -> str:
    items = "".join(f'<camunda:property name="{k}" value="{v}"/>' for k, v in kw.items())
    return f"<bpmn:extensionElements><camunda:properties>{items}</camunda:properties></bpmn:extensionElements>"


def callee(title="Thẩm định (thủ tục con)", deadline="2 working days") -> bytes:
    """9.000402: one step, `Task_Intake` (the same id as the caller's first step), for the police, with a form."""
    return (
        HEAD
        + '<bpmn:process id="sub_procedure" isExecutable="true">'
        + props(
            procedure_code="9.000402",
            procedure_name="Thủ tục con",
            agency=AGENCY,
            deadline="5 working days",
            fee="0",
            level="toan_trinh",
        )
        + '<bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_Intake"/>'
        f'<bpmn:userTask id="Task_Intake" name="{title}" camunda:candidateGroups="police_officer"'
        ' camunda:formKey="sub_form.json">'
        + props(deadline=deadline, status="in_process")
        + '</bpmn:userTask><bpmn:sequenceFlow id="F2" sourceRef="Task_Intake" targetRef="E"/>'
        '<bpmn:endEvent id="E"/></bpmn:process></bpmn:definitions>'
    ).encode()


SUB_FORM = json.dumps(
    {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "title": "Ý kiến thẩm định",
        "properties": {"opinion": {"type": "string", "title": "Ý kiến", "minLength": 1}},
        "required": ["opinion"],
    }
).encode()


def caller(called="9.000402") -> bytes:
    """9.000401: the desk's intake, then the called procedure, then the desk returns the result."""
    return (
        HEAD
        + '<bpmn:process id="main_procedure" isExecutable="true">'
        + props(
            procedure_code="9.000401",
            procedure_name="Thủ tục gọi thủ tục khác",
            agency=AGENCY,
            deadline="7 working days",
            fee="0",
            level="toan_trinh",
        )
        + '<bpmn:startEvent id="S"/><bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_Intake"/>'
        '<bpmn:userTask id="Task_Intake" name="Tiếp nhận" camunda:candidateGroups="receiver"/>'
        '<bpmn:sequenceFlow id="F2" sourceRef="Task_Intake" targetRef="Call_Sub"/>'
        f'<bpmn:callActivity id="Call_Sub" name="Thủ tục con" calledElement="{called}"/>'
        '<bpmn:sequenceFlow id="F3" sourceRef="Call_Sub" targetRef="Task_Return"/>'
        '<bpmn:userTask id="Task_Return" name="Trả kết quả" camunda:candidateGroups="receiver">'
        + props(status="processed")
        + '</bpmn:userTask><bpmn:sequenceFlow id="F4" sourceRef="Task_Return" targetRef="E"/>'
        '<bpmn:endEvent id="E">' + props(status="returned") + "</bpmn:endEvent></bpmn:process></bpmn:definitions>"
    ).encode()


@pytest.fixture
def service(db, settings):
    svc = DossierService(db, settings)
    deploy_bytes(db, callee(), "sub.bpmn", {"sub_form.json": SUB_FORM}, actor="test")
    deploy_bytes(db, caller(), "main.bpmn", actor="test")
    return svc


def step(service, d, data=None, user=ALL_ROLES):
    (task,) = d["tasks"]
    return service.complete_task(user, task["id"], data or {})


def test_the_called_procedure_runs_with_its_own_roles_form_and_deadline(service, db):
    d = service.start_dossier(receiver, "9.000401", APPLICANT)
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"] and d["tasks"][0]["roles"] == ["receiver"]
    d = step(service, d)
    # the callee's Task_Intake: its title, role and form, not the caller's step of the same id
    (t,) = d["tasks"]
    assert (t["spec_name"], t["name"], t["roles"]) == ("Task_Intake", "Thẩm định (thủ tục con)", ["police_officer"])
    assert t["due_at"] is not None and d["status"] == "in_process"
    form = service.task_form(ALL_ROLES, t["id"])
    assert form["title"] == "Ý kiến thẩm định"
    with pytest.raises(Exception) as exc:  # the callee's form is enforced
        service.complete_task(ALL_ROLES, t["id"], {})
    assert "opinion" in str(exc.value.details)
    d = step(service, d, {"opinion": "Đủ điều kiện"})
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Return"] and d["status"] == "processed"
    d = step(service, d)
    assert d["status"] == "returned" and d["finished"]


def test_the_called_version_is_fixed_when_the_dossier_starts(service, db):
    early = service.start_dossier(receiver, "9.000401", APPLICANT)
    deploy_bytes(db, callee(title="Thẩm định (phiên bản 2)"), "sub.bpmn", {"sub_form.json": SUB_FORM}, actor="test")
    late = service.start_dossier(receiver, "9.000401", APPLICANT)
    # both reach the call after the deploy: each runs the version current when it started
    early = step(service, early)
    late = step(service, late)
    assert early["tasks"][0]["name"] == "Thẩm định (thủ tục con)"
    assert late["tasks"][0]["name"] == "Thẩm định (phiên bản 2)"
    with db.read() as s:
        details = {
            code: ev.details["called_versions"]
            for code, ev in s.execute(
                select(Dossier.code, Event)
                .join(Event, Event.dossier_id == Dossier.id)
                .where(Event.action == "dossier.received")
            ).all()
        }
    assert details[early["code"]] != details[late["code"]]
    # and the early dossier keeps its version across a restore from the database
    service.workflows.clear()
    early = step(service, early, {"opinion": "Đồng ý"})
    assert [t["spec_name"] for t in early["tasks"]] == ["Task_Return"]


def test_a_callee_that_is_not_deployed_is_refused_naming_the_call_activity(db):
    with pytest.raises(ProcedureInvalid) as exc:
        deploy_bytes(db, caller(called="9.999999"), "main.bpmn", actor="test")
    ((element, message),) = [(p["element"], p["message_en"]) for p in exc.value.details]
    assert element == "Call_Sub" and "'9.999999', which is not deployed" in message
    with pytest.raises(ProcedureInvalid) as exc:
        deploy_bytes(db, caller(called="9.000401"), "main.bpmn", actor="test")
    assert exc.value.details[0]["element"] == "Call_Sub" and "its own procedure" in exc.value.details[0]["message_en"]
    with pytest.raises(ProcedureInvalid) as exc:
        load_procedure(caller(called=""), "main.bpmn")
    assert any(p["element"] == "Call_Sub" for p in exc.value.details)


def test_with_deploy_in_a_session(db):
    with db.uow() as s:
        deploy(s, load_procedure(callee(), "sub.bpmn", {"sub_form.json": SUB_FORM}), "test")
        assert deploy(s, load_procedure(caller(), "main.bpmn"), "test").version == 1


def test_a_called_procedures_supplement_wait_is_the_dossiers(db, settings):
    """A wait drawn in the called procedure (docs/bpmn-conventions.md §9.4) pauses the calling dossier, is
    shown as its wait, and the desk's "supplement received" moves the called procedure on."""
    from engine.actions import LegalActions
    from engine.models import Task

    waiting_callee = (
        callee()
        .decode()
        .replace(
            '<bpmn:process id="sub_procedure"',
            '<bpmn:message id="M_Sup" name="supplement"/><bpmn:process id="sub_procedure"',
        )
        .replace(
            'targetRef="E"/>',
            'targetRef="W"/><bpmn:intermediateCatchEvent id="W" name="Chờ bổ sung hồ sơ">'
            '<bpmn:messageEventDefinition messageRef="M_Sup"/></bpmn:intermediateCatchEvent>'
            '<bpmn:sequenceFlow id="F3" sourceRef="W" targetRef="E"/>',
        )
        .encode()
    )
    deploy_bytes(db, waiting_callee, "sub.bpmn", {"sub_form.json": SUB_FORM}, actor="test")
    deploy_bytes(db, caller(), "main.bpmn", actor="test")
    service = DossierService(db, settings)
    d = service.start_dossier(receiver, "9.000401", APPLICANT)
    d = step(service, d)
    d = step(service, d, {"opinion": "Thiếu giấy tờ"})
    assert d["status"] == "supplement_requested" and d["paused"] and d["tasks"] == []
    with db.read() as s:
        assert s.execute(select(Task.spec_name, Task.state).where(Task.state == "waiting")).all() == [("W", "waiting")]
    d = LegalActions(service).supplement_received(receiver, d["code"], "Đã bổ sung")
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Return"] and not d["paused"]
