"""Waits made visible through the service layer: a `supplement` message catch event pauses the dossier's
clock with status 5 and is counted on the diagram; the desk's "supplement received" delivers the message
by the dossier's code (docs/bpmn-conventions.md, "Sự kiện chờ / Waits")."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine import queries
from engine.actions import LegalActions
from engine.dossiers import DossierService
from engine.models import Task
from engine.procedures import deploy_bytes, form_files_beside, load_procedure
from tests.helpers import ALL_ROLES, staff

ROOT = Path(__file__).resolve().parents[1]
WAITS = ROOT / "tests" / "data" / "waits" / "waits.bpmn"
FORMS = form_files_beside(ROOT / "tests" / "data" / "online" / "online_fee.bpmn")
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
receiver = staff({"receiver"}, name="tiepnhan")
ACCEPT = {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}


@pytest.fixture
def service(db, settings):
    free = WAITS.read_bytes().replace(b'name="fee" value="15000"', b'name="fee" value="0"')
    deploy_bytes(db, free, WAITS.name, FORMS, actor="test")  # no fee: the payment wait is passed at once
    return DossierService(db, settings)


def waiting_rows(db):
    with db.read() as s:
        return s.execute(select(Task.spec_name, Task.roles).where(Task.state == "waiting")).all()


def test_deploy_records_the_waits():
    loaded = load_procedure(WAITS.read_bytes(), WAITS.name, FORMS)
    assert loaded.meta["waits"] == {"Event_Payment": "payment", "Event_Supplement": "supplement"}


def test_a_supplement_wait_pauses_and_the_desk_action_resumes_it(service, db):
    d = service.start_dossier(receiver, "9.000501", APPLICANT, channel=1, data={"purpose": "Xin việc"})
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], ACCEPT)
    assert d["status"] == "in_process" and [t["spec_name"] for t in d["tasks"]] == ["Task_Appraisal"]
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {"proposal": "supplement"})
    assert d["status"] == "supplement_requested" and d["paused"] and d["supplement_count"] == 1
    assert waiting_rows(db) == [("Event_Supplement", [])]
    with db.read() as s:
        counts = queries.step_counts(s, ALL_ROLES, "9.000501")["counts"]
    assert counts == {"Event_Supplement": {"ready": 0, "overdue": 0, "claimed": 0, "waiting": 1}}
    with db.read() as s:
        slip = queries.dossier_steps(s, ALL_ROLES, d["code"], service.runtimes)
    # the wait is on the control slip, but it is the applicant's time: no agency's share, no hand-over
    assert [(st["spec_name"], st["state"]) for st in slip["steps"]][-1] == ("Event_Supplement", "waiting")
    assert [a["steps"] for a in slip["agencies"]] == [2] and slip["steps"][-1]["handed_over_from"] is None
    d = LegalActions(service).supplement_received(receiver, d["code"], "Đủ giấy tờ")
    assert d["status"] == "in_process" and not d["paused"]
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Appraisal"]
    assert waiting_rows(db) == []
    # a second round trip counts again (the second request is the late one, docs/deadlines.md)
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {"proposal": "supplement"})
    assert d["supplement_count"] == 2
