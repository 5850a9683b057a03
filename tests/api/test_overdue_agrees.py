"""Overdue is one rule (engine/domain.py, docs/deadlines.md "Overdue"): the dossier list, the dossier itself,
the inbox, the supervisors' monitor and the period report agree on which dossiers and steps are overdue.

Procedure 9.000001 (bench/four_steps.bpmn): 3 working days; intake → appraise (1 working day) → approve →
return (status 9, processed). Received Mon 02/03/2026 09:00 → due Thu 05/03/2026 09:00.
"""

from __future__ import annotations

from datetime import datetime

import time_machine

from engine.calendar import VN_TZ

from .helpers import Client, new_dossier

ACCEPT = {"data": {"decision": "accept"}}


def at(*args):
    return time_machine.travel(datetime(*args, tzinfo=VN_TZ), tick=False)


def complete_open_task(client: Client, dossier: dict, user: str = "canbo") -> dict:
    (task,) = dossier["tasks"]
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", user, json=ACCEPT)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def supplement(app, code: str) -> None:
    client = Client(app)  # a token issued at this (travelled) time
    r = client.post(f"/api/v1/dossiers/{code}/supplement-request", "tiepnhan", json={"reason": "Thiếu giấy tờ"})
    assert r.status_code == 200, r.get_json()


def test_list_dossier_inbox_monitor_and_report_agree_on_overdue(app):
    client = Client(app)
    with at(2026, 3, 2, 9, 0):
        running = complete_open_task(client, new_dossier(client))  # appraise ready, due Tue 03/03 09:00
        processed = new_dossier(client)
        for _ in range(3):  # intake, appraise, approve: status 9, its result waits at the counter
            processed = complete_open_task(client, processed)
        paused_late = complete_open_task(client, new_dossier(client))  # appraise ready, paused after due below
        paused_early = new_dossier(client)
    assert processed["status"] == "processed" and processed["processed_at"]
    with at(2026, 3, 3, 8, 0):
        supplement(app, paused_early["code"])  # paused with time left
    with at(2026, 3, 6, 10, 0):
        supplement(app, paused_late["code"])  # paused when already past its due time
    with at(2026, 3, 9, 8, 0):
        fresh = new_dossier(Client(app))  # due Thu 12/03: not overdue yet
    everyone = {d["code"] for d in (running, processed, paused_late, paused_early, fresh)}

    with at(2026, 3, 10, 10, 0):
        client = Client(app)  # tokens issued now
        late_task = running["tasks"][0]["id"]

        def codes(query: str) -> set[str]:
            r = client.get(f"/api/v1/dossiers?per_page=100{query}", "supervisor")
            assert r.status_code == 200, r.get_json()
            return {d["code"] for d in r.get_json()["items"]}

        assert codes("&overdue=true") == {running["code"]}
        assert codes("&overdue=false") == everyone - {running["code"]}
        flags = {}
        for code in everyone:
            body = client.get(f"/api/v1/dossiers/{code}", "supervisor").get_json()
            flags[code] = body["overdue"]
            for task in body["tasks"]:  # a paused dossier's step is not overdue either
                assert task["overdue"] == (task["id"] == late_task), (code, task)
        assert flags == {code: code == running["code"] for code in everyone}

        inbox = client.get("/api/v1/tasks?overdue=true&per_page=100", "canbo").get_json()["items"]
        assert [t["id"] for t in inbox] == [late_task]
        not_late = client.get("/api/v1/tasks?overdue=false&per_page=100", "canbo").get_json()["items"]
        assert late_task not in {t["id"] for t in not_late}
        assert paused_late["tasks"][0]["id"] in {t["id"] for t in not_late}
        assert all(not t["overdue"] for t in not_late)

        board = client.get("/api/v1/monitor/overdue?per_page=100", "supervisor").get_json()
        assert [d["code"] for d in board["dossiers"]] == [running["code"]]
        assert [t["id"] for t in board["tasks"]] == [late_task]
        assert (board["total_dossiers"], board["total_tasks"]) == (1, 1)

        r = client.get("/api/v1/reports/summary?from=2026-03-10&to=2026-03-10", "supervisor")
        assert r.status_code == 200, r.get_json()
        in_process = r.get_json()["totals"]["in_process"]
        # In process at the day's end: running, both paused, fresh (processed is done); overdue: running only.
        assert in_process == {"total": 4, "within": 3, "overdue": 1}
