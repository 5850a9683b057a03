"""Connectors through the service layer: a service task names a configured connector; the dossier waits
there while the worker calls the endpoint (a fake population register on 127.0.0.1) outside the step's
transaction, then completes the step; a failure after the retries is an incident, never a lost step
(docs/bpmn-conventions.md, "Bước dịch vụ / Connectors")."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from engine import connectors
from engine.dossiers import DossierService
from engine.errors import Conflict, NotFound, ProcedureInvalid
from engine.models import ConnectorCall, Dossier, Event
from engine.procedures import deploy_bytes, form_files_beside, load_procedure
from engine.worker import Worker
from tests.fake_register import FakeRegister
from tests.helpers import ALL_ROLES, staff

ROOT = Path(__file__).resolve().parents[1]
ID_CHECK = ROOT / "tests" / "data" / "connectors" / "id_check.bpmn"
FORMS = form_files_beside(ROOT / "tests" / "data" / "online" / "online_fee.bpmn")
APPLICANT = {"name": "Trần Văn Bình", "id_number": "001099001234", "phone": "0987654321"}
ACCEPT = {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}
receiver = staff({"receiver"}, name="tiepnhan")


def configure(monkeypatch, url: str, timeout: float = 1.0, retries: int = 1, **more) -> None:
    config = {
        "population_register": {
            "urls": [url],
            "path": "/citizens/verify",
            "timeout": timeout,
            "retries": retries,
            **more,
        }
    }
    monkeypatch.setenv(connectors.CONFIG_ENV, json.dumps(config))


@pytest.fixture
def register(monkeypatch):
    r = FakeRegister().start()
    configure(monkeypatch, r.url)
    yield r
    r.stop()


@pytest.fixture
def service(db, settings, register):
    deploy_bytes(db, ID_CHECK.read_bytes(), ID_CHECK.name, FORMS, actor="test")
    return DossierService(db, settings)


def calls(db):
    with db.read() as s:
        return s.execute(select(ConnectorCall.element_id, ConnectorCall.state, ConnectorCall.attempts)).all()


def actions(db, code):
    with db.read() as s:
        q = select(Event.action).join(Dossier, Dossier.id == Event.dossier_id).where(Dossier.code == code)
        return s.execute(q.order_by(Event.id)).scalars().all()


def test_deploy_reads_the_service_task_and_refuses_unknown_connectors_and_urls(monkeypatch, register):
    loaded = load_procedure(ID_CHECK.read_bytes(), ID_CHECK.name, FORMS)
    assert loaded.meta["service_tasks"] == {
        "Service_CheckId": {
            "connector": "population_register",
            "url": register.url,
            "inputs": {"id_number": "applicant.id_number", "full_name": "applicant.name"},
            "outputs": {"id_verified": "match", "registered_address": "address"},
        }
    }
    unknown = ID_CHECK.read_bytes().replace(b'value="population_register"', b'value="tax_office"')
    with pytest.raises(ProcedureInvalid) as err:
        load_procedure(unknown, ID_CHECK.name, FORMS)
    assert [(p["element"], p["message_en"]) for p in err.value.details] == [
        ("Service_CheckId", "service task 'Service_CheckId': connector 'tax_office' is not configured")
    ]
    off_list = ID_CHECK.read_bytes().replace(
        b'<camunda:property name="connector" value="population_register"/>',
        b'<camunda:property name="connector" value="population_register"/>'
        b'<camunda:property name="url" value="http://evil.example"/>',
    )
    with pytest.raises(ProcedureInvalid) as err:
        load_procedure(off_list, ID_CHECK.name, FORMS)
    (problem,) = err.value.details
    assert problem["element"] == "Service_CheckId" and "allow-list" in problem["message_en"]
    monkeypatch.setenv(connectors.CONFIG_ENV, "{not json")  # a broken configuration: refused, saying why
    with pytest.raises(ProcedureInvalid) as err:
        load_procedure(ID_CHECK.read_bytes(), ID_CHECK.name, FORMS)
    assert any("MOTCUA_CONNECTORS" in p["message_en"] for p in err.value.details)
    monkeypatch.delenv(connectors.CONFIG_ENV)  # nothing configured: every connector is unknown
    with pytest.raises(ProcedureInvalid):
        load_procedure(ID_CHECK.read_bytes(), ID_CHECK.name, FORMS)


def test_the_worker_calls_the_register_and_the_dossier_moves_on(service, db, register):
    d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    assert d["tasks"] == []  # it waits at the service task; nobody's inbox
    assert calls(db) == [("Service_CheckId", "pending", 0)]
    assert register.requests == []  # the step's transaction made no call
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    assert register.requests == [{"id_number": "001099001234", "full_name": "Trần Văn Bình"}]
    d = service.get_dossier(ALL_ROLES, d["code"])
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"]
    assert d["data"]["id_verified"] is True and d["data"]["registered_address"].startswith("Phường Bến Nghé")
    assert calls(db) == [("Service_CheckId", "done", 1)]
    assert "connector_called" in actions(db, d["code"])
    assert connectors.run_due(service) == {"done": 0, "incidents": 0}  # once: nothing is called twice
    assert len(register.requests) == 1
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], ACCEPT)
    assert d["finished"]


def test_a_register_that_answers_500_becomes_an_incident_an_officer_retries(service, db, register):
    register.mode = "error"
    d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    assert connectors.run_due(service) == {"done": 0, "incidents": 1}
    assert len(register.requests) == 2  # the first try and one retry (the connector's `retries`)
    (incident,) = connectors.incidents(db, ALL_ROLES, d["code"])
    assert incident["state"] == "incident" and incident["error"].startswith("HTTP 500")
    assert connectors.run_due(service) == {"done": 0, "incidents": 0}  # an incident waits for an officer
    other_agency = staff({"receiver"}, agency="000.31.99.H56", name="khac")
    with pytest.raises(NotFound):
        connectors.retry_incident(db, other_agency, d["code"], incident["id"])
    register.mode = "ok"
    assert connectors.retry_incident(db, receiver, d["code"], incident["id"])["state"] == "pending"
    with pytest.raises(Conflict):
        connectors.retry_incident(db, receiver, d["code"], incident["id"])  # already asked for
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    d = service.get_dossier(ALL_ROLES, d["code"])
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"] and d["data"]["id_verified"] is True
    assert connectors.incidents(db, ALL_ROLES, d["code"]) == []
    history = actions(db, d["code"])
    assert history.index("connector_incident") < history.index("connector_retry") < history.index("connector_called")


def test_a_slow_register_times_out_into_an_incident(service, db, register, monkeypatch):
    configure(monkeypatch, register.url, timeout=0.3, retries=0)
    register.mode, register.delay = "slow", 1.5
    d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    assert connectors.run_due(service) == {"done": 0, "incidents": 1}
    (incident,) = connectors.incidents(db, ALL_ROLES, d["code"])
    assert "Timeout" in incident["error"]
    assert service.get_dossier(ALL_ROLES, d["code"])["tasks"] == []  # still at the service task, not lost


def test_the_worker_sweep_makes_the_calls(service, db, settings, register):
    w = Worker(settings, db=db, service=service, name=f"motcua-test-{uuid.uuid4().hex[:8]}")
    try:
        d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data={"purpose": "Xin việc"})
        out = w.sweep()  # what the periodic task runs
        assert (out["connector_calls"], out["connector_incidents"]) == (1, 0)
        assert [t["spec_name"] for t in service.get_dossier(ALL_ROLES, d["code"])["tasks"]] == ["Task_Intake"]
    finally:
        w.huey.storage.flush_all()


def test_every_try_of_a_call_sends_the_same_idempotency_key(service, db, register):
    """Its retries and an officer's retry send one key (the dossier's code, the element, the call's id), so the
    register can answer a repeated request without doing the work twice (docs/bpmn-conventions.md 9.6)."""
    register.mode = "error"
    d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    assert connectors.run_due(service) == {"done": 0, "incidents": 1}
    (incident,) = connectors.incidents(db, ALL_ROLES, d["code"])
    key = f"{d['code']}/Service_CheckId/{incident['id']}"
    assert register.keys == [key, key]
    register.mode = "ok"
    connectors.retry_incident(db, receiver, d["code"], incident["id"])
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    assert register.keys == [key, key, key]


@pytest.mark.parametrize("mode", ["slow", "drip"])
def test_a_slow_register_holds_the_worker_no_longer_than_the_budget(service, db, register, monkeypatch, mode):
    """`budget` bounds the whole call, its retries and waits included: a register that never answers in time
    (slow), or drips its answer a byte at a time so that no single read times out (drip), holds the worker
    about `budget` seconds, then the call is an incident saying so."""
    configure(monkeypatch, register.url, timeout=0.5, retries=5, budget=1.2)
    register.mode, register.delay = mode, (1.5 if mode == "slow" else 0.05)
    d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    t0 = time.monotonic()
    assert connectors.run_due(service) == {"done": 0, "incidents": 1}
    took = time.monotonic() - t0
    assert took < 1.2 + 0.6, took  # without the budget: 6 tries of 0.5 s and the waits, 5 s and more
    (incident,) = connectors.incidents(db, ALL_ROLES, d["code"])
    assert "budget" in incident["error"], incident
    assert len(register.requests) <= 3
    assert service.get_dossier(ALL_ROLES, d["code"])["tasks"] == []  # still at the service task, not lost


def test_a_budget_or_timeout_out_of_bounds_is_a_configuration_error(monkeypatch):
    for bad in ({"budget": 0}, {"budget": 1000}, {"timeout": -1}):
        configure(monkeypatch, "http://127.0.0.1:9", **bad)
        with pytest.raises(connectors.ConfigError):
            connectors.configured()


CALLER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="d" targetNamespace="t">
  <bpmn:process id="caller" isExecutable="true">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="procedure_code" value="9.000602"/>
      <camunda:property name="procedure_name" value="Thủ tục gọi thủ tục có bước dịch vụ"/>
      <camunda:property name="agency" value="000.31.14.H56"/>
      <camunda:property name="deadline" value="7 working days"/>
    </camunda:properties></bpmn:extensionElements>
    <bpmn:startEvent id="S"/>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Call_IdCheck"/>
    <bpmn:callActivity id="Call_IdCheck" name="Đối chiếu và tiếp nhận" calledElement="9.000601"/>
    <bpmn:sequenceFlow id="F2" sourceRef="Call_IdCheck" targetRef="E"/>
    <bpmn:endEvent id="E"/>
  </bpmn:process>
</bpmn:definitions>
""".encode()


def test_a_service_task_of_a_called_procedure_is_called_too(service, db, register):
    """A procedure calling one with a service task (docs/bpmn-conventions.md 9.3, 9.6): the dossier waits at the
    callee's service task, the worker calls its connector with the callee's mapping, and the callee's next
    step opens; before, nobody called it and the dossier waited for ever."""
    deploy_bytes(db, CALLER, "caller.bpmn", actor="test")
    d = service.start_dossier(receiver, "9.000602", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    assert d["tasks"] == []
    ((element, state, _),) = calls(db)
    assert element.startswith("Service_CheckId@") and state == "pending"  # the callee's, by its version
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    assert register.requests == [{"id_number": "001099001234", "full_name": "Trần Văn Bình"}]
    assert connectors.incidents(db, ALL_ROLES, d["code"]) == []  # done: no open call left
    d = service.get_dossier(ALL_ROLES, d["code"])
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"] and d["data"]["id_verified"] is True
    assert register.keys == [f"{d['code']}/Service_CheckId/{register_call_id(db)}"]
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], ACCEPT)
    assert d["finished"]


def register_call_id(db) -> str:
    with db.read() as s:
        return s.execute(select(ConnectorCall.id)).scalar_one()


def test_a_step_after_the_call_given_to_no_registered_agency_is_an_incident(service, db, register):
    """The step after a service task names its agency by an expression (docs/bpmn-conventions.md 9.5) that gives
    no registered agency: nobody's request can be refused, so the call's outcome is an incident naming the
    step, the dossier stays at the service task, and once the agency is registered an officer's retry moves it."""
    from engine import agencies

    by_commune = ID_CHECK.read_bytes().replace(
        b'camunda:formKey="intake.json"/>',
        b'camunda:formKey="intake.json"><bpmn:extensionElements><camunda:properties>'
        b'<camunda:property name="agency" value="child_commune"/></camunda:properties></bpmn:extensionElements>'
        b"</bpmn:userTask>",
    )
    assert by_commune != ID_CHECK.read_bytes()
    deploy_bytes(db, by_commune, ID_CHECK.name, FORMS, actor="test")
    elsewhere = "000.07.15.H56"
    data = {"purpose": "Xin việc", "child_commune": elsewhere}
    d = service.start_dossier(receiver, "9.000601", APPLICANT, channel=1, data=data)
    assert connectors.run_due(service) == {"done": 0, "incidents": 1}
    (incident,) = connectors.incidents(db, ALL_ROLES, d["code"])
    assert "Task_Intake" in incident["error"] and elsewhere in incident["error"], incident
    assert service.get_dossier(ALL_ROLES, d["code"])["tasks"] == []  # not lost: still at the service task
    agencies.put_agency(db, staff({"admin"}, name="quantri"), elsewhere, {"name": "UBND xã khác"})
    connectors.retry_incident(db, receiver, d["code"], incident["id"])
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    (task,) = service.get_dossier(ALL_ROLES, d["code"])["tasks"]
    assert (task["spec_name"], task["agency"]) == ("Task_Intake", elsewhere)
