"""Inter-agency procedures (liên thông; docs/bpmn-conventions.md, "Inter-agency procedures"): a lane or a user
task names the agency whose staff do it, by code or by an expression over the dossier's data; that agency's
inbox gets the task, its due time is on that agency's calendar, and each hand-over is on the timeline.

A Decree 63/2024-like group received by a commune: birth registration by the commune of the child's
residence (an expression), then side by side (a parallel gateway) permanent residence by the commune police
(a code) and the health-insurance card by the provincial social insurance (a code on the task itself).
"""

from __future__ import annotations

import os
from datetime import datetime

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main as cli
from engine import agencies, queries
from engine.calendar import VN_TZ
from engine.dossiers import DossierService
from engine.errors import NotFound, ProcedureInvalid, WorkflowDataError
from engine.models import Event, Task
from engine.procedures import deploy_bytes
from engine.queries import list_tasks
from tests.helpers import staff

COMMUNE, POLICE, INSURANCE = "000.31.14.H56", "000.05.14.H56", "000.00.30.H56"
OTHER_COMMUNE = "000.07.15.H56"

GROUP = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="lien_thong" name="Lien thong khai sinh, thuong tru, BHYT" isExecutable="true">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="procedure_code" value="9.063024"/>
      <camunda:property name="deadline" value="10 working days"/>
    </camunda:properties></bpmn:extensionElements>
    <bpmn:laneSet>
      <bpmn:lane id="desk" name="Mot cua (receiver)"><bpmn:flowNodeRef>intake</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="justice" name="Tu phap xa (civil_status)">
        <bpmn:extensionElements><camunda:properties><camunda:property name="agency" value="child_commune"/></camunda:properties></bpmn:extensionElements>
        <bpmn:flowNodeRef>birth</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="police" name="Cong an xa (police_officer)">
        <bpmn:extensionElements><camunda:properties><camunda:property name="agency" value="000.05.14.H56"/></camunda:properties></bpmn:extensionElements>
        <bpmn:flowNodeRef>residence</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="bhxh" name="Bao hiem xa hoi (insurance_officer)"><bpmn:flowNodeRef>card</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="intake"/>
    <bpmn:userTask id="intake" name="Tiep nhan"/>
    <bpmn:sequenceFlow id="f2" sourceRef="intake" targetRef="birth"/>
    <bpmn:userTask id="birth" name="Dang ky khai sinh"><bpmn:extensionElements><camunda:properties>
      <camunda:property name="deadline" value="1 working day"/></camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="birth" targetRef="fork"/>
    <bpmn:parallelGateway id="fork"/>
    <bpmn:sequenceFlow id="f3a" sourceRef="fork" targetRef="residence"/>
    <bpmn:sequenceFlow id="f3b" sourceRef="fork" targetRef="card"/>
    <bpmn:userTask id="residence" name="Dang ky thuong tru"><bpmn:extensionElements><camunda:properties>
      <camunda:property name="deadline" value="1 working day"/></camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f4" sourceRef="residence" targetRef="join"/>
    <bpmn:userTask id="card" name="Cap the BHYT"><bpmn:extensionElements><camunda:properties>
      <camunda:property name="agency" value="000.00.30.H56"/>
      <camunda:property name="deadline" value="1 working day"/></camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:sequenceFlow id="f5" sourceRef="card" targetRef="join"/>
    <bpmn:parallelGateway id="join"/>
    <bpmn:sequenceFlow id="f6" sourceRef="join" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
"""

admin = staff({"admin"}, "000.00.00.H56", "quantri")
receiver = staff({"receiver"}, COMMUNE, "tiepnhan")
justice = staff({"civil_status"}, COMMUNE, "tuphap")
police = staff({"police_officer"}, POLICE, "congan")
insurance = staff({"insurance_officer"}, INSURANCE, "bhxh")
police_elsewhere = staff({"police_officer"}, COMMUNE, "congan_khac")


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def register(db):
    for code, name, days in (
        (COMMUNE, "UBND xã Diên An", []),
        (POLICE, "Công an xã Diên An", []),
        (INSURANCE, "Bảo hiểm xã hội tỉnh", [{"date": "2026-03-03", "working": False, "name": "Kiểm kê"}]),
    ):
        agencies.put_agency(db, admin, code, {"name": name, "days": days})


@pytest.fixture
def service(db, settings):
    register(db)
    deploy_bytes(db, GROUP, "lien_thong.bpmn")
    return DossierService(db, settings)


def inbox(service, actor) -> list[str]:
    with service.db.read() as s:
        return [t["spec_name"] for t in list_tasks(s, actor).items]


def test_an_unknown_agency_or_a_bad_expression_is_refused_at_deploy(db):
    with pytest.raises(ProcedureInvalid) as err:  # nothing registered yet
        deploy_bytes(db, GROUP, "lien_thong.bpmn")
    assert {p["element"] for p in err.value.details} == {"police", "card"}  # the lane, the task: where it is written
    assert "000.05.14.H56" in err.value.message_en and "not registered" in err.value.message_en
    bad = GROUP.replace(b'value="child_commune"', b'value="child_commune +"').replace(
        b'value="000.00.30.H56"', b'value="000.30.00.H56"'
    )
    with pytest.raises(ProcedureInvalid) as err:
        deploy_bytes(db, bad, "lien_thong.bpmn")
    assert {p["element"] for p in err.value.details} == {"justice", "card"}


def test_three_agencies_each_get_their_own_step(service, db):
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        d = service.start_dossier(receiver, "9.063024", {"name": "Nguyễn Văn An"}, data={"child_commune": COMMUNE})
    with time_machine.travel(vn(2026, 3, 2, 9, 15), tick=False):
        service.complete_task(receiver, d["tasks"][0]["id"], {})
    assert inbox(service, justice) == ["birth"] and inbox(service, police_elsewhere) == []

    with time_machine.travel(vn(2026, 3, 2, 10, 0), tick=False):
        birth = service.complete_task(justice, _task(db, d["code"], "birth").id, {})
    residence, card = _task(db, d["code"], "residence"), _task(db, d["code"], "card")
    assert residence.agency == POLICE and inbox(service, police) == ["residence"]
    assert inbox(service, justice) == [] and inbox(service, police_elsewhere) == []  # the commune's own police role
    with pytest.raises(NotFound):
        service.claim(receiver, residence.id)  # another agency's step does not exist for the commune's staff
    # both opened at once, each in its own agency's inbox, the dossier in process (4)
    assert sorted(t["spec_name"] for t in birth["tasks"]) == ["card", "residence"]
    assert birth["status"] == "in_process"
    assert card.agency == INSURANCE and inbox(service, insurance) == ["card"]
    # each on its own agency's calendar from the same moment: the police's Tuesday 10:00; the social
    # insurance takes Tuesday 03/03 off: Wednesday 04/03 10:00
    assert residence.due_at == vn(2026, 3, 3, 10, 0) and card.due_at == vn(2026, 3, 4, 10, 0)

    with time_machine.travel(vn(2026, 3, 2, 11, 0), tick=False):
        half = service.complete_task(police, residence.id, {})
    assert half["finished"] is False and half["status"] == "in_process"  # waits at the join for the card
    assert [t["spec_name"] for t in half["tasks"]] == ["card"] and inbox(service, police) == []
    with time_machine.travel(vn(2026, 3, 3, 15, 0), tick=False):
        done = service.complete_task(insurance, card.id, {})
    assert done["finished"] is True and done["status"] == "returned" and done["tasks"] == []

    with db.read() as s:
        handed = [
            (e.details["task"], e.details["from_agency"], e.details["to_agency"])
            for e in s.scalars(select(Event).where(Event.action == "step.handed_over").order_by(Event.id))
        ]
    assert sorted(handed) == [("card", COMMUNE, INSURANCE), ("residence", COMMUNE, POLICE)]  # both from the birth

    # The control slip: each step's agency, each hand-over, and each agency's share of the time on its own
    # calendar, each step its own time although the two ran together (the card: Mon 10:00-11:30 and
    # 13:30-17:00; Tuesday is the social insurance's day off).
    with db.read() as s:
        slip = queries.dossier_steps(s, admin, d["code"], service.runtimes, now=vn(2026, 3, 3, 16, 0))
    assert [(x["spec_name"], x["agency"], x["handed_over_from"], x["working_hours"]) for x in slip["steps"]] == [
        ("intake", COMMUNE, None, 0.25),
        ("birth", COMMUNE, None, 0.75),
        ("residence", POLICE, COMMUNE, 1.0),
        ("card", INSURANCE, COMMUNE, 5.0),
    ]
    # each agency's part of the 7 working hours in percent, by the name the agencies table gives it
    assert [(a["agency"], a["steps"], a["working_hours"], a["percent"]) for a in slip["agencies"]] == [
        (COMMUNE, 2, 1.0, 14.3),
        (POLICE, 1, 1.0, 14.3),
        (INSURANCE, 1, 5.0, 71.4),
    ]
    # the dossier's own time, on the commune's calendar: Mon 09:00-11:30, 13:30-17:00, Tue 07:00-11:30, 13:30-15:00
    assert slip["elapsed_working_hours"] == 12.0
    assert slip["agency"] == COMMUNE and slip["agency_name"] == slip["agencies"][0]["name"]
    assert all(a["name"] for a in slip["agencies"]) and all(x["agency_name"] for x in slip["steps"])


def test_an_expression_giving_no_registered_agency_stops_the_step_naming_it(service, db):
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        d = service.start_dossier(receiver, "9.063024", {"name": "A"}, data={"child_commune": OTHER_COMMUNE})
        with pytest.raises(WorkflowDataError) as err:
            service.complete_task(receiver, d["tasks"][0]["id"], {})
    assert err.value.details["element"] == "birth" and OTHER_COMMUNE in err.value.message_en
    assert inbox(service, receiver) == ["intake"]  # nothing changed: the intake is still open
    agencies.put_agency(service.db, admin, OTHER_COMMUNE, {"name": "UBND xã khác"})
    with time_machine.travel(vn(2026, 3, 2, 9, 30), tick=False):
        service.complete_task(receiver, d["tasks"][0]["id"], {})
    assert _task(db, d["code"], "birth").agency == OTHER_COMMUNE


def _task(db, code, spec) -> Task:
    with db.read() as s:
        t = s.scalars(select(Task).where(Task.dossier_code == code, Task.spec_name == spec)).one()
        s.expunge(t)
        return t


def test_cli_validate_judges_agencies_once_any_is_registered(tmp_path, empty_database):
    """`motcua validate` reads the configured database without creating or migrating it: with no agency
    registered (a fresh install) an agency code is a warning naming its element; once agencies are registered
    an unknown one is an error naming the lane or the task, as `motcua deploy` says
    (docs/bpmn-conventions.md, "Kiểm tra với cơ sở dữ liệu / Checks against the database")."""
    env = {**os.environ, "DATABASE_URL": empty_database, "MOTCUA_VAR": str(tmp_path / "var")}
    path = tmp_path / "lien_thong.bpmn"
    path.write_bytes(GROUP)
    runner = CliRunner()
    r = runner.invoke(cli, ["validate", str(path)], env=env)  # no tables at all
    assert r.exit_code == 0, r.output
    assert "⚠ [police]" in r.output and "⚠ [card]" in r.output and "1/1" in r.output
    assert "no agency is registered yet" in r.output

    csv = tmp_path / "co_quan.csv"
    csv.write_text(f"code,name,office_hours\n{COMMUNE},UBND xã,\n{POLICE},Công an xã,\n", encoding="utf-8")
    assert runner.invoke(cli, ["agencies", "import", str(csv)], env=env).exit_code == 0
    r = runner.invoke(cli, ["validate", str(path)], env=env)
    assert r.exit_code == 1, r.output
    assert "[card]" in r.output and INSURANCE in r.output and "not registered" in r.output
    assert "[police]" not in r.output and "0/1" in r.output
    r = runner.invoke(cli, ["deploy", str(path)], env=env)
    assert r.exit_code == 1 and "[card]" in r.output and "not registered" in r.output


def test_cli_validate_does_not_create_a_database(tmp_path):
    missing = tmp_path / "none.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{missing}", "MOTCUA_VAR": str(tmp_path / "var")}
    path = tmp_path / "lien_thong.bpmn"
    path.write_bytes(GROUP)
    r = CliRunner().invoke(cli, ["validate", str(path)], env=env)
    assert r.exit_code == 0 and "⚠ [police]" in r.output, r.output
    assert not missing.exists()


def test_side_by_side_the_step_furthest_behind_gives_the_status(service, db):
    """Two steps open at once that would give different statuses: the dossier shows the one furthest behind
    (an undeclared step counting as in_process), so it is 'processed' (9) only once nothing is in process."""
    declared = GROUP.replace(
        b'<camunda:property name="agency" value="000.00.30.H56"/>',
        b'<camunda:property name="agency" value="000.00.30.H56"/><camunda:property name="status" value="processed"/>',
    )
    deploy_bytes(db, declared, "lien_thong.bpmn")
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        d = service.start_dossier(receiver, "9.063024", {"name": "Nguyễn Văn An"}, data={"child_commune": COMMUNE})
        service.complete_task(receiver, d["tasks"][0]["id"], {})
        both = service.complete_task(justice, _task(db, d["code"], "birth").id, {})
        assert both["status"] == "in_process" and len(both["tasks"]) == 2
        one = service.complete_task(police, _task(db, d["code"], "residence").id, {})
    assert one["status"] == "processed" and [t["spec_name"] for t in one["tasks"]] == ["card"]
