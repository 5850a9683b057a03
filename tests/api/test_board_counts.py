"""The board's counts (`GET /monitor/overdue`, "counts") come from counters kept by the database
(engine/boardcounts.py); they must give exactly what counting the rows gives (`overdue_counts(scan=True)`, the
oracle) after any history, at any later instant — a dossier that becomes overdue with no write in between
included — by agency and procedure, for supervisors and for an agency's own staff, and with two writers.

Procedure 9.000001 (bench/four_steps.bpmn): 3 working days; intake → appraise (1 working day) → approve →
return. Received Mon 02/03/2026 09:00 (+07) → due Thu 05/03/2026 09:00, exactly on an hour.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import time_machine
from sqlalchemy import func, select

from engine import boardcounts, monitor
from engine.auth import Actor
from engine.calendar import VN_TZ
from engine.models import BoardCountDelta, BoardCountTotal

from .helpers import AGENCY, Client, new_dossier

ACCEPT = {"data": {"decision": "accept"}}
SUPERVISOR = Actor("oracle", frozenset({"supervisor"}), "000.00.00.H00")


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def at(when: datetime):
    return time_machine.travel(when, tick=False)


def complete(client: Client, dossier: dict, user: str = "canbo") -> dict:
    (task,) = dossier["tasks"]
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", user, json=ACCEPT)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def act(client: Client, code: str, action: str, user: str = "tiepnhan", **body) -> dict:
    r = client.post(f"/api/v1/dossiers/{code}/{action}", user, json=body)
    assert r.status_code == 200, (action, r.get_json())
    return r.get_json()


def db_of(app):
    return app.extensions["motcua"].db


def oracle(app, now: datetime, agency: str | None = None, procedure: str | None = None, actor=SUPERVISOR) -> dict:
    with db_of(app).read() as s:
        return monitor.overdue_counts(s, actor, agency, procedure, now=now, scan=True)


def board(client: Client, query: str = "", user: str = "supervisor") -> dict:
    r = client.get(f"/api/v1/monitor/overdue?per_page=5{query}", user)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def cells(app) -> dict:
    """The counters per (kind, agency, procedure, hour), deltas and totals summed, zeros left out."""
    with db_of(app).read() as s:
        out: dict = {}
        for model in (BoardCountTotal, BoardCountDelta):
            q = select(model.kind, model.agency, model.procedure_code, model.bucket, func.sum(model.n)).group_by(
                model.kind, model.agency, model.procedure_code, model.bucket
            )
            for kind, ag, proc, b, n in s.execute(q):
                out[(kind, ag, proc, b)] = out.get((kind, ag, proc, b), 0) + int(n)
    return {k: v for k, v in out.items() if v}


def check(app, when: datetime) -> dict:
    """At `when`: the board over HTTP agrees with the oracle, for everyone, an agency, a procedure and an
    agency's own staff; and the counters were read (not the rows)."""
    with at(when):
        client = Client(app)
        got = board(client)
        assert got["counts"] == oracle(app, when), when
        assert got["total_dossiers"] == got["counts"]["totals"]["overdue_dossiers"]
        assert board(client, f"&agency={AGENCY}")["counts"] == oracle(app, when, AGENCY)
        assert board(client, "&procedure_code=9.000001")["counts"] == oracle(app, when, None, "9.000001")
        staff = Actor("canbo", frozenset({"receiver", "specialist"}), AGENCY)
        assert board(client, user="canbo")["counts"] == oracle(app, when, actor=staff)
        with db_of(app).read() as s:
            soon = when + timedelta(hours=monitor.DUE_SOON_HOURS)
            assert boardcounts.board_rows(s, when, soon, None, None) is not None  # counters, not the rows
        return got["counts"]["totals"]


def test_counts_agree_with_the_rows_through_a_history_and_as_the_clock_moves(app):
    client = Client(app)
    with at(vn(2026, 3, 2, 9, 0)):
        running = complete(client, new_dossier(client))  # appraise ready
        processed = new_dossier(client)
        for _ in range(3):  # result waits at the counter: not counted
            processed = complete(client, processed)
        to_pause = complete(client, new_dossier(client))
        to_resume = new_dossier(client)
        to_refuse = new_dossier(client)
        to_extend = complete(client, new_dossier(client))
        to_withdraw = new_dossier(client)
    check(app, vn(2026, 3, 2, 9, 30))
    with at(vn(2026, 3, 3, 8, 0)):
        client = Client(app)  # tokens issued at this (travelled) time
        act(client, to_resume["code"], "supplement-request", reason="Thiếu giấy tờ")
        act(client, to_refuse["code"], "refuse", reason="Không thuộc thẩm quyền")
    before_due = check(app, vn(2026, 3, 5, 8, 59))
    # 09:00 Thursday: five dossiers fall due with no write at all; 08:59 → 09:00 crosses the hour
    after_due = check(app, vn(2026, 3, 5, 9, 0, 1))
    assert after_due["overdue_dossiers"] == before_due["overdue_dossiers"] + 4
    assert before_due["due_soon_dossiers"] >= 4
    with at(vn(2026, 3, 5, 10, 0)):
        boardcounts.fold(db_of(app))  # the past folded; deltas summed
    check(app, vn(2026, 3, 5, 10, 15))
    with at(vn(2026, 3, 6, 10, 0)):
        client = Client(app)
        act(client, to_pause["code"], "supplement-request", reason="Thiếu giấy tờ")  # its late step leaves too
        act(client, to_resume["code"], "supplement-received", note="Đã đủ")
        act(client, to_extend["code"], "extend", reason="Cần xác minh", extra_working_days=3)
        act(client, to_withdraw["code"], "withdraw", user="tiepnhan", reason="Người dân rút")
        complete(client, running)  # appraise → approve
    for when in (vn(2026, 3, 6, 10, 30), vn(2026, 3, 9, 8, 0), vn(2026, 3, 11, 16, 59, 59), vn(2026, 3, 12, 9, 0)):
        check(app, when)
    with at(vn(2026, 3, 12, 9, 30)):
        boardcounts.fold(db_of(app))
        client = Client(app)
        act(client, to_pause["code"], "supplement-received", note="Đã đủ")
        fresh = new_dossier(client)
    with at(vn(2026, 3, 12, 9, 45)):
        boardcounts.fold(db_of(app))
    for when in (vn(2026, 3, 12, 10, 0), vn(2026, 3, 17, 9, 0), vn(2027, 1, 1)):
        check(app, when)
    assert fresh["code"]
    # a past instant before the folded hours is answered from the rows, still the same numbers
    with db_of(app).read() as s:
        past = vn(2026, 3, 4, 12, 0)
        assert boardcounts.board_rows(s, past, past + timedelta(hours=24), None, None) is None
        assert monitor.overdue_counts(s, SUPERVISOR, now=past) == oracle(app, past)


def test_the_counters_are_what_a_rebuild_from_the_rows_gives(app):
    client = Client(app)
    with at(vn(2026, 3, 2, 9, 0)):
        ds = [new_dossier(client) for _ in range(4)]
        complete(client, ds[0])
        act(client, ds[1]["code"], "supplement-request", reason="Thiếu")
        act(client, ds[2]["code"], "stop", reason="Dừng")
    with at(vn(2026, 3, 4, 11, 0)):
        client = Client(app)
        act(client, ds[1]["code"], "supplement-received", note="Đủ")
        boardcounts.fold(db_of(app))
        kept = cells(app)
        with db_of(app).uow() as s:
            boardcounts.rebuild(s.connection())
        assert cells(app) == kept
        assert kept  # something is counted
    check(app, vn(2026, 3, 4, 11, 30))


def test_two_writers_at_once_and_a_fold_meanwhile(app):
    """Two officers complete steps and pause / resume dossiers while the worker folds: the counts stay exact
    (deltas are appended, never updated, so the writers never wait for each other on a counter)."""
    with at(vn(2026, 3, 2, 9, 0)):
        seed = Client(app)
        mine = [[new_dossier(seed) for _ in range(4)] for _ in range(2)]
    errors: list = []

    def writer(i: int) -> None:
        try:
            client = Client(app)
            user = ("canbo", "canbo2")[i]
            for d in mine[i]:
                d = complete(client, d, user)
                if i == 0:
                    act(client, d["code"], "supplement-request", reason="Thiếu")
                    act(client, d["code"], "supplement-received", note="Đủ")
                d = complete(client, d, user)
        except BaseException as exc:  # noqa: BLE001 (reported below, in the test's thread)
            errors.append(exc)

    def folder() -> None:
        try:
            for _ in range(6):
                boardcounts.fold(db_of(app))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with time_machine.travel(vn(2026, 3, 4, 15, 0), tick=True):
        threads = [threading.Thread(target=writer, args=(i,)) for i in (0, 1)] + [threading.Thread(target=folder)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors, errors
    check(app, vn(2026, 3, 5, 9, 30))
    with at(vn(2026, 3, 5, 9, 30)):
        boardcounts.fold(db_of(app))
        kept = cells(app)
        with db_of(app).uow() as s:
            boardcounts.rebuild(s.connection())
        assert cells(app) == kept
    totals = check(app, vn(2026, 3, 5, 9, 30))
    assert totals["overdue_dossiers"] == 8  # every dossier of both writers is past its due time
