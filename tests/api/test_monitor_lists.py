"""The board's lists paged on the server: the due-soon dossiers (GET /monitor/due-soon) and the overdue steps
paged apart from the overdue dossiers (GET /monitor/overdue?tasks_page=)."""

from __future__ import annotations

from datetime import datetime, timedelta

import time_machine

from engine.calendar import VN_TZ

from .helpers import Client, assert_problem, new_dossier


def at(when: datetime):
    return time_machine.travel(when, tick=False)


def test_due_soon_lists_what_the_board_counts_soonest_first_one_page_at_a_time(app):
    made = []
    for hour in (9, 10, 11):
        with at(datetime(2026, 3, 2, hour, 0, tzinfo=VN_TZ)):
            made.append(new_dossier(Client(app)))  # tokens issued at this (travelled) time
    with at(datetime(2026, 3, 4, 9, 0, tzinfo=VN_TZ)):
        later = new_dossier(Client(app))
    dues = [datetime.fromisoformat(d["due_at"]) for d in made]
    assert dues == sorted(dues) and datetime.fromisoformat(later["due_at"]) > dues[-1] + timedelta(hours=24)
    with at(dues[0] - timedelta(hours=1)):
        client = Client(app)
        first = client.get("/api/v1/monitor/due-soon?per_page=2", "supervisor").get_json()
        assert first["total"] == 3 and first["due_soon_hours"] == 24
        assert [d["code"] for d in first["items"]] == [made[0]["code"], made[1]["code"]]
        assert first["items"][0]["hours_left"] == 1.0 and first["items"][0]["held_by"]
        second = client.get("/api/v1/monitor/due-soon?per_page=2&page=2", "supervisor").get_json()
        assert [d["code"] for d in second["items"]] == [made[2]["code"]]
        board = client.get("/api/v1/monitor/overdue", "supervisor").get_json()
        assert board["counts"]["totals"]["due_soon_dossiers"] == 3
        r = client.get(f"/api/v1/monitor/due-soon?procedure_code={made[0]['procedure_code']}&agency=khac", "tiepnhan")
        assert_problem(r, 403)  # staff see their own agency only
        assert client.get("/api/v1/monitor/due-soon", "tiepnhan").get_json()["total"] == 3
        assert (
            "per_page"
            in assert_problem(client.get("/api/v1/monitor/due-soon?per_page=101", "supervisor"), 422)["fields"]
        )
    with at(dues[0] + timedelta(minutes=1)):  # the first is overdue now: off the due-soon list
        client = Client(app)
        body = client.get("/api/v1/monitor/due-soon", "supervisor").get_json()
        assert [d["code"] for d in body["items"]] == [made[1]["code"], made[2]["code"]]


def test_overdue_steps_page_apart_from_overdue_dossiers(app):
    client = Client(app)
    with at(datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ)):
        made = []
        for _ in range(3):  # the appraisal step (due in a working day) ready
            task = new_dossier(client)["tasks"][0]
            r = client.post(f"/api/v1/tasks/{task['id']}/complete", "canbo", json={"data": {"decision": "accept"}})
            assert r.status_code == 200, r.get_json()
            made.append(r.get_json())
    with at(datetime(2026, 4, 2, 9, 0, tzinfo=VN_TZ)):
        client = Client(app)
        seen = []
        for n in (1, 2, 3):  # the steps' pages move; the dossiers' page stays on its first
            body = client.get(f"/api/v1/monitor/overdue?per_page=1&tasks_page={n}", "supervisor").get_json()
            assert body["page"] == 1 and body["tasks_page"] == n and body["total_tasks"] == 3
            assert [d["code"] for d in body["dossiers"]] == [made[0]["code"]]
            seen += [t["dossier_code"] for t in body["tasks"]]
        assert sorted(seen) == sorted(d["code"] for d in made)
        same = client.get("/api/v1/monitor/overdue?per_page=1&page=2", "supervisor").get_json()
        assert same["tasks_page"] == 2 and len(same["tasks"]) == 1  # without tasks_page: the same page as page
