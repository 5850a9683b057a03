"""engine.calendar: the working calendar 2025-2027 and the deadline convention of docs/deadlines.md."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.calendar import (
    GOVERNMENT_SWAPS,
    VN_TZ,
    Deadline,
    WorkCalendar,
    calendar_from_session,
    delete_override,
    parse_cutoff,
    parse_deadline,
    set_override,
)
from engine.db import Database
from engine.errors import InvalidInput
from engine.models import CalendarDay

CAL = WorkCalendar()


def vn(y, mo, d, h=0, mi=0, s=0, us=0):
    return datetime(y, mo, d, h, mi, s, us, tzinfo=VN_TZ)


def off(*days):
    return [d for d in days if CAL.is_working_day(d)]


# --------------------------------------------------------------------------------------------------
# Which days are working days


def test_weekends_and_ordinary_days():
    assert CAL.is_working_day(date(2026, 3, 9))  # Monday
    assert not CAL.is_working_day(date(2026, 3, 7))  # Saturday
    assert not CAL.is_working_day(date(2026, 3, 8))  # Sunday
    assert CAL.day_name(date(2026, 3, 7)) is None


def test_new_year():
    assert off(date(2025, 1, 1), date(2026, 1, 1), date(2027, 1, 1)) == []
    assert CAL.day_name(date(2026, 1, 1)) == "Tết Dương lịch"


def test_new_year_2026_swap_from_builtin_table():
    # Friday 2 Jan 2026 off, Saturday 10 Jan 2026 worked: holidays 0.109 knows neither
    assert not CAL.is_working_day(date(2026, 1, 2))
    assert CAL.is_working_day(date(2026, 1, 10))
    bare = WorkCalendar(swaps={})
    assert bare.is_working_day(date(2026, 1, 2)) and not bare.is_working_day(date(2026, 1, 10))


def test_tet_2025():
    # 27-31 Jan 2025 (Mon-Fri) off; with the weekends the break runs 25 Jan - 2 Feb
    assert off(*(date(2025, 1, d) for d in range(25, 32)), date(2025, 2, 1), date(2025, 2, 2)) == []
    assert CAL.is_working_day(date(2025, 1, 24)) and CAL.is_working_day(date(2025, 2, 3))


def test_tet_2026():
    assert off(*(date(2026, 2, d) for d in range(14, 23))) == []
    assert CAL.is_working_day(date(2026, 2, 13)) and CAL.is_working_day(date(2026, 2, 23))
    assert CAL.day_name(date(2026, 2, 17)) == "Tết Nguyên Đán"


def test_tet_2027():
    # lunar new year on Saturday 6 Feb 2027: 4-10 Feb off (holidays' estimate of the compensatory days)
    assert off(*(date(2027, 2, d) for d in range(4, 11))) == []
    assert CAL.is_working_day(date(2027, 2, 3)) and CAL.is_working_day(date(2027, 2, 11))


def test_hung_kings_day_and_observed_day():
    assert not CAL.is_working_day(date(2025, 4, 7))
    # 2026: 10th of the 3rd lunar month is Sunday 26 April; Monday 27 April is the compensatory day
    assert not CAL.is_working_day(date(2026, 4, 26))
    assert not CAL.is_working_day(date(2026, 4, 27))
    assert "Hùng Vương" in CAL.day_name(date(2026, 4, 27))
    assert CAL.is_working_day(date(2026, 4, 28))
    assert not CAL.is_working_day(date(2027, 4, 16))


def test_reunification_and_labour_day_with_2025_swap():
    assert off(date(2025, 4, 30), date(2025, 5, 1), date(2025, 5, 2)) == []
    assert CAL.is_working_day(date(2025, 4, 26))  # make-up Saturday for 2 May 2025
    assert "26/04/2025" in CAL.day_name(date(2025, 5, 2)) or "02/05/2025" in CAL.day_name(date(2025, 4, 26))
    assert off(date(2026, 4, 30), date(2026, 5, 1)) == []
    assert CAL.is_working_day(date(2026, 5, 4))
    # 2027: 1 May is a Saturday, Monday 3 May is the compensatory day
    assert off(date(2027, 4, 30), date(2027, 5, 3)) == []


def test_national_day_with_adjacent_and_swapped_days():
    assert off(date(2025, 9, 1), date(2025, 9, 2)) == []
    assert CAL.is_working_day(date(2025, 9, 3))
    # 2026: 1-2 Sep, plus Monday 31 Aug swapped with Saturday 22 Aug
    assert off(date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2)) == []
    assert CAL.is_working_day(date(2026, 8, 22))
    assert CAL.is_working_day(date(2026, 9, 3))
    assert off(date(2027, 9, 2), date(2027, 9, 3)) == []


def test_builtin_swaps_are_pairs_of_a_weekday_off_and_a_saturday_worked():
    for d, (working, name) in GOVERNMENT_SWAPS.items():
        assert name
        assert d.weekday() == 5 if working else d.weekday() < 5
        assert CAL.is_working_day(d) is working
    assert sum(w for w, _ in GOVERNMENT_SWAPS.values()) == sum(not w for w, _ in GOVERNMENT_SWAPS.values())


def test_non_working_days_listing():
    days = CAL.non_working_days(2026)
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    by_day = {d["date"]: d for d in days}
    assert by_day[date(2026, 2, 17)] == {
        "date": date(2026, 2, 17),
        "working": False,
        "name": "Tết Nguyên Đán",
        "source": "holidays",
    }
    assert by_day[date(2026, 8, 22)]["working"] is True and by_day[date(2026, 8, 22)]["source"] == "swap"
    assert by_day[date(2026, 4, 26)]["working"] is False  # a holiday on a Sunday is listed
    assert date(2026, 3, 7) not in by_day  # plain weekends are not
    assert all(set(d) == {"date", "working", "name", "source"} for d in days)


# --------------------------------------------------------------------------------------------------
# Clock start


@pytest.mark.parametrize(
    "received, cutoff, expected",
    [
        (vn(2026, 3, 9, 10, 15), None, vn(2026, 3, 9, 10, 15)),  # inside office hours
        (vn(2026, 3, 9, 7, 0), None, vn(2026, 3, 9, 7, 0)),
        (vn(2026, 3, 9, 6, 0), None, vn(2026, 3, 9, 7, 0)),  # before 07:00
        (vn(2026, 3, 9, 11, 30), None, vn(2026, 3, 9, 13, 30)),  # lunch break
        (vn(2026, 3, 9, 12, 45), None, vn(2026, 3, 9, 13, 30)),
        (vn(2026, 3, 9, 17, 0), None, vn(2026, 3, 10, 7, 0)),  # after 17:00: next morning
        (vn(2026, 3, 13, 18, 0), None, vn(2026, 3, 16, 7, 0)),  # Friday evening: Monday
        (vn(2026, 3, 7, 9, 0), None, vn(2026, 3, 9, 7, 0)),  # Saturday
        (vn(2026, 3, 9, 15, 0), "15:00", vn(2026, 3, 9, 15, 0)),  # at the cut-off: not after it
        (vn(2026, 3, 9, 15, 0, 1), "15:00", vn(2026, 3, 10, 7, 0)),  # after the cut-off
        (vn(2026, 3, 13, 16, 0), time(15), vn(2026, 3, 16, 7, 0)),
        (vn(2026, 2, 13, 15, 30), "15:00", vn(2026, 2, 23, 7, 0)),  # Friday before Tết
    ],
)
def test_clock_start(received, cutoff, expected):
    assert CAL.clock_start(received, cutoff) == expected


def test_clock_start_converts_other_time_zones():
    got = CAL.clock_start(datetime(2026, 3, 9, 1, 0, tzinfo=UTC))  # 08:00 in Hà Nội
    assert got == vn(2026, 3, 9, 8, 0) and got.utcoffset() == timedelta(hours=7)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError):
        CAL.due_at(datetime(2026, 3, 9, 8, 0), "1 working day")


# --------------------------------------------------------------------------------------------------
# Due times


def test_domain_example_friday_before_tet_2026():
    due = CAL.due_at(vn(2026, 2, 13, 10, 0), "3 working days")
    assert due == vn(2026, 2, 25, 10, 0)
    assert due.tzinfo == VN_TZ and due.weekday() == 2


@pytest.mark.parametrize(
    "received, deadline, cutoff, expected",
    [
        # exactly at a boundary: the count ends there
        (vn(2026, 3, 9, 7, 0), "4.5 working hours", None, vn(2026, 3, 9, 11, 30)),
        (vn(2026, 3, 9, 7, 0), "1 working day", None, vn(2026, 3, 9, 17, 0)),
        (vn(2026, 3, 9, 7, 0), "2 working days", None, vn(2026, 3, 10, 17, 0)),
        (vn(2026, 3, 9, 12, 0), "3.5 working hours", None, vn(2026, 3, 9, 17, 0)),  # lunch receipt
        (vn(2026, 3, 9, 12, 0), "4 working hours", None, vn(2026, 3, 10, 7, 30)),
        (vn(2026, 3, 9, 10, 0), "2 working hours", None, vn(2026, 3, 9, 14, 0)),  # across lunch
        (vn(2026, 3, 9, 18, 0), "8 giờ làm việc", None, vn(2026, 3, 10, 17, 0)),  # evening receipt
        (vn(2026, 3, 9, 5, 0), "0,5 ngày làm việc", None, vn(2026, 3, 9, 11, 0)),  # early receipt
        # the cut-off
        (vn(2026, 3, 9, 15, 30), "8 working hours", "15:00", vn(2026, 3, 10, 17, 0)),
        (vn(2026, 3, 9, 15, 0), "8 working hours", "15:00", vn(2026, 3, 10, 15, 0)),
        (vn(2026, 3, 9, 15, 30), "8 working hours", None, vn(2026, 3, 10, 15, 30)),
        # Tết 2025: Friday 24 Jan 16:00 + 1 day = 1 h Friday, 7 h Monday 3 Feb
        (vn(2025, 1, 24, 16, 0), "1 working day", None, vn(2025, 2, 3, 16, 0)),
        # 30/4-1/5 2025: the make-up Saturday 26 April counts, 2 May does not
        (vn(2025, 4, 25, 16, 0), "2 working days", None, vn(2025, 4, 28, 16, 0)),
        (vn(2025, 4, 29, 10, 0), "1 working day", None, vn(2025, 5, 5, 10, 0)),
        # Hùng Kings 2026 on a Sunday, observed Monday 27 April
        (vn(2026, 4, 24, 10, 0), "1 working day", None, vn(2026, 4, 28, 10, 0)),
        # National Day 2026: Friday evening, the clock starts on the make-up Saturday 22 August
        (vn(2026, 8, 21, 17, 30), "1 working day", None, vn(2026, 8, 22, 17, 0)),
        (vn(2026, 8, 28, 9, 0), "1 working day", None, vn(2026, 9, 3, 9, 0)),
        # New Year 2026: 1-4 Jan off, 10 Jan worked
        (vn(2025, 12, 31, 9, 0), "1 working day", None, vn(2026, 1, 5, 9, 0)),
        (vn(2026, 1, 9, 9, 0), "1 working day", None, vn(2026, 1, 10, 9, 0)),
        # Tết 2027
        (vn(2027, 2, 3, 9, 0), "1 working day", None, vn(2027, 2, 11, 9, 0)),
        # whole weeks: 15 working days from a Monday 07:00 end on the third Friday 17:00
        (vn(2026, 3, 9, 7, 0), "15 working days", None, vn(2026, 3, 27, 17, 0)),
        (vn(2026, 3, 9, 7, 0), "0 working days", None, vn(2026, 3, 9, 7, 0)),
    ],
)
def test_due_at_working_time(received, deadline, cutoff, expected):
    assert CAL.due_at(received, deadline, cutoff) == expected


@pytest.mark.parametrize(
    "received, deadline, cutoff, expected",
    [
        (vn(2026, 3, 2, 10, 0), "10 days", None, vn(2026, 3, 12, 17, 0)),
        (vn(2026, 3, 4, 10, 0), "10 days", None, vn(2026, 3, 16, 17, 0)),  # Sat 14 -> Mon 16
        (vn(2026, 2, 5, 16, 0), "12 ngày", None, vn(2026, 2, 23, 17, 0)),  # Tết 17 Feb -> 23 Feb
        (vn(2026, 2, 10, 9, 0), "5 days", None, vn(2026, 2, 23, 17, 0)),  # 15 Feb (Sun) -> 23 Feb
        (vn(2026, 2, 10, 9, 0), "4 days", None, vn(2026, 2, 23, 17, 0)),  # Sat 14 Feb, then Tết
        (vn(2026, 3, 6, 10, 0), "1 day", None, vn(2026, 3, 9, 17, 0)),  # Saturday -> Monday
        (vn(2026, 3, 7, 10, 0), "2 days", None, vn(2026, 3, 9, 17, 0)),  # received on a Saturday
        # birth registration: same day; after 15:00 the next working day
        (vn(2026, 3, 9, 10, 0), "0 days", "15:00", vn(2026, 3, 9, 17, 0)),
        (vn(2026, 3, 9, 16, 0), "0 days", "15:00", vn(2026, 3, 10, 17, 0)),
        (vn(2026, 3, 13, 16, 0), "0 ngày", "15:00", vn(2026, 3, 16, 17, 0)),
        (vn(2026, 3, 9, 17, 30), "0 days", None, vn(2026, 3, 10, 17, 0)),
        (vn(2026, 8, 21, 16, 0), "0 days", "15:00", vn(2026, 8, 22, 17, 0)),  # make-up Saturday
    ],
)
def test_due_at_calendar_days(received, deadline, cutoff, expected):
    assert CAL.due_at(received, deadline, cutoff) == expected


def test_long_deadline_crosses_years():
    due = CAL.due_at(vn(2025, 12, 1, 9, 0), "500 working days")
    assert CAL.working_hours_between(vn(2025, 12, 1, 9, 0), due) == 4000
    far = CAL.due_at(vn(2025, 1, 2, 9, 0), "3650 days")
    assert far.date() >= date(2025, 1, 2) + timedelta(days=3650) and CAL.is_working_day(far.date())


def test_add_working_hours():
    assert CAL.add_working_hours(vn(2026, 3, 9, 16, 0), 1) == vn(2026, 3, 9, 17, 0)
    assert CAL.add_working_hours(vn(2026, 3, 9, 16, 0), 1.5) == vn(2026, 3, 10, 7, 30)
    assert CAL.add_working_hours(vn(2026, 3, 9, 11, 0), 0.5) == vn(2026, 3, 9, 11, 30)
    assert CAL.add_working_hours(vn(2026, 3, 9, 11, 0), 0.75) == vn(2026, 3, 9, 13, 45)
    with pytest.raises(ValueError):
        CAL.add_working_hours(vn(2026, 3, 9, 11, 0), -1)


def test_working_hours_between():
    assert CAL.working_hours_between(vn(2026, 3, 9, 7), vn(2026, 3, 9, 17)) == 8
    assert CAL.working_hours_between(vn(2026, 3, 9, 11), vn(2026, 3, 9, 14)) == 1
    assert CAL.working_hours_between(vn(2026, 3, 9, 14), vn(2026, 3, 9, 11)) == -1
    assert CAL.working_hours_between(vn(2026, 3, 6, 16), vn(2026, 3, 9, 8)) == 2  # over a weekend
    assert CAL.working_hours_between(vn(2026, 2, 13, 7), vn(2026, 2, 24, 7)) == 16  # over Tết
    assert CAL.working_hours_between(vn(2026, 3, 7, 9), vn(2026, 3, 7, 12)) == 0  # Saturday
    assert CAL.working_hours_between(vn(2026, 3, 9, 18), vn(2026, 3, 10, 6)) == 0


def test_a_calendar_with_other_office_hours():
    cal = WorkCalendar(periods=((time(7, 30), time(11, 30)), (time(13, 0), time(17, 0))))
    assert cal.clock_start(vn(2026, 3, 9, 7, 0)) == vn(2026, 3, 9, 7, 30)
    assert cal.due_at(vn(2026, 3, 9, 7, 30), "1 working day") == vn(2026, 3, 9, 17, 0)
    assert cal.due_at(vn(2026, 3, 9, 7, 0), "2 days") == vn(2026, 3, 11, 17, 0)


def test_overrides_given_directly_win_over_seed_and_swaps():
    cal = WorkCalendar({date(2026, 3, 10): (False, "Ngày nghỉ riêng"), date(2026, 8, 22): (False, "Huỷ làm bù")})
    assert cal.due_at(vn(2026, 3, 9, 7), "2 working days") == vn(2026, 3, 11, 17)
    assert not cal.is_working_day(date(2026, 8, 22))
    assert cal.day_name(date(2026, 3, 10)) == "Ngày nghỉ riêng"
    assert CAL.is_working_day(date(2026, 3, 10))  # other calendars are untouched


# --------------------------------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    "text, amount, unit, hours",
    [
        ("15 working days", 15, "working_days", 120.0),
        ("1 working day", 1, "working_days", 8.0),
        ("0.5 working days", 0.5, "working_days", 4.0),
        ("8 working hours", 8, "working_hours", 8.0),
        ("30 days", 30, "days", None),
        ("1 day", 1, "days", None),
        ("15 ngày làm việc", 15, "working_days", 120.0),
        ("  15   Ngày   Làm Việc ", 15, "working_days", 120.0),
        ("15 ngay lam viec", 15, "working_days", 120.0),
        ("0,5 ngày làm việc", 0.5, "working_days", 4.0),
        ("8 giờ làm việc", 8, "working_hours", 8.0),
        ("08 giờ làm việc", 8, "working_hours", 8.0),
        ("30 ngày", 30, "days", None),
        ("0 ngày", 0, "days", None),
        ("3650 days", 3650, "days", None),
    ],
)
def test_parse_deadline(text, amount, unit, hours):
    dl = parse_deadline(text)
    assert (dl.amount, dl.unit, dl.hours) == (amount, unit, hours)
    assert parse_deadline(str(dl)) == dl
    assert parse_deadline(dl) is dl


def test_parse_deadline_decomposed_unicode():
    import unicodedata

    assert parse_deadline(unicodedata.normalize("NFD", "15 ngày làm việc")).unit == "working_days"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "soon",
        "15",
        "days",
        "15 weeks",
        "15 hours",
        "-3 working days",
        "- 3 days",
        "3651 days",
        "4000 working days",
        "29201 working hours",
        "1.5 days",
        "1e3 days",
        "1/2 working day",
        "15 working days please",
        None,
        15,
    ],
)
def test_parse_deadline_refuses(text):
    with pytest.raises(InvalidInput) as exc:
        parse_deadline(text)
    assert str(text) in exc.value.message_en and str(text) in exc.value.message_vi
    assert exc.value.message_vi != exc.value.message_en


def test_deadline_validates_itself():
    with pytest.raises(InvalidInput):
        Deadline(1, "weeks")
    with pytest.raises(InvalidInput):
        Deadline(-1, "days")
    assert Deadline(2, "working_days").text_vi == "2 ngày làm việc"
    assert Deadline(0.5, "working_days").text_vi == "0,5 ngày làm việc"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("15:00", time(15)),
        ("15:30:10", time(15, 30, 10)),
        (" 9:05 ", time(9, 5)),
        ("15h", time(15)),
        ("15h30", time(15, 30)),
        (None, None),
        ("", None),
        (time(16), time(16)),
    ],
)
def test_parse_cutoff(text, expected):
    assert parse_cutoff(text) == expected


@pytest.mark.parametrize("text", ["25:00", "15:60", "3pm", "15:0", "noon", 1500])
def test_parse_cutoff_refuses(text):
    with pytest.raises(InvalidInput):
        parse_cutoff(text)


def test_due_at_refuses_a_bad_cutoff():
    with pytest.raises(InvalidInput):
        CAL.due_at(vn(2026, 3, 9, 9), "1 working day", "late")


# --------------------------------------------------------------------------------------------------
# Administrators' overrides in the database


@pytest.fixture()
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/t.db")
    database.create_all()
    yield database
    database.dispose()


def test_overrides_from_the_database(db):
    start = vn(2026, 3, 9, 7, 0)
    with db.read() as s:
        assert calendar_from_session(s).due_at(start, "2 working days") == vn(2026, 3, 10, 17, 0)

    with db.uow() as s:
        row = set_override(s, date(2026, 3, 10), False, "Nghỉ đột xuất (bão)", "admin")
        assert row.working is False and row.updated_by == "admin"
        # effective at once, within the same transaction
        assert calendar_from_session(s).due_at(start, "2 working days") == vn(2026, 3, 11, 17, 0)

    with db.read() as s:
        cal = calendar_from_session(s)
        assert not cal.is_working_day(date(2026, 3, 10))
        assert cal.day_name(date(2026, 3, 10)) == "Nghỉ đột xuất (bão)"
        entry = [d for d in cal.non_working_days(2026) if d["date"] == date(2026, 3, 10)]
        assert entry == [
            {"date": date(2026, 3, 10), "working": False, "name": "Nghỉ đột xuất (bão)", "source": "override"}
        ]

    # upsert: the same day becomes a make-up working day, no duplicate row
    with db.uow() as s:
        set_override(s, "2026-03-10", True, "Đi làm bình thường", "admin2")
        set_override(s, date(2026, 3, 14), True, "Làm bù thứ Bảy", "admin2")
    with db.read() as s:
        assert s.query(CalendarDay).count() == 2
        cal = calendar_from_session(s)
        assert cal.is_working_day(date(2026, 3, 14))
        # Friday 13 March 16:00 + 1 day: 1 h Friday, 7 h on the make-up Saturday
        assert cal.due_at(vn(2026, 3, 13, 16), "1 working day") == vn(2026, 3, 14, 16, 0)

    # an override beats holidays.VN too
    with db.uow() as s:
        set_override(s, date(2026, 11, 24), True, "Ngày làm việc", None)
    with db.read() as s:
        assert calendar_from_session(s).is_working_day(date(2026, 11, 24))

    with db.uow() as s:
        assert delete_override(s, date(2026, 3, 14)) is True
        assert delete_override(s, date(2026, 3, 14)) is False
    with db.read() as s:
        cal = calendar_from_session(s)
        assert not cal.is_working_day(date(2026, 3, 14))
        assert cal.due_at(vn(2026, 3, 13, 16), "1 working day") == vn(2026, 3, 16, 16, 0)


@pytest.mark.parametrize(
    "day, working, name",
    [
        (date(2026, 3, 10), False, ""),
        (date(2026, 3, 10), False, "x" * 201),
        ("10/03/2026", False, "n"),
        (datetime(2026, 3, 10, tzinfo=VN_TZ), False, "n"),
        (date(2026, 3, 10), "yes", "n"),
    ],
)
def test_set_override_refuses_bad_input(db, day, working, name):
    with pytest.raises(InvalidInput):
        with db.uow() as s:
            set_override(s, day, working, name, "admin")


# --------------------------------------------------------------------------------------------------
# Properties


def _in_office_closed(cal: WorkCalendar, dt: datetime) -> bool:
    loc = dt.astimezone(cal.tz)
    t = loc.time()
    return cal.is_working_day(loc.date()) and any(s <= t <= e for s, e in cal.periods)


instants = st.datetimes(min_value=datetime(2024, 12, 1), max_value=datetime(2027, 12, 31), timezones=st.just(VN_TZ))
office_instants = st.builds(
    lambda d, minutes: vn(d.year, d.month, d.day) + timedelta(hours=7, minutes=minutes),
    st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)).filter(CAL.is_working_day),
    st.integers(0, 4 * 60 + 29) | st.integers(6 * 60 + 30, 9 * 60 + 59),
)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@PROPS
@given(
    instants,
    st.integers(0, 400),
    st.sampled_from(["working_hours", "working_days", "days"]),
    st.sampled_from([None, "15:00"]),
)
def test_due_time_is_office_time_on_a_working_day(start, n, unit, cutoff):
    due = CAL.due_at(start, Deadline(n, unit), cutoff)
    assert due.utcoffset() == timedelta(hours=7)
    assert _in_office_closed(CAL, due)
    assert due >= CAL.clock_start(start, cutoff) or unit == "days"


@PROPS
@given(
    instants,
    st.integers(0, 200),
    st.sampled_from(["working_hours", "working_days", "days"]),
    st.sampled_from([None, "15:00"]),
)
def test_due_time_is_non_decreasing_in_n(start, n, unit, cutoff):
    assert CAL.due_at(start, Deadline(n, unit), cutoff) <= CAL.due_at(start, Deadline(n + 1, unit), cutoff)


@PROPS
@given(office_instants, st.integers(0, 2000), st.sampled_from([1, 2, 4]))
def test_working_hours_between_inverts_due_at(start, n, per_hour):
    hours = n / per_hour  # whole, half and quarter hours
    due = CAL.due_at(start, Deadline(hours, "working_hours"))
    assert CAL.working_hours_between(start, due) == hours
    assert CAL.working_hours_between(due, start) == -hours


@PROPS
@given(instants, st.integers(0, 200))
def test_working_days_are_eight_working_hours(start, n):
    assert CAL.due_at(start, Deadline(n, "working_days")) == CAL.due_at(start, Deadline(8 * n, "working_hours"))


@PROPS
@given(instants, instants)
def test_working_hours_between_matches_clock_starts(a, b):
    # office time between two instants equals office time between their clock starts
    assert CAL.working_hours_between(a, b) == CAL.working_hours_between(CAL.clock_start(a), CAL.clock_start(b))
