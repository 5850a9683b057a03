"""engine.reports: the period report, on a hand-made set of dossiers whose figures are worked out below.

The period is March 2026 (UTC+7): P0 = 2026-03-01 00:00+07, P1 = 2026-04-01 00:00+07. 1 March 2026 is a
Sunday; there is no holiday in March 2026; Tết 2026 ends on Sunday 22 February. Working hours are office
hours 07:00-11:30 and 13:30-17:00 (8 a day).
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from engine import report_counts
from engine.calendar import VN_TZ
from engine.errors import InvalidInput
from engine.models import Dossier, Procedure, ProcedureVersion
from engine.reports import parse_period, summary, to_csv, to_xlsx
from engine.statuses import Status

A = "000.00.01.H56"
B = "000.00.02.H56"
P1 = "1.004222"  # Đăng ký thường trú
P2 = "1.001193"  # Đăng ký khai sinh


def vn(y, mo, d, h=0, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=VN_TZ)


def add_procedures(session, codes=(P1, P2)) -> dict:
    """Minimal Procedure + ProcedureVersion rows for the dossiers' foreign key: {code: version id}."""
    ids = {}
    for code in codes:
        p = Procedure(code=code, name=f"Thủ tục {code}", agency=None, current_version=1)
        session.add(p)
        session.flush()
        v = ProcedureVersion(
            procedure_id=p.id,
            version=1,
            content_hash=code,
            process_id=f"p_{code}",
            bpmn_xml="<definitions/>",
            spec_json="{}",
        )
        session.add(v)
        session.flush()
        ids[code] = v.id
    return ids


def add_dossier(
    session, versions: dict, code: str, agency: str, proc: str, status: Status, received, channel=1, due=None, **kw
) -> Dossier:
    """A dossier row with explicit dates; `finished` follows the status unless given."""
    final = status in (Status.REFUSED, Status.WITHDRAWN, Status.STOPPED, Status.RETURNED)
    d = Dossier(
        code=code,
        procedure_version_id=versions[proc],
        procedure_code=proc,
        agency=agency,
        status=status.value,
        status_code=status.code,
        channel=channel,
        applicant_name="Nguyễn Văn A",
        received_at=received,
        due_at=due,
        original_due_at=kw.pop("original_due_at", due),
        finished=kw.pop("finished", final),
        paused_hours=kw.pop("paused_hours", 0.0),
        supplement_count=kw.pop("supplement_count", 0),
        **kw,
    )
    session.add(d)
    return d


def load_march(session):
    """The hand-made set. Each line says what the dossier counts as in March 2026."""
    v = add_procedures(session)
    R, PR, IP, ST = Status.RETURNED, Status.PROCESSED, Status.IN_PROCESS, Status.SUPPLEMENT_REQUESTED
    x = lambda *a, **k: add_dossier(session, v, *a, **k)  # noqa: E731
    # ---- agency A, procedure P1 (7 working days)
    # received online; completed early (day 9 < due day 11); returned 10 March. 42 working hours.
    x(
        "a1",
        A,
        P1,
        R,
        vn(2026, 3, 2, 8),
        2,
        vn(2026, 3, 11, 8),
        processed_at=vn(2026, 3, 9, 10),
        returned_at=vn(2026, 3, 10, 9),
        finished_at=vn(2026, 3, 10, 9),
    )
    # received in person; result 06:30 on the due day (the UTC day is the 11th): on time. 54 h.
    x("a2", A, P1, PR, vn(2026, 3, 3, 9), 1, vn(2026, 3, 12, 9), processed_at=vn(2026, 3, 12, 6, 30))
    # received by post; result on the due day but after due_at: late; returned 16 March. 59 h.
    x(
        "a3",
        A,
        P1,
        R,
        vn(2026, 3, 4, 10),
        3,
        vn(2026, 3, 13, 10),
        processed_at=vn(2026, 3, 13, 15),
        returned_at=vn(2026, 3, 16, 8),
        finished_at=vn(2026, 3, 16, 8),
    )
    # carried over (received 26 Feb, open on 1 March); completed early; returned 3 March. 19 h.
    x(
        "a4",
        A,
        P1,
        R,
        vn(2026, 2, 26, 9),
        1,
        vn(2026, 3, 9, 9),
        processed_at=vn(2026, 3, 2, 14),
        returned_at=vn(2026, 3, 3, 8),
        finished_at=vn(2026, 3, 3, 8),
    )
    # processed in February, returned 2 March: only "returned".
    x(
        "a5",
        A,
        P1,
        R,
        vn(2026, 2, 10, 9),
        1,
        vn(2026, 2, 27, 9),
        processed_at=vn(2026, 2, 25, 10),
        returned_at=vn(2026, 3, 2, 10),
        finished_at=vn(2026, 3, 2, 10),
    )
    # carried over, still open, due 20 March: in process, overdue.
    x("a6", A, P1, IP, vn(2026, 2, 25, 9), 1, vn(2026, 3, 20, 17))
    # received online, open, due in April: in process within; had one supplement request.
    x("a7", A, P1, IP, vn(2026, 3, 25, 9), 2, vn(2026, 4, 3, 9), supplement_count=1)
    # received in person; paused since 17 March 10:00 with time left (due 19 March 09:00 >= paused_at):
    # in process within although due_at < P1; supplement requested.
    x("a8", A, P1, ST, vn(2026, 3, 10, 9), 1, vn(2026, 3, 19, 9), paused_at=vn(2026, 3, 17, 10), supplement_count=1)
    # received in person, refused the same day.
    x("a9", A, P1, Status.REFUSED, vn(2026, 3, 5, 9), 1, None, finished_at=vn(2026, 3, 5, 10))
    # received online; withdrawn on 2 April, so open at P1; due 31 March 17:00 < P1: in process, overdue.
    x("a10", A, P1, Status.WITHDRAWN, vn(2026, 3, 20, 9), 2, vn(2026, 3, 31, 17), finished_at=vn(2026, 4, 2, 9))
    # received online; result on 2 April: in process at P1, within (due 6 April).
    x("a11", A, P1, PR, vn(2026, 3, 26, 9), 2, vn(2026, 4, 6, 9), processed_at=vn(2026, 4, 2, 10))
    # received in April: not in the report.
    x("a12", A, P1, IP, vn(2026, 4, 1, 9), 1, vn(2026, 4, 10, 9))
    # stopped in February: not in the report.
    x("a13", A, P1, Status.STOPPED, vn(2026, 1, 5, 9), 1, vn(2026, 1, 14, 9), finished_at=vn(2026, 2, 10, 9))
    # received in person; result early by date but a second supplement request makes it late.
    # 18 working hours less 4 paused = 14 h.
    x(
        "a14",
        A,
        P1,
        PR,
        vn(2026, 3, 6, 9),
        1,
        vn(2026, 3, 17, 9),
        processed_at=vn(2026, 3, 10, 11),
        supplement_count=2,
        paused_hours=4.0,
    )
    # ---- agency A, procedure P2 (same day, cut-off 15:00)
    # received online at 16:30 on the last day, due 1 April: in process within.
    x("b1", A, P2, Status.RECEIVED, vn(2026, 3, 31, 16, 30), 2, vn(2026, 4, 1, 17))
    # carried over; stopped on 2 March.
    x("b2", A, P2, Status.STOPPED, vn(2026, 2, 27, 16), 1, vn(2026, 3, 2, 17), finished_at=vn(2026, 3, 2, 9))
    # received in person; result the same day before 17:00: on time; returned. 2 h.
    x(
        "b3",
        A,
        P2,
        R,
        vn(2026, 3, 9, 8),
        1,
        vn(2026, 3, 9, 17),
        processed_at=vn(2026, 3, 9, 10),
        returned_at=vn(2026, 3, 9, 11),
        finished_at=vn(2026, 3, 9, 11),
    )
    # received in person; apology letter and new date (extended_at): late although before the new date. 9 h.
    x(
        "b4",
        A,
        P2,
        PR,
        vn(2026, 3, 10, 8),
        1,
        vn(2026, 3, 12, 17),
        original_due_at=vn(2026, 3, 10, 17),
        extended_at=vn(2026, 3, 10, 16),
        processed_at=vn(2026, 3, 11, 9),
    )
    # ---- agency B, procedure P1
    # received 28 Feb 23:30 (+07), just before P0: carried over; open, due 10 March: in process overdue.
    x("c1", B, P1, IP, vn(2026, 2, 28, 23, 30), 2, vn(2026, 3, 10, 17))
    # received at P0 exactly, by post: received; withdrawn on 2 March.
    x("c2", B, P1, Status.WITHDRAWN, vn(2026, 3, 1, 0, 0), 3, vn(2026, 3, 10, 17), finished_at=vn(2026, 3, 2, 9))
    # received in person; result one second before P1, after due_at: completed late. 94 h.
    x("c3", B, P1, PR, vn(2026, 3, 16, 9), 1, vn(2026, 3, 31, 17), processed_at=vn(2026, 3, 31, 23, 59, 59))
    # received in person; result at P1 exactly: not completed in March, in process within at P1.
    x("c4", B, P1, PR, vn(2026, 3, 16, 9), 1, vn(2026, 4, 3, 17), processed_at=vn(2026, 4, 1, 0, 0))
    # received in person; paused on 12 March after the due time (9 March): paused at P1, so in process
    # within (a paused dossier's clock stands still: never overdue); supplement.
    x("c5", B, P1, ST, vn(2026, 3, 2, 9), 1, vn(2026, 3, 9, 9), paused_at=vn(2026, 3, 12, 9), supplement_count=1)
    # received online; result 11 March 23:00, due 12 March 06:00 (+07): early by the day in UTC+7 (in UTC
    # both are on the 11th). 38 h.
    x("c6", B, P1, PR, vn(2026, 3, 5, 9), 2, vn(2026, 3, 12, 6), processed_at=vn(2026, 3, 11, 23))
    session.flush()
    report_counts.rebuild(session)  # rows written behind the repository's back: the aggregates from them


def fig(
    received,
    online,
    in_person,
    postal,
    carried,
    early,
    on_time,
    late,
    within,
    overdue,
    supplement,
    refused,
    stopped,
    withdrawn,
    returned,
    rate,
    hours,
):
    return {
        "received": {"total": received, "online": online, "in_person": in_person, "postal": postal},
        "carried_over": carried,
        "completed": {"total": early + on_time + late, "early": early, "on_time": on_time, "late": late},
        "in_process": {"total": within + overdue, "within": within, "overdue": overdue},
        "supplement_requested": supplement,
        "refused": refused,
        "stopped": stopped,
        "withdrawn": withdrawn,
        "returned": returned,
        "on_time_rate": rate,
        "avg_processing_hours": hours,
    }


# A/P1: received a1 a2 a3 a7 a8 a9 a10 a11 a14 = 9 (online a1 a7 a10 a11; in person a2 a8 a9 a14; post a3);
#   carried over a4 a6; completed early a1 a4, on time a2, late a3 a14; in process within a7 a8 a11,
#   overdue a6 a10; supplement a7 a8 a14; refused a9; returned a1 a3 a4 a5.
#   Check: 9 + 2 = 5 completed + 5 in process + 1 refused.  Rate (2+1+3)/(5+5) = 60 %.
#   Hours (42 + 54 + 59 + 19 + 14) / 5 = 188 / 5 = 37.6.
EXPECTED_A_P1 = fig(9, 4, 4, 1, 2, 2, 1, 2, 3, 2, 3, 1, 0, 0, 4, 60.0, 37.6)
# A/P2: received b1 b3 b4 (online b1); carried over b2; on time b3, late b4; within b1; stopped b2;
#   returned b3.  Check: 3 + 1 = 2 + 1 + 1.  Rate (1+1)/(2+1) = 66.67 %.  Hours (2 + 9) / 2 = 5.5.
EXPECTED_A_P2 = fig(3, 1, 2, 0, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 66.67, 5.5)
# B/P1: received c2 c3 c4 c5 c6 (online c6; in person c3 c4 c5; post c2); carried over c1; early c6,
#   late c3; within c4 c5, overdue c1; supplement c5; withdrawn c2.  Check: 5 + 1 = 2 + 3 + 1.
#   Rate (1+2)/(2+3) = 60 %.  Hours (94 + 38) / 2 = 66.
EXPECTED_B_P1 = fig(5, 1, 3, 1, 1, 1, 0, 1, 2, 1, 1, 0, 0, 1, 0, 60.0, 66.0)
# Totals: rate (3+2+6)/(9+9) = 61.11 %; hours 331 / 9 = 36.78.
EXPECTED_TOTALS = fig(17, 6, 9, 2, 4, 3, 2, 4, 6, 3, 4, 1, 1, 1, 5, 61.11, 36.78)


def _close(rows: list[dict], others: list[dict]) -> bool:
    """Equal rows, but for the processing-time mean, summed in another order (within 0.011 h)."""
    assert len(rows) == len(others)
    for a, b in zip(rows, others, strict=True):
        ha, hb = a.get("avg_processing_hours"), b.get("avg_processing_hours")
        assert (ha is None) == (hb is None) and (ha is None or abs(ha - hb) <= 0.011), (a, b)
        assert dict(a, avg_processing_hours=None) == dict(b, avg_processing_hours=None)
    return True


def _figures(row: dict) -> dict:
    # the Decision 766 shares have their own test (tests/test_online_report.py)
    return {k: v for k, v in row.items() if k not in ("agency", "procedure_code", "procedure_name", "decision_766")}


@pytest.fixture
def march(db):
    with db.uow() as s:
        load_march(s)
    return db


def test_march_rows_match_the_hand_worked_figures(march):
    with march.read() as s:
        rep = summary(s, "2026-03-01", "2026-03-31")
    assert rep["from"] == "2026-03-01" and rep["to"] == "2026-03-31"
    assert rep["period_start"] == "2026-03-01T00:00:00+07:00"
    assert rep["period_end"] == "2026-04-01T00:00:00+07:00"
    assert [(r["agency"], r["procedure_code"]) for r in rep["rows"]] == [(A, P2), (A, P1), (B, P1)]
    by = {(r["agency"], r["procedure_code"]): r for r in rep["rows"]}
    assert _figures(by[(A, P1)]) == EXPECTED_A_P1
    assert _figures(by[(A, P2)]) == EXPECTED_A_P2
    assert _figures(by[(B, P1)]) == EXPECTED_B_P1
    assert _figures(rep["totals"]) == EXPECTED_TOTALS
    assert by[(A, P1)]["procedure_name"] == f"Thủ tục {P1}"


def test_the_partition_identity_holds(march):
    with march.read() as s:
        rep = summary(s, date(2026, 3, 1), date(2026, 3, 31))
    for r in rep["rows"] + [rep["totals"]]:
        handled = r["received"]["total"] + r["carried_over"]
        assert handled == (
            r["completed"]["total"] + r["in_process"]["total"] + r["refused"] + r["stopped"] + r["withdrawn"]
        )


def test_filters_by_agency_and_procedure(march):
    with march.read() as s:
        only_b = summary(s, "2026-03-01", "2026-03-31", agency=B)
        only_p2 = summary(s, "2026-03-01", "2026-03-31", procedure_code=P2)
        both = summary(s, "2026-03-01", "2026-03-31", agency=A, procedure_code=P1)
    assert [r["agency"] for r in only_b["rows"]] == [B]
    assert _figures(only_b["totals"]) == EXPECTED_B_P1
    assert only_b["agency"] == B
    assert [(r["agency"], r["procedure_code"]) for r in only_p2["rows"]] == [(A, P2)]
    assert _figures(only_p2["totals"]) == EXPECTED_A_P2
    assert _figures(both["totals"]) == EXPECTED_A_P1


def test_a_single_day_and_carry_over_between_periods(march):
    # 2 March 2026. Received that day: a1 (online), c5 (in person).
    # Carried over at 2 March 00:00: open then and received before: a4 a6 b2 c1 c2 (c2 received 1 March,
    # withdrawn 2 March 09:00). Completed: a4 (14:00, due 9 March: early). Stopped b2, withdrawn c2,
    # returned a5. In process at the day's end: a1 a6 c1 c5 (a4 done, b2/c2 closed).
    # Overdue at 3 March 00:00: none (a6 due 20 March, c1 due 10 March, c5 due 9 March, a1 due 11 March).
    with march.read() as s:
        rep = summary(s, "2026-03-02", "2026-03-02")
    t = rep["totals"]
    assert t["received"] == {"total": 2, "online": 1, "in_person": 1, "postal": 0}
    assert t["carried_over"] == 5
    assert t["completed"] == {"total": 1, "early": 1, "on_time": 0, "late": 0}
    assert t["in_process"] == {"total": 4, "within": 4, "overdue": 0}
    assert (t["stopped"], t["withdrawn"], t["refused"], t["returned"]) == (1, 1, 0, 1)
    assert t["supplement_requested"] == 1  # c5
    assert t["on_time_rate"] == 100.0
    assert t["avg_processing_hours"] == 19.0


def test_empty_period_has_null_rates(march):
    with march.read() as s:
        rep = summary(s, "2025-01-01", "2025-01-31")
    assert rep["rows"] == []
    assert rep["totals"]["on_time_rate"] is None and rep["totals"]["avg_processing_hours"] is None
    assert rep["totals"]["received"]["total"] == 0


@pytest.mark.parametrize(
    "frm, to, field",
    [
        ("2026-13-01", "2026-03-31", "from"),
        ("2026-03-01", "31/03/2026", "to"),
        ("", "2026-03-31", "from"),
        ("2026-03-01", None, "to"),
        ("2026-04-01", "2026-03-31", "from"),  # from after to
        ("2025-01-01", "2026-01-02", "to"),  # 367 days
        ("2026-03-01T00:00", "2026-03-31", "from"),
    ],
)
def test_bad_periods_name_the_field(frm, to, field):
    with pytest.raises(InvalidInput) as exc:
        parse_period(frm, to)
    assert exc.value.details["field"] == field


def test_period_limits():
    assert parse_period("2024-01-01", "2024-12-31").last == date(2024, 12, 31)  # 366 days (leap year)
    assert parse_period("2025-01-01", "2026-01-01").first == date(2025, 1, 1)  # 366 days
    p = parse_period("2026-03-01", "2026-03-01")
    assert p.start == vn(2026, 3, 1) and p.end == vn(2026, 3, 2)


def test_csv_export_has_vietnamese_headers_and_totals(march):
    with march.read() as s:
        rep = summary(s, "2026-03-01", "2026-03-31")
    data = to_csv(rep)
    assert data.startswith("\ufeff".encode("utf-8"))
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    head = lines[0]
    assert head[:3] == ["Cơ quan", "Mã thủ tục", "Tên thủ tục"]
    assert "Số hồ sơ tiếp nhận - Trực tuyến" in head and "Đã giải quyết - Trước hạn" in head
    assert "Đang giải quyết - Quá hạn" in head and "Tỷ lệ đúng hạn (%)" in head
    assert len(lines) == 1 + 3 + 1
    row = dict(zip(head, lines[2]))  # A / P1
    assert (row["Cơ quan"], row["Mã thủ tục"]) == (A, P1)
    assert row["Số hồ sơ tiếp nhận - Tổng số"] == "9"
    assert row["Số hồ sơ tiếp nhận - Từ kỳ trước chuyển sang"] == "2"
    assert row["Đã giải quyết - Quá hạn"] == "2" and row["Tỷ lệ đúng hạn (%)"] == "60.0"
    total = dict(zip(head, lines[-1]))
    assert total["Cơ quan"] == "Tổng cộng" and total["Số hồ sơ tiếp nhận - Tổng số"] == "17"
    assert total["Thời gian xử lý trung bình (giờ làm việc)"] == "36.78"


def test_csv_of_an_empty_report_writes_empty_cells_for_nulls(march):
    with march.read() as s:
        rep = summary(s, "2025-01-01", "2025-01-01")
    lines = list(csv.reader(io.StringIO(to_csv(rep).decode("utf-8-sig"))))
    assert len(lines) == 2 and lines[1][0] == "Tổng cộng" and lines[1][-1] == "" and lines[1][3] == "0"


def test_xlsx_export(march):
    with march.read() as s:
        rep = summary(s, "2026-03-01", "2026-03-31")
    wb = load_workbook(io.BytesIO(to_xlsx(rep)))
    ws = wb.active
    assert ws["A1"].value.startswith("BÁO CÁO TÌNH HÌNH GIẢI QUYẾT HỒ SƠ")
    assert ws["A2"].value == "Từ ngày 01/03/2026 đến ngày 31/03/2026"
    assert ws["A4"].value == "Cơ quan" and ws["D4"].value == "Số hồ sơ tiếp nhận"
    assert [ws.cell(row=5, column=c).value for c in range(4, 9)] == [
        "Tổng số",
        "Trực tuyến",
        "Trực tiếp",
        "Bưu chính",
        "Từ kỳ trước chuyển sang",
    ]
    assert ws["I4"].value == "Đã giải quyết" and ws["M4"].value == "Đang giải quyết"
    assert "D4:H4" in {str(r) for r in ws.merged_cells.ranges}
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=6)]
    assert [r[:2] for r in rows] == [[A, P2], [A, P1], [B, P1], ["Tổng cộng", None]]
    a_p1 = rows[1]
    assert a_p1[3:8] == [9, 4, 4, 1, 2]  # received total/online/in person/post, carried over
    assert a_p1[8:12] == [5, 2, 1, 2]  # completed total/early/on time/late
    assert a_p1[12:15] == [5, 3, 2]  # in process total/within/overdue
    assert a_p1[15:20] == [3, 1, 0, 0, 4]  # supplement, refused, stopped, withdrawn, returned
    assert a_p1[20:22] == [60.0, 37.6]
    assert rows[-1][3] == 17 and rows[-1][20] == 61.11
    assert ws.cell(row=9, column=1).font.bold


# --------------------------------------------------------------------------------------------------
# GET /api/v1/reports/summary


def make_client(settings, db, users):
    """A Flask test client over `db` with the given (username, roles, agency) users (tokens issued directly)."""
    from api import create_app
    from engine.models import User
    from tests.api.helpers import Client

    settings.secret_key = "reports-tests-secret-" + "x" * 32
    with db.uow() as s:
        for username, roles, agency in users:
            s.add(User(username=username, password_hash="-", roles=roles, agency=agency, full_name=username))
    app = create_app(settings, database=db)
    app.config["TESTING"] = True
    return Client(app)


API_USERS = [("giamsat", ["supervisor"], "000.00.00.H56"), ("quantri", ["admin"], A), ("tiepnhan_a", ["receiver"], A)]
URL = "/api/v1/reports/summary"


@pytest.fixture
def api(settings, march):
    return make_client(settings, march, API_USERS)


def test_api_summary_json(api):
    r = api.get(f"{URL}?from=2026-03-01&to=2026-03-31", "giamsat")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["from"] == "2026-03-01" and body["to"] == "2026-03-31"
    assert _figures(body["totals"]) == EXPECTED_TOTALS
    assert len(body["rows"]) == 3 and body["rows"][1]["agency"] == A and body["rows"][1]["procedure_code"] == P1
    assert _figures(body["rows"][1]) == EXPECTED_A_P1
    r = api.get(f"{URL}?from=2026-03-01&to=2026-03-31&agency={B}", "quantri")
    assert r.status_code == 200 and _figures(r.get_json()["totals"]) == EXPECTED_B_P1


def test_api_summary_files(api):
    r = api.get(f"{URL}?from=2026-03-01&to=2026-03-31&format=csv", "giamsat")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert r.headers["Content-Disposition"] == 'attachment; filename="bao-cao-2026-03-01_2026-03-31.csv"'
    lines = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    assert lines[0][0] == "Cơ quan" and lines[-1][0] == "Tổng cộng" and lines[-1][3] == "17"
    r = api.get(f"{URL}?from=2026-03-01&to=2026-03-31&format=xlsx&procedure_code={P2}", "giamsat")
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ws = load_workbook(io.BytesIO(r.get_data())).active
    assert ws["A2"].value == f"Từ ngày 01/03/2026 đến ngày 31/03/2026 - Thủ tục: {P2}"
    assert ws["A6"].value == A and ws["B6"].value == P2 and ws["A7"].value == "Tổng cộng"


def test_api_summary_needs_a_token_and_a_supervisor(api):
    from tests.api.helpers import assert_problem

    assert_problem(api.get(f"{URL}?from=2026-03-01&to=2026-03-31"), 401)
    assert_problem(api.get(f"{URL}?from=2026-03-01&to=2026-03-31", "tiepnhan_a"), 403)


@pytest.mark.parametrize(
    "query, field",
    [
        ("from=2026-02-30&to=2026-03-31", "from"),
        ("from=hôm-qua&to=2026-03-31", "from"),
        ("from=2026-03-01&to=31-03-2026", "to"),
        ("from=2026-04-01&to=2026-03-31", "from"),
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("to=2026-03-31", "from"),
        ("from=2026-03-01", "to"),
        ("from=2026-03-01&to=2026-03-31&format=pdf", "format"),
    ],
)
def test_api_summary_bad_dates_are_422_naming_the_field(api, query, field):
    from tests.api.helpers import assert_problem

    body = assert_problem(api.get(f"{URL}?{query}", "giamsat"), 422)
    assert field in body["fields"], body


# --------------------------------------------------------------------------------------------------
# The SQL against a plain-Python reading of the definitions, on random dossiers (nights, weekends, Tết)


def reference(rows: list[dict], first: date, last: date, cal) -> dict:
    """The report's totals computed row by row in Python, straight from the definitions."""
    from datetime import time as dtime
    from datetime import timedelta as td

    p0 = datetime.combine(first, dtime(0), VN_TZ)
    p1 = datetime.combine(last + td(days=1), dtime(0), VN_TZ)
    local = lambda t: t.astimezone(VN_TZ).date()  # noqa: E731
    f = dict.fromkeys(["rt", "on", "ip", "po", "co", "e", "o", "l", "w", "ov", "su", "rf", "st", "wd", "rn"], 0)
    hours, n_done = 0.0, 0
    for d in rows:
        closed = d["processed_at"] or d["finished_at"]
        received = p0 <= d["received_at"] < p1
        carried = d["received_at"] < p0 and (closed is None or closed >= p0)
        if received:
            f["rt"] += 1
            f[{2: "on", 1: "ip", 3: "po"}[d["channel"]]] += 1
        f["co"] += carried
        f["su"] += (received or carried) and d["supplement_count"] > 0
        p = d["processed_at"]
        if p is not None and p0 <= p < p1:
            n_done += 1
            hours += cal.working_hours_between(d["received_at"], p) - d["paused_hours"]
            due = d["due_at"]
            if (due is not None and p > due) or d["extended_at"] is not None or d["supplement_count"] >= 2:
                f["l"] += 1
            elif due is not None and local(p) < local(due):
                f["e"] += 1
            else:
                f["o"] += 1
        if d["received_at"] < p1 and (closed is None or closed >= p1):
            due, paused = d["due_at"], d["paused_at"]
            late = (
                d["supplement_count"] >= 2
                or (d["extended_at"] is not None and d["extended_at"] < p1)
                or (due is not None and due < p1 and (paused is None or paused >= p1))
            )
            f["ov" if late else "w"] += 1
        closing = {3: "rf", 8: "st", 7: "wd"}.get(d["status_code"])
        if closing and d["finished_at"] is not None and p0 <= d["finished_at"] < p1:
            f[closing] += 1
        f["rn"] += d["returned_at"] is not None and p0 <= d["returned_at"] < p1
    den = f["e"] + f["o"] + f["l"] + f["w"] + f["ov"]
    return fig(
        f["rt"],
        f["on"],
        f["ip"],
        f["po"],
        f["co"],
        f["e"],
        f["o"],
        f["l"],
        f["w"],
        f["ov"],
        f["su"],
        f["rf"],
        f["st"],
        f["wd"],
        f["rn"],
        round(100 * (f["e"] + f["o"] + f["w"]) / den, 2) if den else None,
        round(hours / n_done, 2) if n_done else None,
    )


def random_dossiers(rng, n: int, cal) -> list[dict]:
    from datetime import timedelta as td

    start = vn(2026, 1, 1)
    out = []
    for _ in range(n):
        r = start + td(minutes=rng.randrange(100 * 24 * 60), seconds=rng.randrange(60))
        due = None if rng.random() < 0.05 else cal.add_working_hours(r, rng.choice((4, 8, 24, 40, 80)))
        d = dict(
            received_at=r,
            due_at=due,
            channel=rng.choice((1, 2, 3)),
            processed_at=None,
            returned_at=None,
            finished_at=None,
            paused_at=None,
            paused_hours=0.0,
            extended_at=None,
            supplement_count=rng.choice((0, 0, 0, 1, 2)),
            status=Status.IN_PROCESS,
        )
        u = rng.random()
        if u < 0.15:
            d["status"] = rng.choice((Status.REFUSED, Status.WITHDRAWN, Status.STOPPED))
            d["finished_at"] = r + td(hours=rng.uniform(0.1, 900))
        elif u < 0.8:
            p = r + td(hours=rng.uniform(0.5, 1200))
            d["processed_at"], d["status"] = p, Status.PROCESSED
            d["paused_hours"] = round(min(cal.working_hours_between(r, p), rng.choice((0, 0, 2.5, 6))), 2)
            if rng.random() < 0.7:
                d["returned_at"] = d["finished_at"] = p + td(hours=rng.uniform(0, 100))
                d["status"] = Status.RETURNED
        elif u < 0.9:
            d["paused_at"] = r + td(hours=rng.uniform(1, 500))
            d["status"] = Status.SUPPLEMENT_REQUESTED
        if due is not None and rng.random() < 0.1:
            d["extended_at"] = due - td(hours=rng.uniform(0, 30))
        out.append(d)
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_matches_a_row_by_row_reading_of_the_definitions(db, seed):
    import random

    from engine.calendar import WorkCalendar

    cal = WorkCalendar()
    rows = random_dossiers(random.Random(seed), 400, cal)
    with db.uow() as s:
        v = add_procedures(s, (P1,))
        for i, d in enumerate(rows):
            st = d.pop("status")
            add_dossier(
                s,
                v,
                f"r{i}",
                A,
                P1,
                st,
                d.pop("received_at"),
                d.pop("channel"),
                d.pop("due_at"),
                finished=st in (Status.REFUSED, Status.WITHDRAWN, Status.STOPPED, Status.RETURNED),
                **d,
            )
        s.flush()
        report_counts.rebuild(s)
    with db.read() as s:
        mine = [
            dict(
                received_at=x.received_at,
                due_at=x.due_at,
                channel=x.channel,
                processed_at=x.processed_at,
                returned_at=x.returned_at,
                finished_at=x.finished_at,
                paused_at=x.paused_at,
                paused_hours=x.paused_hours,
                extended_at=x.extended_at,
                supplement_count=x.supplement_count,
                status_code=x.status_code,
            )
            for x in s.scalars(select(Dossier))
        ]
        for first, last in [
            (date(2026, 2, 1), date(2026, 2, 28)),
            (date(2026, 1, 1), date(2026, 3, 31)),
            (date(2026, 2, 16), date(2026, 2, 16)),
            (date(2026, 3, 2), date(2026, 4, 30)),
        ]:
            direct = summary(s, first, last, calendar=cal, from_dossiers=True)
            got = summary(s, first, last, calendar=cal)
            assert got["rows"] == direct["rows"] or _close(got["rows"], direct["rows"]), (first, last)
            direct, got = direct["totals"], got["totals"]
            want = reference(mine, first, last, cal)
            assert _figures(direct) == dict(want, avg_processing_hours=direct["avg_processing_hours"])
            hours_got, hours_want = got.pop("avg_processing_hours"), want.pop("avg_processing_hours")
            got.pop("decision_766")  # read from other tables: tests/api/test_online.py
            assert got == want, (first, last)
            assert (hours_got is None) == (hours_want is None)
            if hours_got is not None:
                assert abs(hours_got - hours_want) <= 0.011, (first, last, hours_got, hours_want)
