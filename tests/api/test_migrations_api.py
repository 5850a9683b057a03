"""POST /api/v1/procedures/{code}/migrations: administrators move running dossiers to another version
(engine/migration.py); who may, what bad input gets, paging, and the dossiers finishing afterwards."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from engine.auth import hash_password
from engine.models import Dossier, Event, User
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, fill_form
from tests.test_migration import (
    APPLICANT,
    CHOICES,
    CODE,
    _at,
    _deploy,
    _variant,
    appraisal_by_specialist,
    receiver,
    with_second_check,
    without_approval,
)

from .helpers import AGENCY, PASSWORD, assert_problem

URL = f"/api/v1/procedures/{CODE}/migrations"


def _setup(app, tmp_path):
    svc = app.extensions["motcua"]
    _deploy(svc.db, BPMN_DIR / "birth_registration" / "birth_registration.bpmn")
    service = svc.dossiers
    codes = [_at(service, CODE, n)["code"] for n in (0, 1, 2)]  # at intake, appraisal, approval
    _deploy(svc.db, _variant(tmp_path, "v2", without_approval))
    return service, codes


def _migrated_events(app) -> int:
    with app.extensions["motcua"].db.read() as s:
        return s.scalar(select(func.count()).select_from(Event).where(Event.action == "dossier.migrated"))


def test_admins_only_before_the_input_is_read(app, client, tmp_path):
    _setup(app, tmp_path)
    assert_problem(client.post(URL, None, json={"to_version": 2}), 401)
    for user in ("analyst", "supervisor", "tiepnhan"):
        assert_problem(client.post(URL, user, json={"to_version": 2}), 403)
        assert_problem(client.post(URL, user, data="not json", content_type="application/json"), 403)
    assert _migrated_events(app) == 0


def test_bad_input_names_the_problem_and_changes_nothing(app, client, tmp_path):
    _setup(app, tmp_path)
    body = assert_problem(client.post(URL, "admin", json={}), 422)
    assert "to_version" in str(body)
    assert_problem(client.post(URL, "admin", json={"to_version": "2"}), 422)
    assert_problem(client.post(URL, "admin", json={"to_version": 2, "limit": 101}), 422)
    body = assert_problem(client.post(URL, "admin", json={"to_version": 9}), 422)
    assert "no version 9" in body["message_en"]
    assert_problem(client.post("/api/v1/procedures/0.000000/migrations", "admin", json={"to_version": 1}), 404)
    assert _migrated_events(app) == 0


def test_dry_run_then_paged_migration_then_the_dossiers_finish(app, client, tmp_path):
    service, (at_intake, at_appraisal, at_approval) = _setup(app, tmp_path)
    r = client.post(URL, "admin", json={"to_version": 2, "dry_run": True})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["dry_run"] and body["total"] == 3 and body["next_after"] is None
    assert [(i["code"], i["outcome"]) for i in body["items"]] == [
        (at_intake, "would_migrate"),
        (at_appraisal, "would_migrate"),
        (at_approval, "left_alone"),
    ]
    assert body["items"][2]["missing"] == ["Task_Approval"]
    assert _migrated_events(app) == 0

    seen, after = [], 0
    while after is not None:
        r = client.post(URL, "admin", json={"to_version": 2, "limit": 1, "after": after})
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        assert len(page["items"]) == 1
        seen += [(i["code"], i["outcome"]) for i in page["items"]]
        after = page["next_after"]
    assert seen == [(at_intake, "migrated"), (at_appraisal, "migrated"), (at_approval, "left_alone")]
    assert _migrated_events(app) == 2
    r = client.get(f"/api/v1/dossiers/{at_appraisal}", "admin")
    assert [e["action"] for e in r.get_json()["timeline"]][-1] == "dossier.migrated"

    for code, path in (
        (at_intake, ["Task_Intake", "Task_Appraisal", "Task_Return"]),
        (at_appraisal, ["Task_Appraisal", "Task_Return"]),
        (at_approval, ["Task_Approval", "Task_Return"]),
    ):
        d, taken = drive(service, service.get_dossier(ALL_ROLES, code), CHOICES)
        assert (taken, d["status"]) == (path, "returned"), code
    # A dossier started now runs the current version too.
    fresh = service.start_dossier(receiver, CODE, APPLICANT)
    with app.extensions["motcua"].db.read() as s:
        versions = dict(s.execute(select(Dossier.code, Dossier.procedure_version_id)).all())
    assert versions[fresh["code"]] == versions[at_intake] != versions[at_approval]


def _officers(app):
    """A civil-status officer of the commune beside the API tests' users (chuyenvien is its specialist)."""
    with app.extensions["motcua"].db.uow() as s:
        s.add(User(username="hotich", password_hash=hash_password(PASSWORD), roles=["civil_status"], agency=AGENCY))


def _inbox(client, user) -> list[str]:
    r = client.get(f"/api/v1/tasks?procedure_code={CODE}&per_page=100", user)
    assert r.status_code == 200, r.get_json()
    return [t["id"] for t in r.get_json()["items"]]


def test_the_new_lanes_officer_gets_the_waiting_step(app, client, tmp_path):
    svc = app.extensions["motcua"]
    _officers(app)
    _deploy(svc.db, BPMN_DIR / "birth_registration" / "birth_registration.bpmn")
    d = _at(svc.dossiers, CODE, 1)
    task_id = d["tasks"][0]["id"]
    assert client.post(f"/api/v1/tasks/{task_id}/claim", "hotich").status_code == 200
    assert _inbox(client, "hotich") == [task_id] and _inbox(client, "chuyenvien") == []
    _deploy(svc.db, _variant(tmp_path, "v2", appraisal_by_specialist))

    r = client.post(URL, "admin", json={"to_version": 2, "dry_run": True})
    assert r.status_code == 200 and r.get_json()["counts"]["would_migrate"] == 1, r.get_json()
    assert _inbox(client, "hotich") == [task_id] and _inbox(client, "chuyenvien") == []  # nothing changed
    r = client.post(URL, "admin", json={"to_version": 2})
    assert r.status_code == 200 and r.get_json()["counts"]["migrated"] == 1, r.get_json()
    assert _inbox(client, "chuyenvien") == [task_id] and _inbox(client, "hotich") == []
    task = client.get(f"/api/v1/tasks/{task_id}", "chuyenvien").get_json()
    assert task["task"]["name"] == "Thẩm định hồ sơ khai sinh (chuyên viên)" and task["can_work"]
    assert task["form"]["key"] == "appraisal_specialist.json"
    assert client.post(f"/api/v1/tasks/{task_id}/claim", "hotich").status_code in (403, 404)
    assert client.post(f"/api/v1/tasks/{task_id}/claim", "chuyenvien").status_code == 200


def test_a_completion_racing_the_migration_is_one_winner_and_a_409(app, client, tmp_path):
    svc = app.extensions["motcua"]
    _officers(app)
    _deploy(svc.db, BPMN_DIR / "birth_registration" / "birth_registration.bpmn")
    d = _at(svc.dossiers, CODE, 1)
    task = d["tasks"][0]
    data = fill_form(svc.dossiers.task_form(ALL_ROLES, task["id"]), CHOICES["Task_Appraisal"])
    _deploy(svc.db, _variant(tmp_path, "v2", with_second_check))  # the step stays the civil-status officer's
    barrier, results = threading.Barrier(2), {}

    def complete():
        barrier.wait()
        body = {"data": data, "version": d["version"]}
        results["complete"] = client.post(f"/api/v1/tasks/{task['id']}/complete", "hotich", json=body).status_code

    def migrate():
        barrier.wait()
        r = client.post(URL, "admin", json={"to_version": 2})
        results["migrate"] = [i["outcome"] for i in r.get_json()["items"]]

    threads = [threading.Thread(target=complete), threading.Thread(target=migrate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if results["complete"] == 409:
        assert results["migrate"] == ["migrated"]
    else:  # the completion first: the migration saw the dossier changed, or moved it after the step
        assert results["complete"] == 200 and results["migrate"] in (["conflicted"], ["migrated"]), results
    history = client.get(f"/api/v1/dossiers/{d['code']}/history", "admin").get_json()["events"]
    actions = [e["action"] for e in history]
    assert actions.count("task.completed") == 1 + (results["complete"] == 200)
    assert actions.count("dossier.migrated") == (results["migrate"] == ["migrated"])
