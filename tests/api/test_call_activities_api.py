"""Call activities across files through the API: deploy names a missing callee; a dossier runs the called
procedure's step with its role and form (docs/bpmn-conventions.md, "Gọi thủ tục khác / Calling another
procedure")."""

from __future__ import annotations

import io
import json

from ..test_call_activities import SUB_FORM, callee, caller


def test_deploy_through_the_api_names_a_missing_callee(client):
    # the modeler's check says it first: the server holds procedures, so a missing callee is a problem
    data = {"file": (io.BytesIO(caller(called="9.999999")), "main.bpmn")}
    check = client.post("/api/v1/procedures/validate", "analyst", data=data, content_type="multipart/form-data")
    assert check.status_code == 200 and check.get_json()["valid"] is False
    assert [p["element"] for p in check.get_json()["problems"]] == ["Call_Sub"]
    data = {"file": (io.BytesIO(caller(called="9.999999")), "main.bpmn")}
    r = client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")
    assert r.status_code == 422, r.get_json()
    assert [p["element"] for p in r.get_json()["problems"]] == ["Call_Sub"]
    data = {"file": (io.BytesIO(callee()), "sub.bpmn"), "forms": [(io.BytesIO(SUB_FORM), "sub_form.json")]}
    r = client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    data = {"file": (io.BytesIO(caller()), "main.bpmn")}
    r = client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    r = client.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "9.000401", "applicant": {"name": "An"}, "channel": 1, "data": {}},
    )
    assert r.status_code == 201, r.get_json()
    task = r.get_json()["tasks"][0]
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", "tiepnhan", json={"data": {}})
    assert r.status_code == 200, r.get_json()
    (sub,) = r.get_json()["tasks"]
    assert sub["roles"] == ["police_officer"] and sub["name"] == "Thẩm định (thủ tục con)"
    # the step's form is the called procedure's
    got = client.get(f"/api/v1/tasks/{sub['id']}", "admin").get_json()
    assert got["form"]["title"] == "Ý kiến thẩm định"
    r = client.post(f"/api/v1/tasks/{sub['id']}/complete", "admin", json={"data": {}})
    assert r.status_code == 422 and "opinion" in json.dumps(r.get_json())


def test_the_catalogue_entry_shows_the_called_procedures_steps_and_documents(client):
    """GET /public/procedures/{code} of a calling procedure lists the called procedure's steps where it calls
    them, and its documents, each marked with the callee's code (docs/bpmn-conventions.md 9.3)."""
    form = json.loads(SUB_FORM)
    form["x-documents"] = [{"key": "xac_nhan_cu_tru", "name": "Giấy xác nhận cư trú", "required": True}]
    sub = {
        "file": (io.BytesIO(callee()), "sub.bpmn"),
        "forms": [(io.BytesIO(json.dumps(form).encode()), "sub_form.json")],
    }
    for data in (sub, {"file": (io.BytesIO(caller()), "main.bpmn")}):
        r = client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")
        assert r.status_code == 201, r.get_json()
    entry = client.get("/api/v1/public/procedures/9.000401").get_json()
    assert entry["steps"] == [
        {"name": "Tiếp nhận", "deadline": None},
        {"name": "Thẩm định (thủ tục con)", "deadline": "2 working days", "procedure": "9.000402"},
        {"name": "Trả kết quả", "deadline": None},
    ]
    assert [(d["key"], d["required"], d.get("procedure")) for d in entry["documents"]] == [
        ("xac_nhan_cu_tru", True, "9.000402")
    ]
    own = client.get("/api/v1/public/procedures/9.000402").get_json()  # the callee's own entry: no marks
    assert own["steps"] == [{"name": "Thẩm định (thủ tục con)", "deadline": "2 working days"}]
    assert "procedure" not in own["documents"][0]


def test_the_procedure_details_list_the_called_procedures_steps(client):
    """GET /procedures/{code} (staff) of a calling procedure gives each procedure it calls with the version a
    dossier received now would run and its steps."""
    sub = {"file": (io.BytesIO(callee()), "sub.bpmn"), "forms": [(io.BytesIO(SUB_FORM), "sub_form.json")]}
    for data in (sub, {"file": (io.BytesIO(caller()), "main.bpmn")}):
        r = client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")
        assert r.status_code == 201, r.get_json()
    got = client.get("/api/v1/procedures/9.000401", "analyst").get_json()
    assert [t["id"] for t in got["user_tasks"]] == ["Task_Intake", "Task_Return"]
    (called,) = got["called"]
    assert (called["code"], called["version"], called["name"]) == ("9.000402", 1, "Thủ tục con")
    assert [(t["id"], t["name"], t["roles"], t["deadline"]) for t in called["user_tasks"]] == [
        ("Task_Intake", "Thẩm định (thủ tục con)", ["police_officer"], "2 working days")
    ]
    assert client.get("/api/v1/procedures/9.000402", "analyst").get_json()["called"] == []
