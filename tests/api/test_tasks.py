"""The inbox (GET /tasks), one task (GET /tasks/{id}), claim, unclaim, complete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from engine.models import Task

from .helpers import assert_problem, new_dossier

ACCEPT = {"data": {"decision": "accept"}}


def complete(client, task_id, user, body=None, headers=None):
    return client.post(
        f"/api/v1/tasks/{task_id}/complete", user, json=ACCEPT if body is None else body, headers=headers
    )


def inbox(client, user, query=""):
    r = client.get(f"/api/v1/tasks{query}", user)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_inbox_shows_ready_tasks_of_my_roles_and_agency(client):
    d1 = new_dossier(client)  # intake ready (receiver)
    d2 = new_dossier(client)
    complete(client, d2["tasks"][0]["id"], "tiepnhan")  # d2: appraise ready (specialist)
    d3 = new_dossier(client, "khac")  # another agency
    ids = lambda page: [t["id"] for t in page["items"]]  # noqa: E731
    assert ids(inbox(client, "tiepnhan")) == [d1["tasks"][0]["id"]]
    spec = inbox(client, "chuyenvien")
    assert spec["total"] == 1 and spec["items"][0]["name"] == "Thẩm định"
    assert spec["items"][0]["dossier_code"] == d2["code"] and spec["items"][0]["procedure_code"] == "9.000001"
    assert spec["items"][0]["roles"] == ["specialist", "L2"] and spec["items"][0]["due_at"].endswith("+07:00")
    assert inbox(client, "canbo")["total"] == 2
    assert ids(inbox(client, "khac")) == [d3["tasks"][0]["id"]]
    assert inbox(client, "supervisor")["total"] == 3 and inbox(client, "admin")["total"] == 3
    assert_problem(client.get("/api/v1/tasks", "analyst"), 403)  # an analyst alone is not staff
    # role filter: only roles I hold (supervisors may filter by any)
    assert inbox(client, "canbo", "?role=specialist")["total"] == 1
    assert inbox(client, "supervisor", "?role=receiver")["total"] == 2
    assert_problem(client.get("/api/v1/tasks?role=leader", "canbo"), 403)
    # overdue: the appraise step has a deadline; push it into the past
    with client.app.extensions["motcua"].db.uow() as s:
        s.execute(
            update(Task)
            .where(Task.dossier_id.isnot(None), Task.spec_name == "appraise")
            .values(due_at=datetime.now(UTC) - timedelta(hours=1))
        )
    over = inbox(client, "canbo", "?overdue=true")
    assert over["total"] == 1 and over["items"][0]["overdue"] is True
    assert inbox(client, "canbo", "?overdue=false")["total"] == 1
    assert inbox(client, "canbo")["items"][0]["overdue"] is True  # most urgent first
    # paging
    page = inbox(client, "supervisor", "?per_page=2&page=2")
    assert page["total"] == 3 and len(page["items"]) == 1
    assert inbox(client, "canbo", "?procedure_code=9.000002")["total"] == 0


def test_inbox_searches_by_dossier_or_procedure_code_on_the_server(client):
    d1, d2 = new_dossier(client), new_dossier(client)
    found = inbox(client, "tiepnhan", f"?q={d2['code']}&per_page=1")
    assert found["total"] == 1 and [t["dossier_code"] for t in found["items"]] == [d2["code"]]
    assert inbox(client, "tiepnhan", f"?q={d1['code'][:-1].lower()}")["total"] == 2  # a prefix, any case
    assert inbox(client, "tiepnhan", "?q=9.0000")["total"] == 2 and inbox(client, "tiepnhan", "?q=8.")["total"] == 0
    assert inbox(client, "tiepnhan", "?q=%25")["total"] == 0  # LIKE wildcards are text
    assert "q" in assert_problem(client.get(f"/api/v1/tasks?q={'x' * 65}", "tiepnhan"), 422)["fields"]


def test_inbox_mine(client):
    d = new_dossier(client)
    tid = d["tasks"][0]["id"]
    assert inbox(client, "canbo", "?mine=true")["total"] == 0
    assert client.post(f"/api/v1/tasks/{tid}/claim", "canbo").status_code == 200
    assert [t["id"] for t in inbox(client, "canbo", "?mine=true")["items"]] == [tid]
    assert inbox(client, "tiepnhan", "?mine=true")["total"] == 0
    assert inbox(client, "tiepnhan")["items"][0]["claimed_by"] == "canbo"  # still visible, held by someone


def test_inbox_errors(client):
    assert_problem(client.get("/api/v1/tasks"), 401)
    assert "per_page" in assert_problem(client.get("/api/v1/tasks?per_page=500", "canbo"), 422)["fields"]
    assert "mine" in assert_problem(client.get("/api/v1/tasks?mine=perhaps", "canbo"), 422)["fields"]


def test_task_detail_with_form_and_prefilled_values(client):
    d = new_dossier(client, procedure="9.000002", data={"so_ban": 2, "ghi_chu": "đủ giấy tờ", "khac": 1})
    tid = d["tasks"][0]["id"]
    r = client.get(f"/api/v1/tasks/{tid}", "tiepnhan")
    assert r.status_code == 200
    body = r.get_json()
    assert body["task"]["id"] == tid and body["task"]["form_key"] == "intake.json"
    assert body["form"]["key"] == "intake.json" and body["form"]["schema"]["required"] == ["decision", "so_ban"]
    assert body["values"] == {"so_ban": 2, "ghi_chu": "đủ giấy tờ"}  # only the form's fields
    assert body["can_work"] is True
    assert body["dossier"]["code"] == d["code"] and body["dossier"]["due_at"] == d["due_at"]
    assert client.get(f"/api/v1/tasks/{tid}", "chuyenvien").get_json()["can_work"] is False
    assert client.get(f"/api/v1/tasks/{tid}", "supervisor").status_code == 200
    free = new_dossier(client)["tasks"][0]["id"]
    assert client.get(f"/api/v1/tasks/{free}", "tiepnhan").get_json()["form"] is None


def test_task_detail_errors(client, dossier):
    tid = dossier["tasks"][0]["id"]
    assert_problem(client.get(f"/api/v1/tasks/{tid}"), 401)
    assert_problem(client.get(f"/api/v1/tasks/{tid}", "khac"), 404)
    assert_problem(client.get("/api/v1/tasks/00000000-0000-0000-0000-000000000000", "canbo"), 404)
    assert_problem(client.get("/api/v1/tasks/" + "x" * 80, "canbo"), 404)


def test_claim_and_unclaim(client, dossier):
    tid = dossier["tasks"][0]["id"]
    url = f"/api/v1/tasks/{tid}"
    assert_problem(client.post(url + "/claim"), 401)
    assert_problem(client.post(url + "/claim", "chuyenvien"), 403)  # not a receiver
    assert_problem(client.post(url + "/claim", "khac"), 404)  # another agency
    assert_problem(client.post("/api/v1/tasks/nope/claim", "canbo"), 404)
    r = client.post(url + "/claim", "canbo")
    assert r.status_code == 200 and r.get_json()["claimed_by"] == "canbo"
    assert client.post(url + "/claim", "canbo").status_code == 200  # claiming again is harmless
    p = assert_problem(client.post(url + "/claim", "tiepnhan"), 409, "conflict")
    assert "canbo" in p["message_vi"]
    assert_problem(client.post(url + "/unclaim", "tiepnhan"), 409)
    assert_problem(client.post(url + "/unclaim"), 401)
    assert_problem(client.post(url + "/unclaim", "chuyenvien"), 403)
    assert_problem(client.post(url + "/unclaim", "khac"), 404)
    r = client.post(url + "/unclaim", "canbo")
    assert r.status_code == 200 and r.get_json()["claimed_by"] is None
    assert client.post(url + "/claim", "tiepnhan").get_json()["claimed_by"] == "tiepnhan"
    # a completed task can be neither claimed nor given back
    assert complete(client, tid, "tiepnhan").status_code == 200
    assert_problem(client.post(url + "/claim", "tiepnhan"), 409)
    assert_problem(client.post(url + "/unclaim", "tiepnhan"), 409)


def test_complete_answers_with_the_new_state_and_next_tasks(client, dossier):
    code = dossier["code"]
    d = dossier
    names = []
    for user in ("tiepnhan", "chuyenvien", "chuyenvien", "tiepnhan"):
        r = complete(client, d["tasks"][0]["id"], user)
        assert r.status_code == 200, r.get_json()
        d = r.get_json()
        assert d["code"] == code
        names.append([t["name"] for t in d["tasks"]])
    assert names == [["Thẩm định"], ["Phê duyệt"], ["Trả kết quả"], []]
    assert d["finished"] is True and d["status"] == "returned" and d["returned_at"]
    assert client.get("/api/v1/tasks", "canbo").get_json()["total"] == 0
    h = client.get(f"/api/v1/dossiers/{code}/history", "canbo").get_json()
    assert [e["actor"] for e in h["events"] if e["action"] == "task.completed"] == [
        "tiepnhan",
        "chuyenvien",
        "chuyenvien",
        "tiepnhan",
    ]


def test_complete_conflicts(client, dossier):
    tid = dossier["tasks"][0]["id"]
    assert client.post(f"/api/v1/tasks/{tid}/claim", "canbo").status_code == 200
    assert "canbo" in assert_problem(complete(client, tid, "tiepnhan"), 409)["message_vi"]  # held by another
    version = dossier["version"]
    p = assert_problem(complete(client, tid, "canbo", {"data": {}, "version": version + 5}), 409)
    assert "thay đổi" in p["message_vi"]
    assert_problem(complete(client, tid, "canbo", headers={"If-Match": f'"{version + 1}"'}), 409)
    r = complete(client, tid, "canbo", headers={"If-Match": f'W/"{version}"'})
    assert r.status_code == 200, r.get_json()
    assert_problem(complete(client, tid, "canbo"), 409)  # already completed
    nxt = r.get_json()["tasks"][0]["id"]
    r = complete(client, nxt, "canbo", {"data": {}, "version": r.get_json()["version"]})
    assert r.status_code == 200


def test_complete_refusals(client, dossier):
    tid = dossier["tasks"][0]["id"]
    assert_problem(complete(client, tid, None), 401)
    assert_problem(complete(client, tid, "chuyenvien"), 403)
    assert_problem(complete(client, tid, "khac"), 404)
    assert_problem(complete(client, "00000000-0000-0000-0000-000000000000", "canbo"), 404)
    assert "data" in assert_problem(complete(client, tid, "canbo", {"data": "x"}), 422)["fields"]
    assert "If-Match" in assert_problem(complete(client, tid, "canbo", headers={"If-Match": "abc"}), 422)["fields"]
    p = assert_problem(complete(client, tid, "canbo", {"data": {}, "version": 1}, headers={"If-Match": '"2"'}), 422)
    assert "version" in p["fields"]


def test_form_errors_are_422_per_field(client):
    d = new_dossier(client, procedure="9.000002")
    tid = d["tasks"][0]["id"]
    p = assert_problem(complete(client, tid, "tiepnhan", {"data": {"decision": "maybe", "so_ban": 99}}), 422)
    assert set(p["fields"]) >= {"decision", "so_ban"}
    assert all(m for m in p["fields"].values())
    r = complete(client, tid, "tiepnhan", {"data": {"decision": "refuse", "so_ban": 1}})
    assert r.status_code == 200 and r.get_json()["status"] == "refused" and r.get_json()["tasks"] == []


def test_complete_with_idempotency_key(client, dossier):
    tid = dossier["tasks"][0]["id"]
    h = {"Idempotency-Key": "done-1"}
    first = complete(client, tid, "canbo", headers=h)
    again = complete(client, tid, "canbo", headers=h)  # a retry after a lost answer: not a 409
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json() and again.headers.get("Idempotent-Replayed") == "true"
    assert_problem(complete(client, tid, "canbo", {"data": {"decision": "refuse"}}, headers=h), 422)
    assert_problem(complete(client, tid, "canbo"), 409)  # without the key it is a plain second completion


def test_data_that_stops_the_process_is_422_and_changes_nothing(client, dossier):
    tid = dossier["tasks"][0]["id"]  # the gateway after intake reads `decision`
    p = assert_problem(complete(client, tid, "tiepnhan", {"data": {}}), 422, "workflow_error")
    assert "decision" in p["message_vi"] and "decision" in p["message_en"]
    d = client.get(f"/api/v1/dossiers/{dossier['code']}", "tiepnhan").get_json()
    assert d["version"] == dossier["version"] and [t["id"] for t in d["tasks"]] == [tid]
    assert complete(client, tid, "tiepnhan").status_code == 200
