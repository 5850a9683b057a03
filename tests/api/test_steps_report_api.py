"""Over HTTP, on SQLite and PostgreSQL: each agency's report figures count the steps it performed for other
agencies' dossiers (`steps_performed` of GET /api/v1/reports/summary, docs/reports.md "Steps performed for
other agencies"), each step judged by its own due time on the performing agency's calendar. The Decree
63/2024 group: the commune receives two dossiers; the police register one residence late and leave the other
open past its due time; the social insurance, working side by side with the police, issues one card on time
and leaves the other open past its due time."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import time_machine
from openpyxl import load_workbook

from engine.demo import DEMO_AGENCY, DEMO_INSURANCE, DEMO_POLICE

from .test_birth_group_api import BIRTH, INTAKE, STEPS, received

VN = timezone(timedelta(hours=7))
RESIDENCE, CARD, RETURN = STEPS[2], STEPS[3], STEPS[4]


def at(client, *when):
    client._tokens.clear()  # a token issued at another moment may have expired at this one
    return time_machine.travel(datetime(*when, tzinfo=VN), tick=False)


def complete(client, step, user, data):
    task = next(t for t in client.get("/api/v1/tasks", user).get_json()["items"] if t["spec_name"] == step)
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", user, json={"data": data})
    assert r.status_code == 200, (step, r.get_json())


def to_police(client, hour) -> None:
    """The commune's part of the newest dossier: birth and signature, on Monday 2 March 2026."""
    with at(client, 2026, 3, 2, hour):
        complete(client, "Task_Birth", "hotich", BIRTH)
        complete(client, "Task_Approval", "chutich", {"approval": "approve"})


def report(client, first, last, agency=None, fmt="json"):
    q = f"/api/v1/reports/summary?from={first}&to={last}" + (f"&agency={agency}" if agency else "")
    r = client.get(q + f"&format={fmt}", "supervisor")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return r.get_json() if fmt == "json" else r.get_data()


def figures(section) -> dict:
    return {
        r["agency"]: (
            r["procedure_code"],
            r["handed_over"],
            (r["completed"]["total"], r["completed"]["on_time"], r["completed"]["late"]),
            (r["in_process"]["total"], r["in_process"]["within"], r["in_process"]["overdue"]),
            r["on_time_rate"],
        )
        for r in section["rows"]
    }


def test_each_agency_counts_the_steps_it_performed_for_other_agencies(app, client, password_hash):
    with at(client, 2026, 3, 2, 8):
        late_one = received(app, client, password_hash)
    to_police(client, 9)
    with at(client, 2026, 3, 2, 9, 30):
        r = client.post(
            "/api/v1/dossiers",
            "tiepnhan",
            json={"procedure_code": "LT63.01", "applicant": {"name": "Lê Văn Dũng"}, "channel": 1},
        )
        assert r.status_code == 201, r.get_json()
        open_one = r.get_json()["code"]
        complete(client, "Task_Intake", "tiepnhan", INTAKE)
    to_police(client, 10)
    with at(client, 2026, 3, 2, 14):  # the card: 1 working day, done the same afternoon, while the police work
        task = next(
            t
            for t in client.get("/api/v1/tasks", CARD[1]).get_json()["items"]
            if t["dossier_code"] == late_one and t["spec_name"] == CARD[0]
        )
        r = client.post(f"/api/v1/tasks/{task['id']}/complete", CARD[1], json={"data": CARD[2]})
        assert r.status_code == 200, r.get_json()
    # the residence is due 1 working day after it reached the police: done on the 13th, late
    with at(client, 2026, 3, 13, 10):
        task = next(
            t
            for t in client.get("/api/v1/tasks", "conganxa").get_json()["items"]
            if t["dossier_code"] == late_one and t["spec_name"] == "Task_Residence"
        )
        assert task["due_at"] < "2026-03-12"
        r = client.post(f"/api/v1/tasks/{task['id']}/complete", "conganxa", json={"data": RESIDENCE[2]})
        assert r.status_code == 200, r.get_json()
    with at(client, 2026, 3, 13, 15):  # the commune's return: its own dossier, never a performed step
        complete(client, RETURN[0], RETURN[1], RETURN[2])
    client._tokens.clear()
    assert client.get(f"/api/v1/dossiers/{late_one}", "tiepnhan").get_json()["status"] == "returned"
    open_steps = client.get(f"/api/v1/dossiers/{open_one}", "tiepnhan").get_json()["tasks"]
    assert sorted(t["agency"] for t in open_steps) == [DEMO_INSURANCE, DEMO_POLICE]

    with at(client, 2026, 4, 6, 9):
        march = report(client, "2026-03-01", "2026-03-31")
        early = report(client, "2026-03-02", "2026-03-02")
        police = report(client, "2026-03-01", "2026-03-31", DEMO_POLICE)
        commune = report(client, "2026-03-01", "2026-03-31", DEMO_AGENCY)
        text = report(client, "2026-03-01", "2026-03-31", fmt="csv").decode("utf-8-sig")
        book = load_workbook(io.BytesIO(report(client, "2026-03-01", "2026-03-31", fmt="xlsx")))

    # March: the police had two steps, one done late and one open past its due time; the insurance two (both
    # dossiers reached it at the signature, beside the police), one done on time and one open past its due time
    assert figures(march["steps_performed"]) == {
        DEMO_POLICE: ("LT63.01", 2, (1, 0, 1), (1, 0, 1), 0.0),
        DEMO_INSURANCE: ("LT63.01", 2, (1, 1, 0), (1, 0, 1), 50.0),
    }
    totals = march["steps_performed"]["totals"]
    assert (totals["handed_over"], totals["completed"]["total"], totals["in_process"]["overdue"]) == (4, 2, 2)
    assert march["steps_performed"]["rows"][0]["procedure_name"]
    # the dossiers stay the receiving commune's: two received, one completed
    assert [(r["agency"], r["received"]["total"], r["completed"]["total"]) for r in march["rows"]] == [
        (DEMO_AGENCY, 2, 1)
    ]
    # 2 March alone: both police steps open at its end and due the next morning; the two cards reached the
    # social insurance beside them: one done that afternoon, the other open and due the next morning
    assert figures(early["steps_performed"]) == {
        DEMO_POLICE: ("LT63.01", 2, (0, 0, 0), (2, 2, 0), 100.0),
        DEMO_INSURANCE: ("LT63.01", 2, (1, 1, 0), (1, 1, 0), 100.0),
    }
    # one agency: the police see their steps (and no dossier of their own); the commune performed none
    assert police["rows"] == [] and list(figures(police["steps_performed"])) == [DEMO_POLICE]
    assert commune["steps_performed"]["rows"] == [] and commune["rows"][0]["agency"] == DEMO_AGENCY

    # the files carry the same section after the dossiers' table
    lines = list(csv.reader(io.StringIO(text)))
    start = lines.index(["CÁC BƯỚC THỰC HIỆN CHO HỒ SƠ CỦA CƠ QUAN KHÁC (LIÊN THÔNG)"])
    assert lines[start - 1] == [] and lines[start + 1][0] == "Cơ quan thực hiện"
    police_line = next(line for line in lines[start:] if line[0] == DEMO_POLICE)
    assert police_line[3:10] == ["2", "1", "0", "1", "1", "0", "1"]
    assert lines[-1][0] == "Tổng cộng" and lines[-1][3] == "4"
    sheet = book["Bước liên thông"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert rows[0][0] == "Cơ quan thực hiện"
    assert [r[0] for r in rows[1:]] == [DEMO_INSURANCE, DEMO_POLICE, "Tổng cộng"]
    assert rows[2][3:7] == [2, 1, 0, 1]
