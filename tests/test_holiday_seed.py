"""Holidays as reviewed data (engine/data/holidays_vn.csv, engine/holiday_seed.py; docs/deadlines.md,
"Holidays as reviewed data"): the seeding reads the file, and the file agrees with the installed `holidays`
package, or this test fails naming each day on which they differ."""

from __future__ import annotations

from datetime import date, datetime

from engine import holiday_seed
from engine.calendar import GOVERNMENT_SWAPS, VN_TZ, WorkCalendar


def test_the_package_and_the_file_agree():
    problems = holiday_seed.disagreements()
    assert not problems, "engine/data/holidays_vn.csv and the holidays package disagree:\n" + "\n".join(problems)


def test_a_disagreement_names_the_day(monkeypatch):
    real = holiday_seed.package_days

    def upgraded(year):  # a package release that drops one day and adds another
        days = dict(real(year))
        if year == 2026:
            days.pop(date(2026, 11, 24))
            days[date(2026, 12, 31)] = "Ngày mới"
        return days

    monkeypatch.setattr(holiday_seed, "package_days", upgraded)
    problems = holiday_seed.disagreements(range(2026, 2027))
    assert len(problems) == 2
    assert problems[0].startswith("2026-11-24 (Tue): engine/data/holidays_vn.csv has 'Ngày Văn hóa Việt Nam'")
    assert problems[1].startswith("2026-12-31 (Thu): holidays") and "'Ngày mới'" in problems[1]


def test_the_seeding_reads_the_file():
    cal = WorkCalendar()
    # Saturday 04/05/2024 was worked in exchange for Monday 29/04 (Official Dispatch 2450/VPCP-KGVX): only
    # the file knows it (the package has no working Saturdays).
    assert cal.is_working_day(date(2024, 5, 4)) and not cal.is_working_day(date(2024, 4, 29))
    assert GOVERNMENT_SWAPS[date(2026, 1, 10)] == (True, "Làm bù cho ngày nghỉ 02/01/2026 (hoán đổi Tết Dương lịch)")
    listed = {d["date"]: d for d in cal.non_working_days(2026)}
    seeded = {d: s for d, s in holiday_seed.seed_days().items() if d.year == 2026}
    assert set(listed) == set(seeded)
    for d, s in seeded.items():
        assert listed[d]["working"] == s.working and listed[d]["name"] == s.name
    assert not cal.is_working_day(date(2026, 2, 20))  # Mùng bốn Tết
    due = cal.due_at(datetime(2026, 2, 13, 10, 0, tzinfo=VN_TZ), "3 working days")
    assert due == datetime(2026, 2, 25, 10, 0, tzinfo=VN_TZ)  # docs/deadlines.md's worked example


def test_every_compensatory_day_and_swap_names_its_source():
    for d, s in holiday_seed.seed_days().items():
        assert s.reference.strip(), d
        if s.kind in ("swap_off", "makeup"):
            assert d in GOVERNMENT_SWAPS
            assert any(word in s.reference for word in ("Công văn", "Thông báo", "Thủ tướng", "Lịch nghỉ")), d
    assert all(holiday_seed.covers(d.year) for d in holiday_seed.seed_days())


def test_a_malformed_file_is_refused_naming_the_row():
    head = ",".join(holiday_seed.COLUMNS)
    for body, words in (
        ("2026-02-30,0,x,holiday,1,ref", "bad row"),
        ("2026-01-02,0,x,swap_off,0,", "names no source"),
        ("2026-01-10,0,x,makeup,0,ref", "bad row for 2026-01-10"),
    ):
        try:
            holiday_seed.parse(f"# comment\n{head}\n{body}\n")
        except ValueError as exc:
            assert words in str(exc), (body, str(exc))
        else:  # pragma: no cover - shown by the assertion
            raise AssertionError(f"accepted: {body}")
