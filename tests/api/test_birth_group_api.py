"""Over HTTP, the Decree 63/2024 inter-agency sample of bpmn/ (docs/bpmn-conventions.md, "The sample
procedures"): one submission at the commune desk; the commune's justice officer registers the birth and the
chairman signs; the commune police register the permanent residence; the social insurance issues the
health-insurance card; the desk returns the results. Each agency's officer sees the step in their own inbox
and nobody else's does; the timeline and the control slip show each hand-over; the dossier finishes."""

from __future__ import annotations

import pytest

from engine.demo import DEMO_AGENCY, DEMO_INSURANCE, DEMO_POLICE, create_demo_agencies
from engine.errors import ProcedureInvalid
from engine.models import User
from engine.procedures import deploy, load_path

from .helpers import ROOT, assert_problem

FOLDER = ROOT / "bpmn" / "birth_residence_insurance"
STAFF = [  # username, roles, agency: besides the API tests' tiepnhan (receiver at the commune)
    ("hotich", ["civil_status"], DEMO_AGENCY),
    ("chutich", ["chairman"], DEMO_AGENCY),
    ("congan_xa_nha", ["police_officer"], DEMO_AGENCY),  # the commune's own police role: not the police agency
    ("conganxa", ["police_officer"], DEMO_POLICE),
    ("baohiem", ["insurance_officer"], DEMO_INSURANCE),
]
INTAKE = {
    "requester_relationship": "mother",
    "residence_address": "Số 12, thôn Đông, xã Diên An",
    "household_head_name": "Nguyễn Văn Bình",
    "household_head_relationship": "con",
    "health_facility": "Trạm y tế xã Diên An",
    "documents_received": ["to_khai_lien_thong", "giay_chung_sinh", "giay_to_tuy_than"],
    "decision": "accept",
}
BIRTH = {
    "child_name": "Nguyễn Thị An",
    "child_gender": "female",
    "child_birth_date": "2026-02-20",
    "place_of_birth": "Trạm y tế xã Diên An",
    "opinion": "Hồ sơ đầy đủ, hợp lệ",
    "proposal": "approve",
}
STEPS = [  # step, who does it, its form's data
    ("Task_Birth", "hotich", BIRTH),
    ("Task_Approval", "chutich", {"approval": "approve"}),
    ("Task_Residence", "conganxa", {"residence_registered": "registered", "residence_register_date": "2026-03-03"}),
    (
        "Task_Card",
        "baohiem",
        {"insurance_card_number": "7912345678", "card_valid_from": "2026-03-04", "card_valid_to": "2032-02-19"},
    ),
    ("Task_Return", "tiepnhan", {"returned_to": "Trần Thị Cúc", "return_method": "tai_quay"}),
]
EVERYONE = ["tiepnhan"] + [u for u, _, _ in STAFF]


def inbox(client, user) -> list[str]:
    r = client.get("/api/v1/tasks", user)
    assert r.status_code == 200, r.get_json()
    return [t["spec_name"] for t in r.get_json()["items"]]


def received(app, client, password_hash) -> str:
    """The group deployed beside its agencies and staff, one dossier received at the commune desk: its code."""
    svc = app.extensions["motcua"]
    create_demo_agencies(svc.db, ROOT / "bpmn" / "agencies.csv")  # what `motcua demo` registers
    with svc.db.uow() as s:
        deploy(s, load_path(FOLDER / "birth_residence_insurance.bpmn"), "test")
        for username, roles, agency in STAFF:
            s.add(User(username=username, password_hash=password_hash, roles=roles, agency=agency, full_name=username))

    body = {
        "procedure_code": "LT63.01",
        "applicant": {"name": "Trần Thị Cúc", "id_number": "001199000222"},
        "channel": 1,
    }
    r = client.post("/api/v1/dossiers", "tiepnhan", json=body)
    assert r.status_code == 201, r.get_json()
    code, intake = r.get_json()["code"], r.get_json()["tasks"][0]
    assert intake["spec_name"] == "Task_Intake"
    r = client.post(f"/api/v1/tasks/{intake['id']}/complete", "tiepnhan", json={"data": INTAKE})
    assert r.status_code == 200, r.get_json()
    return code


def complete(client, user, step, data):
    task = next(t for t in client.get("/api/v1/tasks", user).get_json()["items"] if t["spec_name"] == step)
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert r.status_code == 200, (step, r.get_json())


def test_three_agencies_each_do_their_step_of_the_birth_group(app, client, password_hash):
    code = received(app, client, password_hash)

    for step, user, data in STEPS:
        for other in EVERYONE:  # the step is in its officer's inbox only
            assert (step in inbox(client, other)) == (other == user), (step, other)
        task = next(t for t in client.get("/api/v1/tasks", user).get_json()["items"] if t["spec_name"] == step)
        if user != "tiepnhan":  # the commune's desk: another role's step is forbidden, another agency's unseen
            elsewhere = task["agency"] != DEMO_AGENCY
            r = client.post(f"/api/v1/tasks/{task['id']}/complete", "tiepnhan", json={"data": data})
            assert_problem(r, 404 if elsewhere else 403)
        if step == "Task_Residence":  # the commune's own police role is not the police agency
            r = client.post(f"/api/v1/tasks/{task['id']}/complete", "congan_xa_nha", json={"data": data})
            assert_problem(r, 404)
        r = client.post(f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
        assert r.status_code == 200, (step, r.get_json())

    d = client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()
    assert d["status"] == "returned" and d["tasks"] == []
    handed = [e["details"] for e in d["timeline"] if e["action"] == "step.handed_over"]
    assert [(e["task"], e["from_agency"], e["to_agency"]) for e in handed] == [
        ("Task_Residence", DEMO_AGENCY, DEMO_POLICE),
        ("Task_Card", DEMO_POLICE, DEMO_INSURANCE),
        ("Task_Return", DEMO_INSURANCE, DEMO_AGENCY),
    ]
    slip = client.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()
    assert [(x["spec_name"], x["agency"], x["handed_over_from"]) for x in slip["steps"]] == [
        ("Task_Intake", DEMO_AGENCY, None),
        ("Task_Birth", DEMO_AGENCY, None),
        ("Task_Approval", DEMO_AGENCY, None),
        ("Task_Residence", DEMO_POLICE, DEMO_AGENCY),
        ("Task_Card", DEMO_INSURANCE, DEMO_POLICE),
        ("Task_Return", DEMO_AGENCY, DEMO_INSURANCE),
    ]
    assert [(a["agency"], a["steps"]) for a in slip["agencies"]] == [
        (DEMO_AGENCY, 4),
        (DEMO_POLICE, 1),
        (DEMO_INSURANCE, 1),
    ]


def test_sent_back_then_refused_by_the_chairman_never_reaches_the_police(app, client, password_hash):
    code = received(app, client, password_hash)
    complete(client, "hotich", "Task_Birth", BIRTH)
    complete(client, "chutich", "Task_Approval", {"approval": "send_back", "note": "Ghi lại nơi sinh"})
    complete(client, "hotich", "Task_Birth", BIRTH)
    complete(client, "chutich", "Task_Approval", {"approval": "refuse", "note": "Không thuộc thẩm quyền"})
    d = client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()
    # a refusal after appraisal is a result handed back (docs/bpmn-conventions.md 12): returned, no open step
    assert d["status"] == "returned" and d["tasks"] == [] and "Task_Return" not in inbox(client, "tiepnhan")
    assert [e for e in d["timeline"] if e["action"] == "step.handed_over"] == []
    assert inbox(client, "conganxa") == [] and inbox(client, "baohiem") == []


def test_the_group_deploys_only_once_its_agencies_are_registered(app):
    svc = app.extensions["motcua"]
    with pytest.raises(ProcedureInvalid) as err, svc.db.uow() as s:
        deploy(s, load_path(FOLDER / "birth_residence_insurance.bpmn"), "test")
    assert {p["element"] for p in err.value.details} == {"Lane_Police", "Lane_Insurance"}  # the lanes that name them
