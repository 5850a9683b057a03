"""The province-size dataset of the browser tests (tests/e2e/province.py) is real data: the catalogue and the
inbox count it, and a copied dossier's task is worked like any other (its workflow state is whole)."""

from __future__ import annotations

from sqlalchemy import select

from engine.models import Task
from tests.helpers import fill_form

from .conftest import LIBRARY
from .province import HOME, OPEN_TASKS, PROCEDURES
from .webforms import web_forms_deployed


def _token(client, username):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": "motcua-demo"})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def test_the_province_is_loaded_and_its_copies_work_like_received_dossiers(province_server):
    loaded = province_server.loaded
    assert loaded.procedures == PROCEDURES and loaded.open_tasks == OPEN_TASKS
    print(f"province loaded in {loaded.seconds:.1f} s")
    assert loaded.seconds < 60, f"the province took {loaded.seconds:.1f} s to load"  # seconds, not minutes
    client = province_server.app.test_client()
    analyst = _token(client, "analyst")
    r = client.get("/api/v1/procedures?per_page=1", headers=analyst)
    total = PROCEDURES + LIBRARY + web_forms_deployed(province_server)  # + those of bpmn/ and of other tests
    assert r.status_code == 200 and r.get_json()["total"] == total

    desk = _token(client, "tiepnhan")
    r = client.get("/api/v1/tasks?per_page=20", headers=desk)
    assert r.status_code == 200
    page = r.get_json()
    assert page["total"] >= loaded.home_tasks["receiver"] > 1000  # other tests may receive a few more
    assert len(page["items"]) == 20

    # a copied dossier's step: its form, a claim, a completion that moves the dossier on
    with province_server.db.read() as s:
        task_id, dossier_code = s.execute(
            select(Task.id, Task.dossier_code)
            .where(Task.state == "ready", Task.agency == HOME, Task.procedure_code.like("2.%"))
            .where(Task.spec_name == "Task_Intake")
            .limit(1)
        ).one()
    r = client.get(f"/api/v1/tasks/{task_id}", headers=desk)
    assert r.status_code == 200, r.get_json()
    form = r.get_json().get("form")
    assert client.post(f"/api/v1/tasks/{task_id}/claim", headers=desk).status_code == 200
    r = client.post(
        f"/api/v1/tasks/{task_id}/complete",
        headers=desk,
        json={"data": fill_form(form, {"decision": "accept"})},
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["code"] == dossier_code
    assert [t["spec_name"] for t in r.get_json()["tasks"]] == ["Task_Appraisal"]
