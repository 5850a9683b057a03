"""Statuses as the national portal reads them, through the API (docs/bpmn-conventions.md, "Trạng thái
theo Cổng Dịch vụ công quốc gia / Statuses as the national portal reads them")."""

from __future__ import annotations

import io

from engine.procedures import form_files_beside

from ..conftest import BPMN_DIR
from ..helpers import fill_form
from .helpers import assert_problem

BIRTH = BPMN_DIR / "birth_registration" / "birth_registration.bpmn"
RESIDENCE = BPMN_DIR / "permanent_residence" / "permanent_residence.bpmn"
APPLICANT = {"name": "Nguyễn Văn An", "id_number": "001099012345", "phone": "0912345678"}


def upload(client, path, content: bytes | None = None):
    data = {
        "file": (io.BytesIO(content or path.read_bytes()), path.name),
        "forms": [(io.BytesIO(v), k) for k, v in form_files_beside(path).items()],
    }
    return client.post("/api/v1/procedures", "admin", data=data, content_type="multipart/form-data")


def work(client, d, choices: dict, user="admin"):
    (task,) = d["tasks"]
    form = client.get(f"/api/v1/tasks/{task['id']}", user).get_json()["form"]
    data = fill_form(form, choices.get(task["spec_name"], {}))
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def history(client, code):
    events = client.get(f"/api/v1/dossiers/{code}/history", "tiepnhan").get_json()["events"]
    return [(e["from_status"], e["to_status"]) for e in events if e["from_status"] != e["to_status"]]


def test_a_refusal_after_appraisal_ends_as_a_returned_result(client):
    assert upload(client, RESIDENCE).status_code == 201
    r = client.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "1.004222", "applicant": APPLICANT, "channel": 1, "data": {}},
    )
    d = r.get_json()
    choices = {
        "Task_Intake": {"decision": "accept"},
        "Task_Appraisal": {"proposal": "refuse"},
        "Task_Approval": {"approval": "refuse", "note": "Không đủ điều kiện"},
    }
    while d["tasks"]:
        d = work(client, d, choices)
    assert (d["status"], d["status_code"]) == ("returned", 10)
    assert history(client, d["code"]) == [(None, "received"), ("received", "in_process"), ("in_process", "returned")]
    events = client.get(f"/api/v1/dossiers/{d['code']}/history", "tiepnhan").get_json()["events"]
    assert events[-1]["details"]["outcome"] == "refused"


def test_an_assignee_overrides_the_lane_in_the_inbox_and_at_claim(client):
    bpmn = BIRTH.read_bytes().replace(
        b'<bpmn:userTask id="Task_Intake"', b'<bpmn:userTask id="Task_Intake" camunda:assignee="canbo2"'
    )
    r = upload(client, BIRTH, bpmn)
    assert r.status_code == 201, r.get_json()
    r = client.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "1.001193", "applicant": APPLICANT, "channel": 1, "data": {}},
    )
    (task,) = r.get_json()["tasks"]
    assert task["assignee"] == "canbo2" and task["roles"] == []
    # tiepnhan holds the lane's role (receiver) but the step is canbo2's
    assert task["id"] not in [t["id"] for t in client.get("/api/v1/tasks", "tiepnhan").get_json()["items"]]
    assert_problem(client.post(f"/api/v1/tasks/{task['id']}/claim", "tiepnhan"), 403)
    assert task["id"] in [t["id"] for t in client.get("/api/v1/tasks?mine=true", "canbo2").get_json()["items"]]
    assert client.post(f"/api/v1/tasks/{task['id']}/claim", "canbo2").status_code == 200


def test_an_assignee_expression_is_refused_naming_the_task(client):
    bpmn = BIRTH.read_bytes().replace(
        b'<bpmn:userTask id="Task_Intake"', b'<bpmn:userTask id="Task_Intake" camunda:assignee="${initiator}"'
    )
    body = assert_problem(upload(client, BIRTH, bpmn), 422)
    assert [p["element"] for p in body["problems"]] == ["Task_Intake"]
