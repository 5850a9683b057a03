"""Over HTTP: staff of a performing agency (one that holds or held a step of an inter-agency dossier) read
that dossier, its steps, history and documents, and nothing else of the receiving agency's; they change
nothing of the dossier itself; an officer of a fourth agency, or of a performing agency before its step,
gets the 404 of an unknown dossier (docs/security.md, "Performing agencies")."""

from __future__ import annotations

import io

from engine.demo import DEMO_AGENCY, DEMO_INSURANCE, DEMO_POLICE
from engine.models import User

from .helpers import assert_problem, new_dossier
from .test_birth_group_api import BIRTH, STEPS, complete, received

ELSEWHERE = "000.05.15.H56"  # another commune's police: a fourth agency
READS = ["", "/steps", "/history", "/attachments", "/deliveries", "/incidents"]


def reads(client, user, code) -> list[int]:
    return [client.get(f"/api/v1/dossiers/{code}{path}", user).status_code for path in READS]


def test_a_performing_agency_reads_only_the_dossiers_it_has_a_step_of(app, client, password_hash):
    code = received(app, client, password_hash)
    with app.extensions["motcua"].db.uow() as s:
        s.add(User(username="congan_khac", password_hash=password_hash, roles=["police_officer", "receiver"],
                   agency=ELSEWHERE, full_name="Công an xã khác"))  # fmt: skip
        s.add(User(username="motcua_ca", password_hash=password_hash, roles=["receiver"], agency=DEMO_POLICE,
                   full_name="Một cửa công an"))  # fmt: skip  # the police's own desk: a performer too
    own = new_dossier(client)["code"]  # another dossier of the commune, never handed over

    # before its step, the police see the dossier as anyone outside the commune does
    assert reads(client, "conganxa", code) == [404] * len(READS)
    complete(client, "hotich", "Task_Birth", BIRTH)
    complete(client, "chutich", "Task_Approval", {"approval": "approve"})

    # the residence step is the police's: they read the dossier, with the applicant's data as officers do
    assert reads(client, "conganxa", code) == [200] * len(READS)
    d = client.get(f"/api/v1/dossiers/{code}", "conganxa").get_json()
    assert d["agency"] == DEMO_AGENCY and d["applicant"]["id_number"] == "001199000222"
    assert d["data"]["child_name"] == BIRTH["child_name"]
    slip = client.get(f"/api/v1/dossiers/{code}/steps", "conganxa").get_json()
    assert sorted(s["agency"] for s in slip["steps"][-2:]) == sorted([DEMO_POLICE, DEMO_INSURANCE])
    # nothing else of the commune's: its other dossier, its list
    assert_problem(client.get(f"/api/v1/dossiers/{own}", "conganxa"), 404)
    assert_problem(client.get(f"/api/v1/dossiers/{own}/steps", "conganxa"), 404)
    assert_problem(client.get(f"/api/v1/dossiers?agency={DEMO_AGENCY}", "conganxa"), 403)
    # the social insurance's step came at the same time (side by side with the police's); a fourth agency
    # never sees it
    assert reads(client, "baohiem", code) == [200] * len(READS)
    assert reads(client, "congan_khac", code) == [404] * len(READS)

    # reading is all: the dossier's own changes stay with the receiving agency
    retry = f"/api/v1/dossiers/{code}/incidents/00000000-0000-0000-0000-000000000000/retry"
    assert_problem(client.post(retry, "conganxa"), 403)
    assert_problem(client.post(retry, "congan_khac"), 404)
    stop = {"reason": "Dừng thử"}
    assert_problem(client.post(f"/api/v1/dossiers/{code}/stop", "motcua_ca", json=stop), 403)
    assert_problem(client.post(f"/api/v1/dossiers/{code}/stop", "congan_khac", json=stop), 404)
    upload = {"file": (io.BytesIO(b"%PDF-1.4 thu"), "giay.pdf", "application/pdf")}
    r = client.post(f"/api/v1/dossiers/{code}/attachments", "motcua_ca", data=upload)
    assert_problem(r, 403)
    assert client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()["status"] == d["status"]

    residence, card = STEPS[2], STEPS[3]
    complete(client, residence[1], residence[0], residence[2])
    # the police held a step: they still read it; the social insurance still holds one
    assert reads(client, "conganxa", code) == [200] * len(READS)
    assert reads(client, "baohiem", code) == [200] * len(READS)
    complete(client, card[1], card[0], card[2])
    slip = client.get(f"/api/v1/dossiers/{code}/steps", "baohiem").get_json()
    assert [a["agency"] for a in slip["agencies"]] == [DEMO_AGENCY, DEMO_POLICE, DEMO_INSURANCE]
    assert reads(client, "congan_khac", code) == [404] * len(READS)
