"""Over HTTP: an inter-agency procedure (docs/bpmn-conventions.md, "Inter-agency procedures"). The commune
receives; its justice officer registers the birth; the commune police's inbox, not the commune's, gets the
residence step, which they complete; the timeline shows each hand-over between agencies."""

from __future__ import annotations

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
    assert [(e["details"]["from_agency"], e["details"]["to_agency"]) for e in handed] == [
        (COMMUNE, POLICE),
        (POLICE, INSURANCE),
    ]
