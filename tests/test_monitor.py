"""engine.monitor: overdue dossiers and steps, ordering, paging, counts and who may look.

`now` is Friday 20 March 2026, 10:00 (UTC+7). Working hours are 07:00-11:30 and 13:30-17:00.
"""

from __future__ import annotations

import uuid

import pytest

from engine.auth import Actor
from engine.calendar import WorkCalendar
from engine.errors import InvalidInput, PermissionDenied
from engine.models import Task
from engine.monitor import overdue, overdue_counts, overdue_page
from engine.statuses import Status
from tests.test_reports import P1, P2, A, B, add_dossier, add_procedures, vn

NOW = vn(2026, 3, 20, 10)
CAL = WorkCalendar()
SUPERVISOR = Actor("giam_sat", frozenset({"supervisor"}), "000.00.00.H56")
RECEIVER_B = Actor("tn_b", frozenset({"receiver"}), B)
NOBODY = Actor("khach", frozenset(), B)


def add_task(session, dossier, title, due, roles=("chuyen_vien",), claimed_by=None, state="ready"):
    t = Task(
        id=str(uuid.uuid4()),
        dossier_id=dossier.id,
        dossier_code=dossier.code,
        procedure_code=dossier.procedure_code,
        agency=dossier.agency,
        spec_name=title.lower().replace(" ", "_"),
        title=title,
        roles=list(roles),
        state=state,
        claimed_by=claimed_by,
        created_at=vn(2026, 3, 1, 8),
        due_at=due,
    )
    session.add(t)
    return t


@pytest.fixture
def data(db):
    with db.uow() as s:
        v = add_procedures(s)
        IP = Status.IN_PROCESS

        def d(code, agency, proc, due, status=IP, **kw):
            row = add_dossier(s, v, code, agency, proc, status, vn(2026, 3, 2, 9), 1, due, **kw)
            s.flush()
            return row

        m1 = d("m1", A, P1, vn(2026, 3, 10, 9))  # overdue, 65 working hours late
        add_task(s, m1, "Thẩm định", vn(2026, 3, 9, 17), claimed_by="cv_an")  # overdue step, 67 h late
        m2 = d("m2", A, P1, vn(2026, 3, 18, 14))  # overdue, 14 working hours late
        add_task(s, m2, "Phê duyệt", vn(2026, 3, 20, 9), roles=("lanh_dao",))  # overdue step, 1 h late
        add_task(s, m2, "Đã xong", vn(2026, 3, 3, 9), state="completed")  # not ready: ignored
        d("m3", A, P2, vn(2026, 3, 20, 16))  # due later today: due soon
        d("m4", A, P1, vn(2026, 3, 21, 9))  # due tomorrow 09:00 (< now + 24 h): due soon
        d("m5", A, P1, vn(2026, 3, 22, 9))  # due in more than 24 h
        m6 = d(
            "m6", A, P1, vn(2026, 3, 1, 9), status=Status.SUPPLEMENT_REQUESTED, paused_at=vn(2026, 2, 27, 9)
        )  # paused: neither it nor its step is overdue
        add_task(s, m6, "Bổ sung", vn(2026, 3, 5, 9))
        d(
            "m7", A, P1, vn(2026, 3, 2, 9), status=Status.PROCESSED, processed_at=vn(2026, 3, 2, 8)
        )  # result ready: not overdue
        d(
            "m8",
            A,
            P1,
            vn(2026, 3, 3, 9),
            status=Status.RETURNED,
            processed_at=vn(2026, 3, 3, 8),
            returned_at=vn(2026, 3, 3, 8),
            finished_at=vn(2026, 3, 3, 8),
        )
        m9 = d("m9", B, P2, vn(2026, 3, 13, 16))  # overdue, 36 working hours late
        add_task(s, m9, "Thẩm định", vn(2026, 3, 19, 17), claimed_by="cv_binh")  # overdue step, 3 h late
        d("m10", B, P1, vn(2026, 3, 20, 9, 59))  # overdue by one minute
    return db


def codes(page):
    return [r["code"] for r in page["dossiers"]]


def test_overdue_dossiers_and_steps_oldest_first_with_lateness_and_holders(data):
    with data.read() as s:
        res = overdue(s, SUPERVISOR, CAL, now=NOW)
    assert codes(res) == ["m1", "m9", "m2", "m10"]
    m1, m9, m2, m10 = res["dossiers"]
    # m1: 10 March 09:00 -> 20 March 10:00: 6 h on the 10th, 3 x 8 (11-13), 4 x 8 (16-19), 3 h on the 20th.
    assert m1["working_hours_late"] == 65.0 and m1["hours_late"] == 241.0
    # m9: Friday 13 March 16:00 -> 1 h, 16-19 March 32 h, 3 h: 36.
    assert m9["working_hours_late"] == 36.0
    # m2: 18 March 14:00 -> 3 h, 8 h on the 19th, 3 h: 14.
    assert m2["working_hours_late"] == 14.0
    assert m10["working_hours_late"] == 0.02 and m10["hours_late"] == 0.02
    assert m1["held_by"] == [
        {
            "task_id": m1["held_by"][0]["task_id"],
            "title": "Thẩm định",
            "claimed_by": "cv_an",
            "assignee": None,
            "roles": ["chuyen_vien"],
            "due_at": "2026-03-09T17:00:00+07:00",
        }
    ]
    assert [h["roles"] for h in m2["held_by"]] == [["lanh_dao"]] and m2["held_by"][0]["claimed_by"] is None
    assert m10["held_by"] == []
    assert m1["due_at"] == "2026-03-10T09:00:00+07:00" and m1["agency"] == A and m1["procedure_code"] == P1
    assert m1["status"] == "in_process" and m1["status_label"] == "Đang xử lý"

    assert [(t["dossier_code"], t["title"]) for t in res["tasks"]] == [
        ("m1", "Thẩm định"),
        ("m9", "Thẩm định"),
        ("m2", "Phê duyệt"),
    ]
    t1, t9, t2 = res["tasks"]
    assert t1["claimed_by"] == "cv_an" and t9["claimed_by"] == "cv_binh" and t2["roles"] == ["lanh_dao"]
    # 9 March 17:00 -> 20 March 10:00: 9 working days (10-13, 16-19 = 8 days = 64 h) + 3 h.
    assert t1["working_hours_late"] == 67.0
    assert t9["working_hours_late"] == 3.0 and t2["working_hours_late"] == 1.0
    assert res["total_dossiers"] == 4 and res["total_tasks"] == 3


def test_counts_by_agency_and_procedure(data):
    with data.read() as s:
        c = overdue_counts(s, SUPERVISOR, now=NOW)
    assert c["totals"] == {"overdue_dossiers": 4, "due_soon_dossiers": 2, "overdue_tasks": 3, "due_soon_tasks": 0}
    assert c["by_agency"] == [
        {"agency": A, "overdue_dossiers": 2, "due_soon_dossiers": 2, "overdue_tasks": 2, "due_soon_tasks": 0},
        {"agency": B, "overdue_dossiers": 2, "due_soon_dossiers": 0, "overdue_tasks": 1, "due_soon_tasks": 0},
    ]
    # P1: m1 m2 m10 overdue, m4 due soon; P2: m9 overdue, m3 due soon.
    assert c["by_procedure"] == [
        {"procedure_code": P1, "overdue_dossiers": 3, "due_soon_dossiers": 1, "overdue_tasks": 2, "due_soon_tasks": 0},
        {"procedure_code": P2, "overdue_dossiers": 1, "due_soon_dossiers": 1, "overdue_tasks": 1, "due_soon_tasks": 0},
    ]
    # An hour later m3 is not yet due, m4 still within 24 h; a day later m5 is due soon too.
    with data.read() as s:
        later = overdue_counts(s, SUPERVISOR, now=vn(2026, 3, 21, 10))
    assert later["totals"]["overdue_dossiers"] == 6 and later["totals"]["due_soon_dossiers"] == 1


def test_paging(data):
    with data.read() as s:
        p1 = overdue_page(s, SUPERVISOR, CAL, page=1, per_page=2, now=NOW)
        p2 = overdue_page(s, SUPERVISOR, CAL, page=2, per_page=2, now=NOW)
        p3 = overdue_page(s, SUPERVISOR, CAL, page=3, per_page=2, now=NOW)
    assert codes(p1) == ["m1", "m9"] and codes(p2) == ["m2", "m10"] and codes(p3) == []
    assert [t["dossier_code"] for t in p1["tasks"]] == ["m1", "m9"]
    assert [t["dossier_code"] for t in p2["tasks"]] == ["m2"]
    assert p2["page"] == 2 and p2["per_page"] == 2


def test_filters(data):
    with data.read() as s:
        only_a = overdue(s, SUPERVISOR, CAL, agency=A, now=NOW)
        only_p2 = overdue(s, SUPERVISOR, CAL, procedure_code=P2, now=NOW)
    assert codes(only_a) == ["m1", "m2"] and [a["agency"] for a in only_a["counts"]["by_agency"]] == [A]
    assert codes(only_p2) == ["m9"] and only_p2["total_tasks"] == 1


def test_staff_see_their_own_agency_only(data):
    with data.read() as s:
        mine = overdue(s, RECEIVER_B, CAL, now=NOW)
        assert codes(mine) == ["m9", "m10"]
        assert [a["agency"] for a in mine["counts"]["by_agency"]] == [B]
        assert codes(overdue(s, RECEIVER_B, CAL, agency=B, now=NOW)) == ["m9", "m10"]
        with pytest.raises(PermissionDenied):
            overdue(s, RECEIVER_B, CAL, agency=A, now=NOW)
        with pytest.raises(PermissionDenied):
            overdue(s, NOBODY, CAL, now=NOW)


@pytest.mark.parametrize(
    "page, per_page, field", [(0, 20, "page"), (1, 0, "per_page"), (1, 101, "per_page"), ("x", 20, "page")]
)
def test_bad_paging(data, page, per_page, field):
    with data.read() as s:
        with pytest.raises(InvalidInput) as exc:
            overdue_page(s, SUPERVISOR, CAL, page=page, per_page=per_page, now=NOW)
    assert list(exc.value.details["fields"]) == [field]  # the one error shape of every list (engine.paging)


def test_per_page_100_is_allowed(data):
    with data.read() as s:
        assert len(overdue_page(s, SUPERVISOR, CAL, per_page=100, now=NOW)["dossiers"]) == 4


# --------------------------------------------------------------------------------------------------
# GET /api/v1/monitor/overdue, on the real clock: every due time of the data set (March 2026) is past, so
# m1 m9 m2 m10 m3 m4 m5 are all overdue, oldest first (m6 paused, m7 processed, m8 returned are not)

URL = "/api/v1/monitor/overdue"


@pytest.fixture
def api(settings, data):
    from tests.test_reports import make_client

    return make_client(
        settings,
        data,
        [("giamsat", ["supervisor"], "000.00.00.H56"), ("tiepnhan_b", ["receiver"], B), ("khach", [], B)],
    )


def test_api_overdue_for_a_supervisor(api):
    r = api.get(f"{URL}?per_page=3", "giamsat")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert codes(body) == ["m1", "m9", "m2"] and body["total_dossiers"] == 7 and body["total_tasks"] == 3
    assert body["dossiers"][0]["held_by"][0]["claimed_by"] == "cv_an"
    assert body["dossiers"][0]["working_hours_late"] > 65 and body["tasks"][0]["dossier_code"] == "m1"
    assert {a["agency"] for a in body["counts"]["by_agency"]} == {A, B}
    r = api.get(f"{URL}?per_page=3&page=3", "giamsat")
    assert codes(r.get_json()) == ["m5"]
    r = api.get(f"{URL}?procedure_code={P2}", "giamsat")
    assert codes(r.get_json()) == ["m9", "m3"]


def test_api_overdue_for_staff_and_others(api):
    from tests.api.helpers import assert_problem

    r = api.get(URL, "tiepnhan_b")
    assert r.status_code == 200 and codes(r.get_json()) == ["m9", "m10"]
    assert_problem(api.get(f"{URL}?agency={A}", "tiepnhan_b"), 403)
    assert_problem(api.get(URL, "khach"), 403)
    assert_problem(api.get(URL), 401)
    body = assert_problem(api.get(f"{URL}?per_page=101", "giamsat"), 422)
    assert "per_page" in body["fields"]
