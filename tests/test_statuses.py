"""Statuses as the national portal reads them, through the service layer (docs/bpmn-conventions.md,
"Trạng thái theo Cổng Dịch vụ công quốc gia / Statuses as the national portal reads them"): a refusal after
appraisal is a result (9 → 10, outcome refused), not a refusal at intake (3); the online path is 1 → 2 → 4;
camunda:assignee overrides the lane. Every change reaches the portal's outbox in order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.channels.config import NATIONAL_PORTAL
from engine.dossiers import DossierService
from engine.errors import PermissionDenied, ProcedureInvalid
from engine.models import Dossier, Event, Notification
from engine.procedures import deploy, deploy_bytes, form_files_beside, load_path, load_procedure
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, fill_form, staff

APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
receiver = staff({"receiver"}, name="tiepnhan")


@pytest.fixture
def service(db, settings):
    for folder in ("permanent_residence", "birth_registration"):
        with db.uow() as s:
            deploy(s, load_path(BPMN_DIR / folder / f"{folder}.bpmn"), "test")
    return DossierService(db, settings)


def portal_codes(db, code: str) -> list[int]:
    with db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == code)).one()
        rows = s.scalars(
            select(Notification.payload)
            .where(Notification.dossier_id == d.id, Notification.channel == NATIONAL_PORTAL)
            .order_by(Notification.sequence)
        ).all()
    return [payload["status_code"] for payload in rows]


def test_a_refusal_after_appraisal_is_a_result_not_a_refusal_at_intake(service, db):
    d = service.start_dossier(receiver, "1.004222", APPLICANT, channel=1)
    d, _ = drive(
        service,
        d,
        {
            "Task_Intake": {"decision": "accept"},
            "Task_Appraisal": {"proposal": "refuse"},
            "Task_Approval": {"approval": "refuse", "note": "Chỗ ở không hợp pháp"},
        },
    )
    assert (d["status"], d["status_code"], d["finished"]) == ("returned", 10, True)
    assert portal_codes(db, d["code"]) == [2, 4, 9, 10]
    with db.read() as s:
        details, before, after = s.execute(
            select(Event.details, Event.from_status, Event.to_status)
            .where(Event.action == "task.completed")
            .order_by(Event.id.desc())
            .limit(1)
        ).one()
    assert details["outcome"] == "refused" and (before, after) == ("in_process", "returned")
    # refused at intake stays 3
    d = service.start_dossier(receiver, "1.004222", APPLICANT, channel=1)
    d, _ = drive(service, d, {"Task_Intake": {"decision": "refuse", "refusal_reason": "Thiếu tờ khai CT01"}})
    assert (d["status"], d["status_code"]) == ("refused", 3)
    assert portal_codes(db, d["code"]) == [2, 3]


def test_the_online_path_is_1_then_2_then_4(service, db):
    d = service.start_dossier(receiver, "1.001193", APPLICANT, channel=2)
    assert (d["status"], d["status_code"]) == ("new", 1)
    d = service.complete_task(
        ALL_ROLES,
        d["tasks"][0]["id"],
        fill_form(service.task_form(ALL_ROLES, d["tasks"][0]["id"]), {"decision": "accept"}),
    )
    assert (d["status"], d["status_code"]) == ("in_process", 4)
    assert portal_codes(db, d["code"]) == [1, 2, 4]
    with db.read() as s:
        steps = [
            (e.action, e.from_status, e.to_status)
            for e in s.scalars(select(Event).join(Dossier).where(Dossier.code == d["code"]).order_by(Event.id))
        ]
    assert steps == [
        ("dossier.received", None, "new"),
        ("dossier.accepted", "new", "received"),
        ("task.completed", "received", "in_process"),
    ]


def assigned(assignee: str) -> bytes:
    bpmn = (BPMN_DIR / "birth_registration" / "birth_registration.bpmn").read_bytes()
    return bpmn.replace(
        b'<bpmn:userTask id="Task_Appraisal"',
        f'<bpmn:userTask id="Task_Appraisal" camunda:assignee="{assignee}"'.encode(),
    )


def forms():
    return form_files_beside(BPMN_DIR / "birth_registration" / "birth_registration.bpmn")


def test_an_assignee_overrides_the_lane(db, settings):
    loaded = load_procedure(assigned("canbo2"), "birth_registration.bpmn", forms())
    ut = {t["id"]: t for t in loaded.user_tasks}["Task_Appraisal"]
    assert ut["assignee"] == "canbo2" and ut["roles"] == []
    deploy_bytes(db, assigned("canbo2"), "birth_registration.bpmn", forms(), actor="test")
    service = DossierService(db, settings)
    d = service.start_dossier(receiver, "1.001193", APPLICANT, channel=1)
    form = fill_form(service.task_form(ALL_ROLES, d["tasks"][0]["id"]), {"decision": "accept"})
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], form)
    (t,) = d["tasks"]
    assert t["spec_name"] == "Task_Appraisal" and t["assignee"] == "canbo2" and t["roles"] == []
    lane_holder = staff({"civil_status", "receiver"}, name="canbo")
    with pytest.raises(PermissionDenied):
        service.claim(lane_holder, t["id"])
    assert service.claim(staff({"civil_status"}, name="canbo2"), t["id"])["claimed_by"] == "canbo2"


@pytest.mark.parametrize("bad", ["${initiator}", "#{user}", "a b"])
def test_an_assignee_that_is_not_a_username_is_refused(bad):
    with pytest.raises(ProcedureInvalid) as exc:
        load_procedure(assigned(bad), "birth_registration.bpmn", forms())
    assert [p["element"] for p in exc.value.details] == ["Task_Appraisal"]
    assert "must be an officer's username" in exc.value.details[0]["message_en"]
