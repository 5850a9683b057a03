"""Through the engine's service layer: every procedure in bpmn/ from deploy to its end, on every path."""

from __future__ import annotations

import zlib
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.dossiers import DossierService
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.models import Dossier, Event, Task, TaskRole, WorkflowState
from engine.procedures import deploy, load_path
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, fill_form, staff

PROCEDURES = {
    "birth_registration": "1.001193",
    "permanent_residence": "1.004222",
    "building_permit": "1.009994",
}
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}

# Paths every procedure must support: (choices per task element id, expected final status, expected task path)
PATHS = {
    "accepted": (
        {
            "Task_Intake": {"decision": "accept"},
            "Task_Appraisal": {"proposal": "approve", "site_inspection": "not_needed"},
            "Task_Approval": {"approval": "approve"},
        },
        "returned",
        ["Task_Intake", "Task_Appraisal", "Task_Approval", "Task_Return"],
    ),
    "refused_at_intake": (
        {"Task_Intake": {"decision": "refuse", "refusal_reason": "Thiếu giấy chứng sinh"}},
        "refused",
        ["Task_Intake"],
    ),
    "sent_back_then_approved": (
        {
            "Task_Intake": {"decision": "accept"},
            "Task_Appraisal": {"proposal": "approve", "site_inspection": "not_needed"},
            "Task_Approval": [{"approval": "send_back", "note": "Bổ sung ý kiến"}, {"approval": "approve"}],
        },
        "returned",
        ["Task_Intake", "Task_Appraisal", "Task_Approval", "Task_Appraisal", "Task_Approval", "Task_Return"],
    ),
    "refused_at_approval": (
        {
            "Task_Intake": {"decision": "accept"},
            "Task_Appraisal": {"proposal": "refuse", "site_inspection": "not_needed"},
            "Task_Approval": {"approval": "refuse", "note": "Không đủ điều kiện"},
        },
        "returned",  # a refusal after appraisal is a result handed back: 9 → 10, outcome refused (not 3)
        ["Task_Intake", "Task_Appraisal", "Task_Approval"],
    ),
}


@pytest.fixture
def service(db, settings):
    svc = DossierService(db, settings)
    for folder in PROCEDURES:
        loaded = load_path(BPMN_DIR / folder / f"{folder}.bpmn")
        with db.uow() as s:
            deploy(s, loaded, "test")
    return svc


receiver = staff({"receiver"}, name="tiepnhan")


@pytest.mark.parametrize("folder", list(PROCEDURES))
@pytest.mark.parametrize("path", list(PATHS))
def test_every_procedure_every_path(service, db, folder, path):
    choices, final, expected_path = PATHS[path]
    d = service.start_dossier(receiver, PROCEDURES[folder], APPLICANT, channel=1, data={})
    assert d["status"] == "received" and d["status_code"] == 2
    assert d["code"].startswith("H56.31.14-") and d["due_at"]
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"]
    assert d["tasks"][0]["roles"][0] == "receiver"
    d, taken = drive(service, d, choices)
    assert d["status"] == final
    assert d["status_code"] == {"returned": 10, "refused": 3}[final]
    assert d["finished"] and d["tasks"] == []
    assert taken == expected_path
    with db.read() as s:
        dossier = s.scalars(select(Dossier).where(Dossier.code == d["code"])).one()
        # every step left an audit event; no ready task rows or inbox role rows remain
        events = s.scalars(select(Event).where(Event.dossier_id == dossier.id).order_by(Event.id)).all()
        assert [e.action for e in events] == ["dossier.received"] + ["task.completed"] * len(taken)
        assert events[-1].to_status == final
        assert (
            s.scalar(select(func.count()).select_from(Task).where(Task.dossier_id == dossier.id, Task.state == "ready"))
            == 0
        )
        assert s.scalar(select(func.count()).select_from(TaskRole)) == 0


def test_building_permit_site_inspection_branch(service):
    d = service.start_dossier(receiver, "1.009994", APPLICANT, channel=2, data={})
    assert d["status"] == "new"  # online submissions start as status 1
    d, taken = drive(
        service,
        d,
        {
            "Task_Intake": {"decision": "accept"},
            "Task_Appraisal": {"proposal": "approve", "site_inspection": "needed"},
            "Task_Approval": {"approval": "approve"},
        },
    )
    assert d["status"] == "returned"
    assert "Task_Site_Inspection" in taken


def test_statuses_follow_the_steps(service):
    d = service.start_dossier(receiver, "1.004222", APPLICANT)
    seen = [d["status"]]
    choices = PATHS["accepted"][0]
    while d["tasks"]:
        t = d["tasks"][0]
        d = service.complete_task(
            ALL_ROLES, t["id"], fill_form(service.task_form(ALL_ROLES, t["id"]), choices.get(t["spec_name"], {}))
        )
        seen.append(d["status"])
    assert seen == ["received", "in_process", "in_process", "processed", "returned"]


def test_state_is_small_and_holds_no_spec(service, db):
    d = service.start_dossier(receiver, "1.004222", APPLICANT)
    d, _ = drive(service, d, PATHS["accepted"][0])
    with db.read() as s:
        blob = s.scalar(select(WorkflowState.state).join(Dossier).where(Dossier.code == d["code"]))
    assert len(blob) <= 6 * 1024
    text = zlib.decompress(blob).decode()
    assert '"spec"' not in text and "task_specs" not in text


def test_state_survives_a_new_process(service, db, settings):
    """A second service (another worker process) continues a dossier from the database alone."""
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    d = service.complete_task(
        ALL_ROLES,
        d["tasks"][0]["id"],
        fill_form(service.task_form(ALL_ROLES, d["tasks"][0]["id"]), {"decision": "accept"}),
    )
    other = DossierService(db, settings)
    d, taken = drive(other, other.get_dossier(ALL_ROLES, d["code"]), PATHS["accepted"][0])
    assert d["status"] == "returned" and taken[0] == "Task_Appraisal"


def test_form_rejects_bad_data_and_changes_nothing(service, db):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    tid = d["tasks"][0]["id"]
    with pytest.raises(InvalidInput) as exc:
        service.complete_task(receiver, tid, {"decision": "maybe"})
    assert exc.value.status == 422 and "decision" in str(exc.value.details)
    again = service.get_dossier(receiver, d["code"])
    assert again["version"] == d["version"] and again["tasks"][0]["id"] == tid


def test_roles_and_agencies_are_enforced(service):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    tid = d["tasks"][0]["id"]
    with pytest.raises(PermissionDenied):
        service.complete_task(staff({"chairman"}), tid, {"decision": "accept"})
    with pytest.raises(NotFound):  # another agency does not even see it
        service.complete_task(staff({"receiver"}, agency="000.99.99.H99"), tid, {"decision": "accept"})
    with pytest.raises(NotFound):
        service.get_dossier(staff({"receiver"}, agency="000.99.99.H99"), d["code"])
    with pytest.raises(PermissionDenied):
        service.start_dossier(staff({"chairman"}), "1.001193", APPLICANT)


def test_claimed_task_is_held(service):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    tid = d["tasks"][0]["id"]
    other = staff({"receiver"}, name="tiepnhan2")
    service.claim(receiver, tid)
    with pytest.raises(Conflict):
        service.claim(other, tid)
    with pytest.raises(Conflict):
        service.complete_task(other, tid, fill_form(service.task_form(other, tid), {"decision": "accept"}))
    service.unclaim(receiver, tid)
    service.claim(other, tid)


def test_completed_task_gives_conflict(service):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    tid = d["tasks"][0]["id"]
    data = fill_form(service.task_form(receiver, tid), {"decision": "accept"})
    service.complete_task(receiver, tid, data)
    with pytest.raises(Conflict):
        service.complete_task(receiver, tid, data)


def test_stale_version_gives_conflict(service):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    tid = d["tasks"][0]["id"]
    data = fill_form(service.task_form(receiver, tid), {"decision": "accept"})
    with pytest.raises(Conflict):
        service.complete_task(receiver, tid, data, expected_version=d["version"] + 5)
    service.complete_task(receiver, tid, data, expected_version=d["version"])


def test_admin_brings_over_a_past_dossier(service):
    from datetime import datetime

    admin = staff({"admin"}, name="admin")
    past = datetime(2026, 2, 13, 3, 0, tzinfo=UTC)  # Fri 13 Feb 2026 10:00 (UTC+7)
    d = service.start_dossier(admin, "1.004222", APPLICANT, received_at=past)
    # 7 working days = 56 h from Fri 13 Feb 10:00: 5 h that Friday, Tết (16–20 Feb) and weekends skipped,
    # 8 h each on 23, 24, 25, 26, 27 Feb and 2 Mar (48 h, 53 in all), 3 h on Tue 3 Mar → 10:00
    assert d["received_at"] == "2026-02-13T10:00:00+07:00"
    assert d["due_at"] == "2026-03-03T10:00:00+07:00"
    assert d["code"].startswith("H56.31.14-260213-")
    with pytest.raises(PermissionDenied):
        service.start_dossier(receiver, "1.004222", APPLICANT, received_at=past)


def test_bad_input_is_refused(service):
    with pytest.raises(NotFound):
        service.start_dossier(receiver, "0.000000", APPLICANT)
    with pytest.raises(InvalidInput):
        service.start_dossier(receiver, "1.001193", {"name": ""})
    with pytest.raises(InvalidInput):
        service.start_dossier(receiver, "1.001193", APPLICANT, channel=9)
    with pytest.raises(InvalidInput):
        service.start_dossier(receiver, "1.001193", APPLICANT, data={"x": float("nan")})
    with pytest.raises(InvalidInput):
        service.start_dossier(receiver, "1.001193", APPLICANT, data={"x": "a" * 300_000})


def test_running_dossiers_stay_on_their_version(service, db, tmp_path):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    src = (BPMN_DIR / "birth_registration" / "birth_registration.bpmn").read_text()
    changed = tmp_path / "birth_registration" / "birth_registration.bpmn"
    changed.parent.mkdir()
    for f in (BPMN_DIR / "birth_registration").glob("*.json"):
        (changed.parent / f.name).write_bytes(f.read_bytes())
    assert 'Đăng ký khai sinh"' in src
    changed.write_text(src.replace('Đăng ký khai sinh"', 'Đăng ký khai sinh (bản sửa)"', 1))
    with db.uow() as s:
        r = deploy(s, load_path(changed), "test")
    assert r.created and r.version == 2
    fresh = service.start_dossier(receiver, "1.001193", APPLICANT)
    with db.read() as s:
        versions = dict(s.execute(select(Dossier.code, Dossier.procedure_version_id)).all())
    assert versions[d["code"]] != versions[fresh["code"]]
    d, _ = drive(service, service.get_dossier(receiver, d["code"]), PATHS["accepted"][0])
    assert d["status"] == "returned"


def test_condition_reading_missing_data_is_a_clear_422_and_changes_nothing(db, settings):
    from engine.procedures import deploy_bytes

    bpmn = (Path(__file__).parent.parent / "bench" / "four_steps.bpmn").read_bytes()
    deploy_bytes(db, bpmn, "four_steps.bpmn")
    svc = DossierService(db, settings)
    actor = staff({"receiver", "specialist"})
    d = svc.start_dossier(actor, "9.000001", APPLICANT)
    with pytest.raises(InvalidInput) as exc:
        svc.complete_task(actor, d["tasks"][0]["id"], {})  # the gateway reads `decision`, which is missing
    assert exc.value.status == 422 and "decision" in exc.value.message_en
    again = svc.get_dossier(actor, d["code"])
    assert again["version"] == d["version"] and again["tasks"][0]["id"] == d["tasks"][0]["id"]
    assert svc.complete_task(actor, d["tasks"][0]["id"], {"decision": "accept"})["status"] == "in_process"
