"""Over HTTP, the Decree 63/2024 inter-agency sample of bpmn/ (docs/bpmn-conventions.md, "The sample
procedures"): one submission at the commune desk; the commune's justice officer registers the birth and the
chairman signs; then, side by side (a parallel gateway), the commune police register the permanent residence
and the social insurance issues the health-insurance card; once both are done the desk returns the results.
Each agency's officer sees the step in their own inbox and nobody else's does; the timeline and the control
slip show each hand-over (the signature hands the dossier to both agencies at once); the dossier finishes
whichever of the two agencies finishes first."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine
from sqlalchemy import select

from engine.auth import Actor
from engine.demo import DEMO_AGENCY, DEMO_INSURANCE, DEMO_POLICE, create_demo_agencies
from engine.errors import ProcedureInvalid
from engine.migration import migrate_page
from engine.models import Dossier, ProcedureVersion, User
from engine.procedures import deploy, form_files_beside, load_path, load_procedure

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


SEQUENTIAL = ROOT / "tests" / "data" / "birth_residence_insurance_sequential.bpmn"  # the file before the fork


def received(app, client, password_hash, bpmn: bytes | None = None) -> str:
    """The group deployed beside its agencies and staff (the file of bpmn/, or `bpmn`, with the forms of
    bpmn/), one dossier received at the commune desk: its code."""
    svc = app.extensions["motcua"]
    create_demo_agencies(svc.db, ROOT / "bpmn" / "agencies.csv")  # what `motcua demo` registers
    path = FOLDER / "birth_residence_insurance.bpmn"
    with svc.db.uow() as s:
        deploy(s, load_procedure(bpmn or path.read_bytes(), path.name, form_files_beside(path)), "test")
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
    assert sorted((e["task"], e["from_agency"], e["to_agency"]) for e in handed) == [
        ("Task_Card", DEMO_AGENCY, DEMO_INSURANCE),  # the signature hands the dossier to both at once
        ("Task_Residence", DEMO_AGENCY, DEMO_POLICE),
        ("Task_Return", DEMO_INSURANCE, DEMO_AGENCY),  # the last of the two to finish hands it back
    ]
    slip = client.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()
    assert [(x["spec_name"], x["agency"], x["handed_over_from"]) for x in slip["steps"]] == [
        ("Task_Intake", DEMO_AGENCY, None),
        ("Task_Birth", DEMO_AGENCY, None),
        ("Task_Approval", DEMO_AGENCY, None),
        ("Task_Residence", DEMO_POLICE, DEMO_AGENCY),
        ("Task_Card", DEMO_INSURANCE, DEMO_AGENCY),
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


VN = timezone(timedelta(hours=7))


def at(client, day, hour, minute=0):
    """A moment in office hours of the week from Monday 2 March 2026 (UTC+7)."""
    client._tokens.clear()  # a token issued at another moment may have expired at this one
    return time_machine.travel(datetime(2026, 3, day, hour, minute, tzinfo=VN), tick=False)


def dossier(client, code):
    return client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()


@pytest.mark.parametrize("first", ["police", "insurance"])
def test_the_residence_and_the_card_run_side_by_side_and_either_may_finish_first(app, client, password_hash, first):
    """The signature opens both steps at once, each in its own agency's inbox with its own due time on that
    agency's calendar; the dossier shows 'in process' (4) while either is open; the return opens only when
    both are done, handed over by the one that finished last; the control slip lists the two steps in the
    order they were completed and counts each agency's own working hours, the dossier's elapsed time apart."""
    residence, card, back = STEPS[2], STEPS[3], STEPS[4]
    with at(client, 2, 8):
        code = received(app, client, password_hash)
    with at(client, 2, 9):
        complete(client, "hotich", "Task_Birth", BIRTH)
    with at(client, 2, 10):
        complete(client, "chutich", "Task_Approval", {"approval": "approve"})
        d = dossier(client, code)
        assert d["status"] == "in_process"
        assert sorted((t["spec_name"], t["agency"]) for t in d["tasks"]) == [
            ("Task_Card", DEMO_INSURANCE),
            ("Task_Residence", DEMO_POLICE),
        ]
        assert inbox(client, "conganxa") == ["Task_Residence"] and inbox(client, "baohiem") == ["Task_Card"]
        assert "Task_Return" not in inbox(client, "tiepnhan")
        # each step's own due time: 1 working day on its agency's calendar, both from the signature
        dues = {t["spec_name"]: t["due_at"] for t in d["tasks"]}
        assert dues["Task_Residence"] == dues["Task_Card"]
    done_first, done_last = (residence, card) if first == "police" else (card, residence)
    with at(client, 3, 9):
        complete(client, done_first[1], done_first[0], done_first[2])
        d = dossier(client, code)
        # one step still open at the other agency: still in process, nothing for the desk yet
        assert d["status"] == "in_process"
        assert [t["spec_name"] for t in d["tasks"]] == [done_last[0]]
        assert "Task_Return" not in inbox(client, "tiepnhan")
        assert inbox(client, done_first[1]) == [] and inbox(client, done_last[1]) == [done_last[0]]
    with at(client, 4, 8):  # the other step is past its own due time: late on the board, for its agency only
        board = client.get("/api/v1/monitor/overdue", "supervisor").get_json()
        assert [(t["spec_name"], t["agency"]) for t in board["tasks"] if t["dossier_code"] == code] == [
            (done_last[0], done_last[1] == "conganxa" and DEMO_POLICE or DEMO_INSURANCE)
        ]
        assert dossier(client, code)["overdue"] is False  # the dossier itself is within its 3 days
        complete(client, done_last[1], done_last[0], done_last[2])
        d = dossier(client, code)
        assert d["status"] == "processed" and [t["spec_name"] for t in d["tasks"]] == ["Task_Return"]
    with at(client, 4, 9):
        complete(client, "tiepnhan", back[0], back[2])
        d = dossier(client, code)
        assert d["status"] == "returned" and d["tasks"] == []
        slip = client.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()

    last_agency = DEMO_INSURANCE if first == "police" else DEMO_POLICE
    handed = [e["details"] for e in d["timeline"] if e["action"] == "step.handed_over"]
    assert sorted((e["task"], e["from_agency"], e["to_agency"]) for e in handed) == [
        ("Task_Card", DEMO_AGENCY, DEMO_INSURANCE),
        ("Task_Residence", DEMO_AGENCY, DEMO_POLICE),
        ("Task_Return", last_agency, DEMO_AGENCY),
    ]
    steps = {x["spec_name"]: x for x in slip["steps"]}
    assert [x["spec_name"] for x in slip["steps"]][3:] == [done_first[0], done_last[0], "Task_Return"]
    assert steps["Task_Residence"]["handed_over_from"] == steps["Task_Card"]["handed_over_from"] == DEMO_AGENCY
    assert steps["Task_Return"]["handed_over_from"] == last_agency
    assert steps[done_first[0]]["on_time"] is True and steps[done_last[0]]["on_time"] is False
    # the two overlapping steps each count their own time: the agencies' hours add up to the dossier's
    # elapsed hours plus the time both ran together (the shorter of the two, as both began at the signature)
    short, long_ = steps[done_first[0]]["working_hours"], steps[done_last[0]]["working_hours"]
    assert 0 < short < long_
    shares = {a["agency"]: a for a in slip["agencies"]}
    assert shares[DEMO_POLICE]["steps"] == shares[DEMO_INSURANCE]["steps"] == 1
    assert shares[DEMO_AGENCY]["steps"] == 4
    total = sum(a["working_hours"] for a in slip["agencies"])
    assert total == pytest.approx(slip["elapsed_working_hours"] + short, abs=0.05)
    assert sum(a["percent"] for a in slip["agencies"]) == pytest.approx(100, abs=0.2)


def test_refused_at_the_signature_the_group_never_forks(app, client, password_hash):
    """A refusal before the parallel gateway: neither agency gets a step, no hand-over, no share."""
    code = received(app, client, password_hash)
    complete(client, "hotich", "Task_Birth", BIRTH)
    complete(client, "chutich", "Task_Approval", {"approval": "refuse", "note": "Không thuộc thẩm quyền"})
    assert inbox(client, "conganxa") == [] and inbox(client, "baohiem") == []
    slip = client.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()
    assert [x["spec_name"] for x in slip["steps"]] == ["Task_Intake", "Task_Birth", "Task_Approval"]
    assert [a["agency"] for a in slip["agencies"]] == [DEMO_AGENCY]
    assert dossier(client, code)["status"] == "returned"


def test_the_parallel_file_is_the_next_version_and_running_dossiers_keep_theirs(app, client, password_hash):
    """Deployed over the earlier file (the residence, then the card), the parallel one is the next version of
    LT63.01; a dossier started before goes on one step after the other, a new one opens both at once."""
    svc = app.extensions["motcua"]
    running = received(app, client, password_hash, SEQUENTIAL.read_bytes())
    with svc.db.uow() as s:
        result = deploy(s, load_path(FOLDER / "birth_residence_insurance.bpmn"), "test")
    assert (result.code, result.version, result.created) == ("LT63.01", 2, True)
    r = client.post("/api/v1/dossiers", "tiepnhan", json={"procedure_code": "LT63.01", "applicant": {"name": "B"}})
    assert r.status_code == 201, r.get_json()
    new = r.get_json()["code"]
    complete(client, "tiepnhan", "Task_Intake", INTAKE)
    for code in (running, new):
        for step, user, data in STEPS[:2]:
            task = next(
                t
                for t in client.get("/api/v1/tasks", user).get_json()["items"]
                if t["spec_name"] == step and t["dossier_code"] == code
            )
            assert client.post(f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data}).status_code == 200
    with svc.db.read() as s:
        versions = dict(
            s.execute(
                select(Dossier.code, ProcedureVersion.version)
                .join(ProcedureVersion, ProcedureVersion.id == Dossier.procedure_version_id)
                .where(Dossier.code.in_([running, new]))
            ).all()
        )
    assert versions == {running: 1, new: 2}
    assert [t["spec_name"] for t in dossier(client, running)["tasks"]] == ["Task_Residence"]
    assert sorted(t["spec_name"] for t in dossier(client, new)["tasks"]) == ["Task_Card", "Task_Residence"]


def test_a_dossier_at_the_residence_of_the_earlier_file_is_not_moved_behind_the_fork(app, client, password_hash):
    """Moving a dossier that waits at the residence of the one-after-the-other file to the parallel version
    would leave it waiting at the join for a card branch nobody opened: it is left alone, naming the fork;
    one still at the birth moves (docs/bpmn-conventions.md 11.1)."""
    svc = app.extensions["motcua"]
    at_residence = received(app, client, password_hash, SEQUENTIAL.read_bytes())
    complete(client, "hotich", "Task_Birth", BIRTH)
    complete(client, "chutich", "Task_Approval", {"approval": "approve"})
    r = client.post("/api/v1/dossiers", "tiepnhan", json={"procedure_code": "LT63.01", "applicant": {"name": "B"}})
    at_birth = r.get_json()["code"]
    complete(client, "tiepnhan", "Task_Intake", INTAKE)
    with svc.db.uow() as s:
        deploy(s, load_path(FOLDER / "birth_residence_insurance.bpmn"), "test")
    admin = Actor("quantri", frozenset({"admin"}), "000.00.00.H56", "quantri")
    items = {i["code"]: i for i in migrate_page(svc.dossiers, admin, "LT63.01", 2)["items"]}
    assert items[at_residence]["outcome"] == "left_alone" and "Gateway_Fork" in items[at_residence]["error"]
    assert items[at_birth]["outcome"] == "migrated"
    # left alone, it goes on as it started: the card after the residence
    complete(client, "conganxa", "Task_Residence", STEPS[2][2])
    assert "Task_Card" in inbox(client, "baohiem")
    # moved, it forks: both steps open after the signature
    complete(client, "hotich", "Task_Birth", BIRTH)
    complete(client, "chutich", "Task_Approval", {"approval": "approve"})
    assert sorted(t["spec_name"] for t in dossier(client, at_birth)["tasks"]) == ["Task_Card", "Task_Residence"]
