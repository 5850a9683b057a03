"""Migrating running dossiers to another version of their procedure (engine/migration.py), through the
service layer and `motcua migrate`, on the library's birth registration: dossiers at each step, a version
without the chairman's signature (a step removed), a version with a second check (a step added)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import select

from cli.main import main as cli
from engine.db import Database
from engine.dossiers import DossierService
from engine.errors import InvalidInput, NotFound, PermissionDenied
from engine.migrate import upgrade
from engine.migration import migrate_page
from engine.models import Dossier, Event, Task
from engine.procedures import deploy, load_path
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, staff

CODE = "1.001193"
SOURCE = BPMN_DIR / "birth_registration"
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
CHOICES = {
    "Task_Intake": {"decision": "accept"},
    "Task_Appraisal": {"proposal": "approve"},
    "Task_Approval": {"approval": "approve"},
}
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN, "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI"}
ADMIN = staff({"admin"}, name="quantri")
receiver = staff({"receiver"}, name="tiepnhan")


def _variant(tmp_path: Path, name: str, change) -> Path:
    """A copy of birth registration with its forms, the diagram changed by `change(root)`."""
    folder = tmp_path / name
    folder.mkdir()
    for f in SOURCE.glob("*.json"):
        (folder / f.name).write_bytes(f.read_bytes())
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
