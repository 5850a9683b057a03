"""Over HTTP: every due time on the calendar of the agency that does the work (docs/deadlines.md, "Agencies
and their calendars"). The district takes Tuesday 03/03/2026 off; its commune overrides it (a working day
there); the commune police says nothing, so it follows the district. A dossier received by the commune is
due on the commune's calendar; the police's step, and the `working_days(1)` timer attached to it, on the
police's: both skip the Tuesday the commune works."""

from __future__ import annotations

import io
from datetime import datetime

import time_machine

from engine.calendar import VN_TZ
from engine.models import User
from engine.scheduler import fire_due

from .helpers import AGENCY, Client

COMMUNE, POLICE, DISTRICT = AGENCY, "000.05.14.H56", "000.00.14.H56"

PROCEDURE = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="residence_watch" isExecutable="true">
    <bpmn:extensionElements><camunda:properties>
      <camunda:property name="procedure_code" value="9.063101"/>
      <camunda:property name="procedure_name" value="Đăng ký thường trú (liên thông)"/>
      <camunda:property name="agency" value="{COMMUNE}"/>
      <camunda:property name="deadline" value="3 working days"/>
    </camunda:properties></bpmn:extensionElements>
    <bpmn:laneSet>
      <bpmn:lane id="desk" name="Một cửa (receiver)"><bpmn:flowNodeRef>intake</bpmn:flowNodeRef></bpmn:lane>
      <bpmn:lane id="police" name="Công an xã (police_officer)">
        <bpmn:extensionElements><camunda:properties><camunda:property name="agency" value="{POLICE}"/></camunda:properties></bpmn:extensionElements>
        <bpmn:flowNodeRef>residence</bpmn:flowNodeRef></bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="intake"/>
    <bpmn:userTask id="intake" name="Tiếp nhận"/>
    <bpmn:sequenceFlow id="f2" sourceRef="intake" targetRef="residence"/>
    <bpmn:userTask id="residence" name="Đăng ký thường trú"><bpmn:extensionElements><camunda:properties>
      <camunda:property name="deadline" value="8 working hours"/></camunda:properties></bpmn:extensionElements></bpmn:userTask>
    <bpmn:boundaryEvent id="remind" name="Nhắc công an" cancelActivity="false" attachedToRef="residence">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">working_days(1)</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="remind" targetRef="reminded"/>
    <bpmn:endEvent id="reminded" name="Nhắc hạn"/>
    <bpmn:sequenceFlow id="f4" sourceRef="residence" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>
""".encode()


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def _timers_fired(client, code) -> list:
    timeline = client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()["timeline"]
    return [t for e in timeline if e["action"] == "timer.fired" for t in e["details"]["timers"]]


def _residence_opened(app, client, password_hash, district_days_off=("2026-03-03",)) -> dict:
    """Agencies and the procedure set up; a dossier received Monday 02/03/2026 09:00 whose intake is done at
    10:00, so that the police's step (and its timer) is open. Returns the dossier as received."""
    svc = app.extensions["motcua"]
    off = [{"date": day, "name": "Lễ hội địa phương", "working": False} for day in district_days_off]
    for code, name, days in (
        (DISTRICT, "UBND huyện", off),
        (COMMUNE, "UBND xã", [{**day, "working": True} for day in off]),  # the commune works those days
        (POLICE, "Công an xã", []),  # follows its district
    ):
        r = client.raw.put(
            f"/api/v1/agencies/{code}", json={"name": name, "days": days}, headers=client.headers("admin")
        )
        assert r.status_code in (200, 201), r.get_json()
    r = client.post(
        "/api/v1/procedures",
        "admin",
        data={"file": (io.BytesIO(PROCEDURE), "residence_watch.bpmn")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    with svc.db.uow() as s:
        s.add(User(username="congan", password_hash=password_hash, roles=["police_officer"], agency=POLICE))

    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        c = Client(app)  # tokens issued at the travelled time
        body = {"procedure_code": "9.063101", "applicant": {"name": "Nguyễn Văn An"}, "channel": 1}
        r = c.post("/api/v1/dossiers", "tiepnhan", json=body)
        assert r.status_code == 201, r.get_json()
        d = r.get_json()
    with time_machine.travel(vn(2026, 3, 2, 10, 0), tick=False):
        r = Client(app).post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "tiepnhan", json={"data": {}})
        assert r.status_code == 200, r.get_json()
    return d


def _police_step(app) -> list:
    step = Client(app).get("/api/v1/tasks", "congan").get_json()["items"]
    return [(t["spec_name"], t["agency"], t["due_at"]) for t in step]


def test_due_times_and_timers_count_on_the_performing_agencys_calendar(app, client, password_hash):
    svc = app.extensions["motcua"]
    d = _residence_opened(app, client, password_hash)
    # 3 working days on the commune's calendar, which works Tuesday: Thursday 05/03 09:00 (not Friday)
    assert d["due_at"] == "2026-03-05T09:00:00+07:00"
    with time_machine.travel(vn(2026, 3, 2, 10, 0), tick=False):
        step = _police_step(app)
    # the police's step, 1 working day from Monday 10:00 on the police's calendar (Tuesday off): Wednesday
    assert step == [("residence", POLICE, "2026-03-04T10:00:00+07:00")]

    with time_machine.travel(vn(2026, 3, 3, 10, 30), tick=False):  # due on the commune's calendar: not yet
        fire_due(svc.db, svc.dossiers)
        assert _timers_fired(Client(app), d["code"]) == []
    with time_machine.travel(vn(2026, 3, 4, 10, 30), tick=False):
        fire_due(svc.db, svc.dossiers)
        fired = _timers_fired(Client(app), d["code"])
    assert [(t["timer"], t["due_at"]) for t in fired] == [("Nhắc công an", "2026-03-04T10:00:00+07:00")]


def test_the_supplement_pause_moves_a_timer_on_its_agencys_calendar(app, client, password_hash):
    """Paused 8 working hours (Monday 11:00 to Tuesday 11:00 at the commune, which works Tuesday): the police's
    step and its timer, due Wednesday 04/03 10:00, move 8 working hours on the police's calendar, which takes
    Thursday 05/03 off too: Friday 06/03 10:00 (on the commune's calendar it would be Thursday 10:00)."""
    svc = app.extensions["motcua"]
    d = _residence_opened(app, client, password_hash, district_days_off=("2026-03-03", "2026-03-05"))
    for at, action, body in (
        (vn(2026, 3, 2, 11, 0), "supplement-request", {"reason": "Thiếu giấy tờ", "documents": ["Bản sao CCCD"]}),
        (vn(2026, 3, 3, 11, 0), "supplement-received", {"note": "Đã nhận đủ"}),
    ):
        with time_machine.travel(at, tick=False):
            r = Client(app).post(f"/api/v1/dossiers/{d['code']}/{action}", "tiepnhan", json=body)
            assert r.status_code == 200, r.get_json()
    with time_machine.travel(vn(2026, 3, 3, 11, 0), tick=False):
        assert _police_step(app) == [("residence", POLICE, "2026-03-06T10:00:00+07:00")]
    with time_machine.travel(vn(2026, 3, 5, 10, 30), tick=False):
        fire_due(svc.db, svc.dossiers)
        assert _timers_fired(Client(app), d["code"]) == []
    with time_machine.travel(vn(2026, 3, 6, 10, 30), tick=False):
        fire_due(svc.db, svc.dossiers)
        fired = _timers_fired(Client(app), d["code"])
    assert [(t["timer"], t["due_at"]) for t in fired] == [("Nhắc công an", "2026-03-06T10:00:00+07:00")]
