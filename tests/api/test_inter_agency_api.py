"""Over HTTP: an inter-agency procedure (docs/bpmn-conventions.md, "Inter-agency procedures"). The commune
receives; its justice officer registers the birth; the commune police's inbox, not the commune's, gets the
residence step, which they complete; the timeline shows each hand-over between agencies (the birth hands the
dossier to the police and the social insurance at once: parallel branches)."""

from __future__ import annotations

import io

from engine import agencies
from engine.auth import Actor
from engine.models import User
from engine.procedures import deploy_bytes
from tests.test_inter_agency import COMMUNE, GROUP, INSURANCE, POLICE

from .helpers import assert_problem

ADMIN = Actor("quantri", frozenset({"admin"}), "000.00.00.H56", "quantri")


def complete(client, task_id, user, data=None):
    return client.post(f"/api/v1/tasks/{task_id}/complete", user, json={"data": data or {}})


def test_each_agency_works_its_own_step(app, client, password_hash):
    svc = app.extensions["motcua"]
    for code in (COMMUNE, POLICE, INSURANCE):
        agencies.put_agency(svc.db, ADMIN, code, {"name": f"Cơ quan {code}"})
    deploy_bytes(svc.db, GROUP, "lien_thong.bpmn")
    with svc.db.uow() as s:
        for username, roles, agency in (("tuphap", ["civil_status"], COMMUNE), ("congan", ["police_officer"], POLICE)):
            s.add(User(username=username, password_hash=password_hash, roles=roles, agency=agency, full_name=username))

    body = {"procedure_code": "9.063024", "applicant": {"name": "Nguyễn Văn An"}, "channel": 1}
    r = client.post("/api/v1/dossiers", "tiepnhan", json={**body, "data": {"child_commune": COMMUNE}})
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    assert complete(client, d["tasks"][0]["id"], "tiepnhan").status_code == 200
    birth = client.get("/api/v1/tasks", "tuphap").get_json()["items"]
    assert [t["spec_name"] for t in birth] == ["birth"]
    assert complete(client, birth[0]["id"], "tuphap").status_code == 200

    assert client.get("/api/v1/tasks", "tuphap").get_json()["items"] == []
    step = client.get("/api/v1/tasks", "congan").get_json()["items"]
    assert [(t["spec_name"], t["agency"]) for t in step] == [("residence", POLICE)]
    assert_problem(complete(client, step[0]["id"], "tiepnhan"), 404)  # the commune cannot act on it
    assert complete(client, step[0]["id"], "congan").status_code == 200

    timeline = client.get(f"/api/v1/dossiers/{d['code']}", "tiepnhan").get_json()["timeline"]
    handed = [e for e in timeline if e["action"] == "step.handed_over"]
    assert sorted((e["details"]["from_agency"], e["details"]["to_agency"]) for e in handed) == [
        (COMMUNE, INSURANCE),
        (COMMUNE, POLICE),
    ]


def _upload(content: bytes, name="lien_thong.bpmn"):
    return {"file": (io.BytesIO(content), name)}


def test_an_unknown_agency_is_refused_naming_the_lane_or_the_task(app, client):
    """POST /procedures refuses a lane or a task naming an agency that is not registered, naming the element
    where the code is written, and deploys nothing; the modeler's check (POST /procedures/validate) says the
    same once any agency is registered, and only warns while none is (docs/bpmn-conventions.md)."""
    svc = app.extensions["motcua"]

    def check():
        r = client.post("/api/v1/procedures/validate", "admin", data=_upload(GROUP), content_type="multipart/form-data")
        assert r.status_code == 200
        return r.get_json()

    nothing = check()  # a fresh install: no agency registered, nothing can be judged yet
    assert nothing["valid"] is True and nothing["problems"] == []
    assert {w["element"] for w in nothing["warnings"] if "agency" in w["message_en"]} == {"police", "card"}

    agencies.put_agency(svc.db, ADMIN, COMMUNE, {"name": "UBND xã"})
    body = assert_problem(
        client.post("/api/v1/procedures", "admin", data=_upload(GROUP), content_type="multipart/form-data"), 422
    )
    problems = {p["element"]: p["message_en"] for p in body["problems"]}
    assert set(problems) == {"police", "card"}, body  # the lane that names the police, the task that names BHXH
    assert POLICE in problems["police"] and "residence" in problems["police"] and "not registered" in problems["police"]
    assert INSURANCE in problems["card"]
    assert client.get("/api/v1/procedures/9.063024", "admin").status_code == 404  # nothing deployed

    judged = check()
    assert judged["valid"] is False and {p["element"] for p in judged["problems"]} == {"police", "card"}

    agencies.put_agency(svc.db, ADMIN, POLICE, {"name": "Công an xã"})
    agencies.put_agency(svc.db, ADMIN, INSURANCE, {"name": "BHXH tỉnh"})
    assert check() | {"warnings": []} == {
        "valid": True,
        "code": "9.063024",
        "name": "Lien thong khai sinh, thuong tru, BHYT",
        "process_id": "lien_thong",
        "problems": [],
        "warnings": [],
    }
    r = client.post("/api/v1/procedures", "admin", data=_upload(GROUP), content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
