"""Migrating running dossiers to another version of their procedure (engine/migration.py), through the
service layer and `motcua migrate`, on the library's birth registration: dossiers at each step, a version
without the chairman's signature (a step removed), a version with a second check (a step added)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import func, select

from cli.main import main as cli
from engine.actions import LegalActions
from engine.db import Database
from engine.dossiers import DossierService
from engine.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from engine.migrate import upgrade
from engine.migration import migrate_page
from engine.models import Dossier, Event, Task
from engine.monitor import overdue_counts
from engine.procedures import deploy, load_path
from engine.queries import list_tasks
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, staff
from tests.test_deadlines import at, vn

CODE = "1.001193"
SOURCE = BPMN_DIR / "birth_registration"
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
CHOICES = {
    "Task_Intake": {"decision": "accept"},
    "Task_Appraisal": {"proposal": "approve"},
    "Task_Approval": {"approval": "approve"},
}
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI", "camunda": CAMUNDA}
ADMIN = staff({"admin"}, name="quantri")
receiver = staff({"receiver"}, name="tiepnhan")


def _variant(tmp_path: Path, name: str, change) -> Path:
    """A copy of birth registration with its forms, the diagram changed by `change(root)`."""
    folder = tmp_path / name
    folder.mkdir()
    for f in SOURCE.glob("*.json"):
        (folder / f.name).write_bytes(f.read_bytes())
    form = json.loads((SOURCE / "appraisal.json").read_text(encoding="utf-8"))
    form["title"] = "Thẩm định hồ sơ khai sinh (chuyên viên)"
    (folder / "appraisal_specialist.json").write_text(json.dumps(form, ensure_ascii=False), encoding="utf-8")
    tree = etree.parse(str(SOURCE / "birth_registration.bpmn"))
    change(tree.getroot())
    out = folder / "birth_registration.bpmn"
    tree.write(str(out), xml_declaration=True, encoding="UTF-8")
    return out


def _drop(root, *ids) -> None:
    for el in root.iter():
        if el.get("id") in ids or el.get("bpmnElement") in ids or (el.text or "").strip() in ids:
            if el.tag in (f"{{{BPMN}}}incoming", f"{{{BPMN}}}outgoing", f"{{{BPMN}}}flowNodeRef") or el.get("id"):
                el.getparent().remove(el)


def without_approval(root) -> None:
    """Appraisal goes straight to the return of the result: the chairman's step and its gateway are gone."""
    _drop(
        root,
        "Task_Approval",
        "Gateway_Approval",
        "End_Refused_Approval",
        "Flow_Approval_Decision",
        "Flow_Approval_Approve",
        "Flow_Approval_Refuse",
        "Flow_Approval_SendBack",
        "Lane_Chairman",
    )
    flow = root.find(".//bpmn:sequenceFlow[@id='Flow_Appraisal_Approval']", NS)
    flow.set("targetRef", "Task_Return")


def with_second_check(root) -> None:
    """A second check by the civil-status officer between appraisal and the chairman's signature."""
    process = root.find("bpmn:process", NS)
    task = etree.SubElement(process, f"{{{BPMN}}}userTask", id="Task_Check", name="Kiểm tra lại hồ sơ")
    task.set("{http://camunda.org/schema/1.0/bpmn}formKey", "appraisal.json")
    lane = root.find(".//bpmn:lane[@id='Lane_CivilStatus']", NS)
    etree.SubElement(lane, f"{{{BPMN}}}flowNodeRef").text = "Task_Check"
    root.find(".//bpmn:sequenceFlow[@id='Flow_Appraisal_Approval']", NS).set("targetRef", "Task_Check")
    etree.SubElement(
        process, f"{{{BPMN}}}sequenceFlow", id="Flow_Check_Approval", sourceRef="Task_Check", targetRef="Task_Approval"
    )


def appraisal_by_specialist(root) -> None:
    """The appraisal moves from the civil-status officer to a specialist of the justice office: a lane of its
    own, a new name, a form of its own and 4 working hours instead of 1 (the same element id)."""
    lane_set = root.find(".//bpmn:laneSet", NS)
    for ref in root.iterfind(".//bpmn:lane[@id='Lane_CivilStatus']/bpmn:flowNodeRef", NS):
        if ref.text == "Task_Appraisal":
            ref.getparent().remove(ref)
    lane = etree.SubElement(lane_set, f"{{{BPMN}}}lane", id="Lane_Specialist", name="Chuyên viên tư pháp (specialist)")
    etree.SubElement(lane, f"{{{BPMN}}}flowNodeRef").text = "Task_Appraisal"
    task = root.find(".//bpmn:userTask[@id='Task_Appraisal']", NS)
    task.set("name", "Thẩm định hồ sơ khai sinh (chuyên viên)")
    task.set(f"{{{CAMUNDA}}}formKey", "appraisal_specialist.json")
    task.find(".//camunda:property[@name='deadline']", NS).set("value", "4 working hours")
    # its form, appraisal_specialist.json, is written beside the diagram by _variant


def appraisal_by_expression(root) -> None:
    """The appraisal's performing agency computed from a field (`appraising_agency`) no dossier has."""
    task = root.find(".//bpmn:userTask[@id='Task_Appraisal']", NS)
    props = task.find(".//camunda:properties", NS)
    etree.SubElement(props, f"{{{CAMUNDA}}}property", name="agency", value="appraising_agency")


def _deploy(db, path: Path) -> int:
    with db.uow() as s:
        return deploy(s, load_path(path), "test").version


def _at(service, code: str, steps: int) -> dict:
    """A new dossier moved `steps` steps along the accepted path."""
    d = service.start_dossier(receiver, CODE, APPLICANT)
    for _ in range(steps):
        t = d["tasks"][0]
        d = service.complete_task(ALL_ROLES, t["id"], _data(service, t))
    return d


def _data(service, task) -> dict:
    from tests.helpers import fill_form

    return fill_form(service.task_form(ALL_ROLES, task["id"]), CHOICES.get(task["spec_name"], {}))


@pytest.fixture
def service(db, settings):
    svc = DossierService(db, settings)
    assert _deploy(db, SOURCE / "birth_registration.bpmn") == 1
    return svc


def _versions(db) -> dict:
    with db.read() as s:
        return dict(s.execute(select(Dossier.code, Dossier.procedure_version_id)).all())


def test_a_step_removed_moves_dossiers_before_it_and_leaves_those_at_it(service, db, tmp_path):
    at_intake, at_appraisal, at_approval = (_at(service, CODE, n)["code"] for n in (0, 1, 2))
    returned = _at(service, CODE, 3)  # waiting at the return: passed the removed step
    assert [t["spec_name"] for t in returned["tasks"]] == ["Task_Return"]
    assert _deploy(db, _variant(tmp_path, "v2", without_approval)) == 2
    before = _versions(db)

    dry = migrate_page(service, ADMIN, CODE, 2, dry_run=True)
    outcome = {i["code"]: i["outcome"] for i in dry["items"]}
    assert outcome == {
        at_intake: "would_migrate",
        at_appraisal: "would_migrate",
        at_approval: "left_alone",
        returned["code"]: "would_migrate",
    }
    assert _versions(db) == before  # a dry run changes nothing
    left = next(i for i in dry["items"] if i["code"] == at_approval)
    assert left["missing"] == ["Task_Approval"] and left["at"] == ["Task_Approval"]

    out = migrate_page(service, ADMIN, CODE, 2)
    assert out["counts"] == {"migrated": 3, "would_migrate": 0, "left_alone": 1, "conflicted": 0}
    assert out["total"] == 4 and out["next_after"] is None
    after = _versions(db)
    assert after[at_approval] == before[at_approval]  # left alone
    assert len({after[c] for c in (at_intake, at_appraisal, returned["code"])} - {before[at_intake]}) == 1
    with db.read() as s:
        events = s.execute(
            select(Dossier.code, Event.details).join(Dossier).where(Event.action == "dossier.migrated")
        ).all()
    assert sorted(c for c, _ in events) == sorted([at_intake, at_appraisal, returned["code"]])
    assert all(d["from_version"] == 1 and d["to_version"] == 2 for _, d in events)

    # The migrated dossiers finish on the new diagram (no chairman's step); the one left alone on its own.
    for code, path in (
        (at_intake, ["Task_Intake", "Task_Appraisal", "Task_Return"]),
        (at_appraisal, ["Task_Appraisal", "Task_Return"]),
        (returned["code"], ["Task_Return"]),
        (at_approval, ["Task_Approval", "Task_Return"]),
    ):
        d, taken = drive(service, service.get_dossier(ALL_ROLES, code), CHOICES)
        assert (taken, d["status"], d["finished"]) == (path, "returned", True), code

    # Nothing left to move: a second run finds nothing.
    again = migrate_page(service, ADMIN, CODE, 2)
    assert again["items"] == [] and again["total"] == 0


def test_a_step_added_is_taken_by_dossiers_before_it(service, db, tmp_path):
    at_appraisal = _at(service, CODE, 1)
    task_id = at_appraisal["tasks"][0]["id"]
    at_approval = _at(service, CODE, 2)["code"]
    assert _deploy(db, _variant(tmp_path, "v2", with_second_check)) == 2
    out = migrate_page(service, ADMIN, CODE, 2)
    assert out["counts"]["migrated"] == 2
    d = service.get_dossier(ALL_ROLES, at_appraisal["code"])
    assert [t["id"] for t in d["tasks"]] == [task_id]  # the waiting step keeps its id, row and inbox place
    d, taken = drive(service, d, CHOICES)
    assert taken == ["Task_Appraisal", "Task_Check", "Task_Approval", "Task_Return"] and d["status"] == "returned"
    d, taken = drive(service, service.get_dossier(ALL_ROLES, at_approval), CHOICES)
    assert taken == ["Task_Approval", "Task_Return"] and d["status"] == "returned"
    with db.read() as s:
        assert s.scalar(select(Task.title).where(Task.spec_name == "Task_Check")) == "Kiểm tra lại hồ sơ"


def test_paging_and_a_concurrent_change_is_a_conflict(service, db, tmp_path):
    codes = [_at(service, CODE, 1)["code"] for _ in range(3)]
    assert _deploy(db, _variant(tmp_path, "v2", with_second_check)) == 2
    first = migrate_page(service, ADMIN, CODE, 2, limit=2, dry_run=True)
    assert [i["code"] for i in first["items"]] == codes[:2] and first["total"] == 3
    second = migrate_page(service, ADMIN, CODE, 2, limit=2, dry_run=True, after=first["next_after"])
    assert [i["code"] for i in second["items"]] == codes[2:] and second["next_after"] is None

    # While the first dossier is being moved, an officer completes the second one's step.
    other = service.get_dossier(ALL_ROLES, codes[1])

    def officer_acts(item):
        if item["code"] == codes[0]:
            t = other["tasks"][0]
            service.complete_task(ALL_ROLES, t["id"], _data(service, t))

    with db.read() as s:
        version_before = s.scalar(select(Dossier.version).where(Dossier.code == codes[1]))
    out = migrate_page(service, ADMIN, CODE, 2, progress=officer_acts)
    assert [i["outcome"] for i in out["items"]] == ["migrated", "conflicted", "migrated"]
    with db.read() as s:
        row = s.execute(select(Dossier.version, Dossier.procedure_version_id).where(Dossier.code == codes[1])).one()
        migrated = s.scalar(
            select(Event.id).join(Dossier).where(Dossier.code == codes[1], Event.action == "dossier.migrated")
        )
    assert row.version == version_before + 1 and migrated is None  # only the officer's step: not migrated
    again = migrate_page(service, ADMIN, CODE, 2)
    assert [(i["code"], i["outcome"]) for i in again["items"]] == [(codes[1], "migrated")]


def test_only_admins_and_bad_input_changes_nothing(service, db):
    _at(service, CODE, 1)
    with pytest.raises(PermissionDenied):
        migrate_page(service, staff({"receiver", "analyst", "supervisor"}), CODE, 1)
    with pytest.raises(InvalidInput) as exc:
        migrate_page(service, ADMIN, CODE, 7)
    assert exc.value.details["fields"] == {"to_version": "one of [1]"}
    for bad in (0, "2", True):
        with pytest.raises(InvalidInput):
            migrate_page(service, ADMIN, CODE, bad)
    with pytest.raises(InvalidInput):
        migrate_page(service, ADMIN, CODE, 1, limit=101)
    with pytest.raises(NotFound):
        migrate_page(service, ADMIN, "0.000000", 1)
    assert migrate_page(service, ADMIN, CODE, 1)["items"] == []  # already on it


def test_cli_migrate(settings, empty_database, tmp_path):
    upgrade(empty_database)  # the CLI's database is a migrated one
    db = Database.from_settings(settings)
    service = DossierService(db, settings)
    _deploy(db, SOURCE / "birth_registration.bpmn")
    at_intake, at_approval = _at(service, CODE, 0)["code"], _at(service, CODE, 2)["code"]
    assert _deploy(db, _variant(tmp_path, "v2", without_approval)) == 2
    env = {**os.environ, "DATABASE_URL": settings.database_url, "MOTCUA_VAR": str(tmp_path / "var")}
    runner = CliRunner()
    r = runner.invoke(cli, ["migrate", CODE, "--to", "2", "--dry-run"], env=env)
    assert r.exit_code == 0, r.output
    assert "1 sẽ chuyển / would migrate" in r.output and "1 giữ nguyên / left alone" in r.output
    assert f"{at_approval}: giữ nguyên, phiên bản 2 không có Task_Approval" in r.output
    assert _versions(db)[at_intake] == _versions(db)[at_approval]
    r = runner.invoke(cli, ["migrate", CODE, "--to", "2", "--actor", "ops"], env=env)
    assert r.exit_code == 0, r.output
    assert "1 đã chuyển / migrated" in r.output
    with db.read() as s:
        assert s.scalar(select(Event.actor).where(Event.action == "dossier.migrated")) == "ops"
    r = runner.invoke(cli, ["migrate", CODE, "--to", "9"], env=env)
    assert r.exit_code == 2 and "no version 9" in r.output
    d, taken = drive(service, service.get_dossier(ALL_ROLES, at_intake), CHOICES)
    assert taken == ["Task_Intake", "Task_Appraisal", "Task_Return"] and d["status"] == "returned"
    db.dispose()


def _row(db, task_id: str):
    with db.read() as s:
        return s.execute(select(Task.__table__).where(Task.id == task_id)).one()


def _inbox(db, actor) -> list[str]:
    with db.read() as s:
        return [t["id"] for t in list_tasks(s, actor, per_page=100).items]


def test_a_waiting_step_takes_the_new_definition_of_its_element(service, db, tmp_path):
    """Lane (roles), name, form and deadline of a waiting step come from the new version: the specialist's
    inbox gets it, the civil-status officer's (who held it) loses it; its due time is counted again from
    when it opened; the dossier's own due time does not move."""
    civil, specialist = staff({"civil_status"}, name="hotich"), staff({"specialist"}, name="chuyenvien")
    with at(2026, 3, 2, 9, 0):  # Monday
        d = service.start_dossier(receiver, CODE, APPLICANT)
    with at(2026, 3, 2, 9, 30):
        d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], _data(service, d["tasks"][0]))
    task_id = d["tasks"][0]["id"]
    with at(2026, 3, 2, 9, 40):
        service.claim(civil, task_id)
    old = _row(db, task_id)
    assert "civil_status" in old.roles and (old.due_at, old.claimed_by) == (vn(2026, 3, 2, 10, 30), "hotich")
    assert _inbox(db, civil) == [task_id] and _inbox(db, specialist) == []
    with db.read() as s:
        due_before = s.scalar(select(Dossier.due_at).where(Dossier.code == d["code"]))
    assert _deploy(db, _variant(tmp_path, "v2", appraisal_by_specialist)) == 2

    with at(2026, 3, 2, 11, 0):
        assert migrate_page(service, ADMIN, CODE, 2, dry_run=True)["counts"]["would_migrate"] == 1
        assert _row(db, task_id) == old  # the dry run changed nothing
        out = migrate_page(service, ADMIN, CODE, 2)
    assert out["counts"]["migrated"] == 1
    with db.read() as s:  # the supervisors' board counts the step by its new due time (no longer late at 11:00)
        counts = [overdue_counts(s, ADMIN, now=vn(2026, 3, 2, 11, 0), scan=scan)["totals"] for scan in (False, True)]
    assert counts[0] == counts[1] and counts[0]["overdue_tasks"] == 0 and counts[0]["due_soon_tasks"] == 1
    new = _row(db, task_id)
    assert new.roles == ["specialist", "Lane_Specialist"] and new.title == "Thẩm định hồ sơ khai sinh (chuyên viên)"
    assert new.form_key == "appraisal_specialist.json" and new.agency == old.agency
    assert new.created_at == old.created_at
    assert new.due_at == vn(2026, 3, 2, 15, 30)  # 4 working hours from 09:30: 09:30-11:30, 13:30-15:30
    assert new.claimed_by is None and new.claimed_at is None  # the civil-status officer's claim is released
    assert _inbox(db, specialist) == [task_id] and _inbox(db, civil) == []
    with db.read() as s:
        assert s.scalar(select(Dossier.due_at).where(Dossier.code == d["code"])) == due_before
        details = s.scalar(select(Event.details).where(Event.action == "dossier.migrated"))
    (changed,) = details["steps"]
    assert changed["task"] == "Task_Appraisal" and changed["changed"]["roles"] == [old.roles, new.roles]
    assert changed["changed"]["claimed_by"] == ["hotich", None]
    assert service.task_form(specialist, task_id)["title"] == "Thẩm định hồ sơ khai sinh (chuyên viên)"
    with pytest.raises(PermissionDenied):
        service.claim(civil, task_id)
    service.claim(specialist, task_id)
    d = service.complete_task(specialist, task_id, _data(service, {"id": task_id, "spec_name": "Task_Appraisal"}))
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Approval"]


def test_a_recounted_due_time_keeps_the_supplement_pause_the_step_lived_through(service, db, tmp_path):
    """docs/deadlines.md: the step opened Monday 09:30 and lived through a 2-working-hour supplement pause
    (asked 10:00, answered 14:00): its new 4 working hours from 09:30 end 15:30, plus 2 hours: Tuesday 07:30."""
    actions = LegalActions(service)
    with at(2026, 3, 2, 9, 0):
        d = service.start_dossier(receiver, CODE, APPLICANT)
    with at(2026, 3, 2, 9, 30):
        d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], _data(service, d["tasks"][0]))
    task_id = d["tasks"][0]["id"]
    with at(2026, 3, 2, 10, 0):
        actions.request_supplement(ALL_ROLES, d["code"], "Thiếu giấy chứng sinh")
    with at(2026, 3, 2, 14, 0):
        actions.supplement_received(ALL_ROLES, d["code"])
    assert _row(db, task_id).due_at == vn(2026, 3, 2, 14, 30)  # 10:30 moved on by the 2 paused hours
    assert _deploy(db, _variant(tmp_path, "v2", appraisal_by_specialist)) == 2
    with at(2026, 3, 2, 14, 45):
        assert migrate_page(service, ADMIN, CODE, 2)["counts"]["migrated"] == 1
    assert _row(db, task_id).due_at == vn(2026, 3, 3, 7, 30)


def test_a_dossier_the_new_version_cannot_carry_changes_nothing(service, db, tmp_path):
    """A step whose performing agency the new version computes from a field this dossier lacks: the dossier
    is left alone with the reason, its version, rows, state and timeline untouched."""

    d = _at(service, CODE, 1)
    task_id = d["tasks"][0]["id"]
    with db.read() as s:
        before = s.execute(select(Dossier.version, Dossier.procedure_version_id).where(Dossier.code == d["code"])).one()
        events_before = s.scalar(select(func.count()).select_from(Event))
    old = _row(db, task_id)
    assert _deploy(db, _variant(tmp_path, "v2", appraisal_by_expression)) == 2
    for dry_run in (True, False):
        out = migrate_page(service, ADMIN, CODE, 2, dry_run=dry_run)
        (item,) = out["items"]
        assert item["outcome"] == "left_alone" and "appraising_agency" in item["error"], item
    with db.read() as s:
        assert (
            s.execute(select(Dossier.version, Dossier.procedure_version_id).where(Dossier.code == d["code"])).one()
            == before
        )
        assert s.scalar(select(func.count()).select_from(Event)) == events_before
    assert _row(db, task_id).roles == old.roles and _row(db, task_id).due_at == old.due_at
    d, taken = drive(service, service.get_dossier(ALL_ROLES, d["code"]), CHOICES)  # on its old version still
    assert taken == ["Task_Appraisal", "Task_Approval", "Task_Return"] and d["status"] == "returned"


def test_a_completion_racing_the_migration_one_wins(service, db, tmp_path):
    """An officer completes the waiting step (with the dossier version they saw) while the dossier is being
    migrated: either the completion wins and the migration reports the dossier conflicted, or the migration
    wins and the completion is a 409; never both on the same version."""
    d = _at(service, CODE, 1)
    task = d["tasks"][0]
    data = _data(service, task)
    assert _deploy(db, _variant(tmp_path, "v2", with_second_check)) == 2
    barrier = threading.Barrier(2)
    results: dict = {}

    def complete():
        barrier.wait()
        try:
            service.complete_task(ALL_ROLES, task["id"], data, expected_version=d["version"])
            results["complete"] = "ok"
        except Conflict:
            results["complete"] = "409"

    def migrate():
        barrier.wait()
        results["migrate"] = migrate_page(service, ADMIN, CODE, 2)["items"]

    threads = [threading.Thread(target=complete), threading.Thread(target=migrate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    outcome = results["migrate"][0]["outcome"] if results["migrate"] else "not listed"
    with db.read() as s:
        completed = s.scalar(
            select(func.count()).select_from(Task).where(Task.id == task["id"], Task.state == "completed")
        )
        migrated = s.scalars(select(Event.details).where(Event.action == "dossier.migrated")).all()
    if results["complete"] == "409":
        assert outcome == "migrated" and completed == 0 and migrated[0]["at"] == ["Task_Appraisal"]
    else:  # the completion went first: the migration found the dossier changed, or listed it after the step
        assert completed == 1
        assert (
            outcome == "conflicted"
            and migrated == []
            or outcome == "migrated"
            and migrated[0]["at"] == ["Task_Approval"]
        ), (outcome, migrated)


def test_another_process_continues_on_the_new_version(service, db, settings, tmp_path):
    """A second process (its own DossierService and live-workflow cache) worked the dossier before the
    migration: its cached workflow is keyed by the dossier's row version, which the migration moves on, so its
    next step restores the migrated workflow from the database and takes the new version's path."""
    other = DossierService(db, settings)
    d = other.start_dossier(receiver, CODE, APPLICANT)
    d = other.complete_task(ALL_ROLES, d["tasks"][0]["id"], _data(other, d["tasks"][0]))  # cached in `other`
    assert _deploy(db, _variant(tmp_path, "v2", with_second_check)) == 2
    assert migrate_page(service, ADMIN, CODE, 2)["counts"]["migrated"] == 1
    d, taken = drive(other, other.get_dossier(ALL_ROLES, d["code"]), CHOICES)
    assert taken == ["Task_Appraisal", "Task_Check", "Task_Approval", "Task_Return"] and d["status"] == "returned"


def test_cli_migrate_hands_the_waiting_step_to_the_new_lane(settings, empty_database, tmp_path):
    upgrade(empty_database)
    db = Database.from_settings(settings)
    service = DossierService(db, settings)
    _deploy(db, SOURCE / "birth_registration.bpmn")
    civil, specialist = staff({"civil_status"}, name="hotich"), staff({"specialist"}, name="chuyenvien")
    task_id = _at(service, CODE, 1)["tasks"][0]["id"]
    old = _row(db, task_id)
    assert _deploy(db, _variant(tmp_path, "v2", appraisal_by_specialist)) == 2
    env = {**os.environ, "DATABASE_URL": settings.database_url, "MOTCUA_VAR": str(tmp_path / "var")}
    r = CliRunner().invoke(cli, ["migrate", CODE, "--to", "2", "--dry-run"], env=env)
    assert r.exit_code == 0 and "1 sẽ chuyển / would migrate" in r.output, r.output
    assert _row(db, task_id) == old and _inbox(db, civil) == [task_id] and _inbox(db, specialist) == []
    r = CliRunner().invoke(cli, ["migrate", CODE, "--to", "2"], env=env)
    assert r.exit_code == 0 and "1 đã chuyển / migrated" in r.output, r.output
    assert _inbox(db, specialist) == [task_id] and _inbox(db, civil) == []
    assert _row(db, task_id).form_key == "appraisal_specialist.json"

    # A version that cannot carry a dossier: the CLI says why and the dossier stays as it was.
    code = _at(service, CODE, 1)["code"]
    assert _deploy(db, _variant(tmp_path, "v3", appraisal_by_expression)) == 3
    before = _versions(db)[code]
    r = CliRunner().invoke(cli, ["migrate", CODE, "--to", "3"], env=env)
    assert r.exit_code == 0 and "0 đã chuyển / migrated, 2 giữ nguyên / left alone" in r.output, r.output
    assert f"{code}: giữ nguyên / left alone: " in r.output and "appraising_agency" in r.output
    assert _versions(db)[code] == before
    db.dispose()


POLICE = "000.05.14.H56"


def appraisal_at_the_police(root) -> None:
    """The appraisal is performed by another agency (the commune police, a registered agency)."""
    task = root.find(".//bpmn:userTask[@id='Task_Appraisal']", NS)
    props = task.find(".//camunda:properties", NS)
    etree.SubElement(props, f"{{{CAMUNDA}}}property", name="agency", value=POLICE)


def test_a_step_moved_to_another_agency_is_counted_as_performed_for_the_receiving_one(service, db, tmp_path):
    """A waiting step the new version gives to another agency carries the receiving agency (`for_agency`),
    so the period report counts it among the steps that agency performs for others (docs/reports.md)."""
    from engine import agencies
    from engine.reports import summary

    for code in ("000.31.14.H56", POLICE):
        agencies.put_agency(db, ADMIN, code, {"name": f"Cơ quan {code}"})
    with at(2026, 3, 2, 9, 0):
        d = _at(service, CODE, 1)  # waiting at the appraisal
    task_id = d["tasks"][0]["id"]
    old = _row(db, task_id)
    assert (old.agency, old.for_agency) == (d["agency"], None)
    assert _deploy(db, _variant(tmp_path, "v2", appraisal_at_the_police)) == 2
    with at(2026, 3, 2, 9, 30):
        assert migrate_page(service, ADMIN, CODE, 2)["counts"]["migrated"] == 1
    new = _row(db, task_id)
    assert (new.agency, new.for_agency) == (POLICE, d["agency"])
    with db.read() as s:
        steps = summary(s, "2026-03-02", "2026-03-02")["steps_performed"]["rows"]
    assert [(r["agency"], r["handed_over"], r["in_process"]["total"]) for r in steps] == [(POLICE, 1, 1)]
