"""Agencies and their calendars (engine/agencies.py): the hierarchy codes carry, office hours and days
inherited downwards, and every due time on the calendar of the agency that does the work.

All dates are March 2026 (no national holiday), UTC+7; docs/deadlines.md, "Agencies and their calendars".
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
import time_machine
from sqlalchemy import select

from engine import agencies, calendar_admin
from engine.calendar import VN_TZ
from engine.dossiers import DossierService
from engine.errors import InvalidInput, PermissionDenied
from engine.models import Event, Task
from engine.procedures import deploy_bytes
from tests.conftest import ROOT
from tests.helpers import staff

PROVINCE, DISTRICT, COMMUNE = "000.00.00.H56", "000.00.14.H56", "000.31.14.H56"
OTHER_COMMUNE = "000.07.15.H56"  # a commune of another district
FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()  # 9.000001, 3 working days; appraisal 1 working day
admin = staff({"admin"}, PROVINCE, "quantri")


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


@pytest.fixture
def service(db, settings):
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    return DossierService(db, settings)


def put(db, code, name, office_hours=None, days=(), cache=None):
    body = {"name": name, "office_hours": office_hours, "days": list(days)}
    return agencies.put_agency(db, admin, code, body, cache)


def test_the_hierarchy_is_the_one_codes_carry():
    assert agencies.parse_code(PROVINCE) == (1, None)
    assert agencies.parse_code(DISTRICT) == (2, PROVINCE)
    assert agencies.parse_code(COMMUNE) == (3, DISTRICT)
    assert agencies.parse_code("002.31.14.H56") == (4, COMMUNE)
    assert agencies.ancestors(COMMUNE) == [COMMUNE, DISTRICT, PROVINCE]
    assert agencies.ancestors("khong-phai-ma") == ["khong-phai-ma"]
    for bad in ("000.31.00.H56", "H56", "000.31.14.h56", "0000.31.14.H56"):
        with pytest.raises(InvalidInput) as err:
            agencies.parse_code(bad)
        assert err.value.details["field"] == "code" and bad in err.value.message_en


def test_office_hours_read_and_checked():
    assert agencies.parse_office_hours("07:30-11:30, 13:00-17:00") == (
        (time(7, 30), time(11, 30)),
        (time(13, 0), time(17, 0)),
    )
    assert agencies.parse_office_hours([["08:00", "16:00"]]) == ((time(8, 0), time(16, 0)),)
    assert agencies.parse_office_hours("") is None and agencies.parse_office_hours(None) is None
    for bad in ("13:00-11:00", "07:00-12:00 11:00-17:00", "7h-11h", [["07:00"]], 42, "07:30-11:30 13:30-17:00"):
        with pytest.raises(InvalidInput) as err:
            agencies.parse_office_hours(bad)
        assert err.value.details["field"] == "office_hours"


def test_a_commune_follows_its_district_unless_it_says_otherwise(service, db):
    put(db, PROVINCE, "UBND tỉnh Khánh Hòa", office_hours="07:30-11:30 13:30-17:30")
    put(db, DISTRICT, "UBND huyện Diên Khánh", days=[{"date": "2026-03-03", "working": False, "name": "Lễ hội"}])
    put(db, COMMUNE, "UBND xã Diên An")
    with db.read() as s:
        commune = agencies.calendar_for(s, COMMUNE)
        other = agencies.calendar_for(s, OTHER_COMMUNE)  # not registered: its province's calendar
        national = agencies.calendar_for(s, None)
    assert not commune.is_working_day(date(2026, 3, 3)) and other.is_working_day(date(2026, 3, 3))
    assert commune.periods[0] == (time(7, 30), time(11, 30)) == other.periods[0]  # the province's hours
    assert national.periods[0] == (time(7, 0), time(11, 30))
    # 1 working hour from Mon 02/03 16:30: half an hour on Monday, half on Tuesday from 07:00 nationally;
    # the province closes at 17:30, so its agencies are done on Monday; the commune follows the province's
    # hours and its district's holiday: from Monday 17:30 the hour falls on Wednesday 07:30-08:30.
    assert national.add_working_hours(vn(2026, 3, 2, 16, 30), 1) == vn(2026, 3, 3, 7, 30)
    assert other.add_working_hours(vn(2026, 3, 2, 16, 30), 1) == vn(2026, 3, 2, 17, 30)
    assert commune.add_working_hours(vn(2026, 3, 2, 17, 30), 1) == vn(2026, 3, 4, 8, 30)  # Tue off

    # The commune says otherwise: it works on the district's holiday, with its own hours.
    put(
        db,
        COMMUNE,
        "UBND xã Diên An",
        "07:00-11:00 13:00-17:00",
        [{"date": "2026-03-03", "working": True, "name": "x"}],
    )
    with db.read() as s:
        commune = agencies.calendar_for(s, COMMUNE)
        days = {d["date"]: d for d in calendar_admin.list_days(s, 2026, COMMUNE)}
    assert commune.is_working_day(date(2026, 3, 3)) and commune.periods[0] == (time(7, 0), time(11, 0))
    assert days["2026-03-03"]["source"] == f"agency:{COMMUNE}" and days["2026-03-03"]["working"] is True


def test_due_times_on_the_calendar_of_the_agency_that_does_the_work(service, db):
    # The district takes Tuesday 03/03/2026 off; its commune receives, another district's commune does not.
    put(db, DISTRICT, "UBND huyện Diên Khánh", days=[{"date": "2026-03-03", "working": False, "name": "Lễ hội"}])
    here = staff({"receiver", "specialist"}, COMMUNE, "tiepnhan")
    there = staff({"receiver", "specialist"}, OTHER_COMMUNE, "tiepnhan2")
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        a = service.start_dossier(here, "9.000001", {"name": "Nguyễn Văn An"})
        b = service.start_dossier(there, "9.000001", {"name": "Trần Thị Bình"})
    # 3 working days from Mon 09:00: Thu 05/03 09:00 nationally; Fri 06/03 09:00 with Tuesday off.
    assert a["due_at"] == "2026-03-06T09:00:00+07:00"
    assert b["due_at"] == "2026-03-05T09:00:00+07:00"
    with time_machine.travel(vn(2026, 3, 2, 10, 0), tick=False):
        service.complete_task(here, a["tasks"][0]["id"], {"decision": "accept"})
        service.complete_task(there, b["tasks"][0]["id"], {"decision": "accept"})
    with db.read() as s:
        due = dict(s.execute(select(Task.dossier_code, Task.due_at).where(Task.spec_name == "appraise")).all())
    assert due[a["code"]].astimezone(VN_TZ) == vn(2026, 3, 4, 10, 0)  # 1 working day, Tuesday skipped
    assert due[b["code"]].astimezone(VN_TZ) == vn(2026, 3, 3, 10, 0)


def test_a_change_counts_at_once_in_this_process(service, db):
    here = staff({"receiver"}, COMMUNE, "tiepnhan")
    with time_machine.travel(vn(2026, 3, 2, 9, 0), tick=False):
        assert service.start_dossier(here, "9.000001", {"name": "A"})["due_at"] == "2026-03-05T09:00:00+07:00"
        put(db, COMMUNE, "UBND xã", days=[{"date": "2026-03-04", "working": False, "name": "Bầu cử"}], cache=service)
        assert service.start_dossier(here, "9.000001", {"name": "B"})["due_at"] == "2026-03-06T09:00:00+07:00"


def test_only_administrators_change_agencies_and_nothing_changes_on_bad_input(service, db):
    clerk = staff({"receiver"}, COMMUNE, "tiepnhan")
    with pytest.raises(PermissionDenied):
        agencies.put_agency(db, clerk, "rác", {"days": "rác"})  # refused before the input is read
    with pytest.raises(PermissionDenied):
        agencies.list_agencies(db, clerk)
    with pytest.raises(InvalidInput) as err:
        put(db, COMMUNE, "UBND xã", days=[{"date": "2026-02-30", "working": False, "name": "x"}])
    assert err.value.details["field"] == "days[0].date"
    with pytest.raises(InvalidInput) as err:
        put(db, COMMUNE, "UBND xã", days=[{"date": "2026-03-03", "working": "no", "name": "x"}])
    assert err.value.details["field"] == "days[0].working"
    assert agencies.list_agencies(db, admin)["total"] == 0
    out = put(db, COMMUNE, "UBND xã Diên An")
    assert out["level"] == 3 and out["parent"] == DISTRICT and out["office_hours_from"] is None
    assert out["effective_office_hours"] == [["07:00", "11:30"], ["13:30", "17:00"]]
    with db.read() as s:
        audit = [
            (e.action, e.actor, e.details["code"]) for e in s.scalars(select(Event).where(Event.action.like("agenc%")))
        ]
    assert audit == [("agency.created", "quantri", COMMUNE)]


def test_import_reads_the_csv_all_or_nothing(service, db):
    text = (
        "code,name,office_hours\n"
        f"{PROVINCE},UBND tỉnh Khánh Hòa,07:30-11:30 13:30-17:30\n"
        f"{DISTRICT},UBND huyện Diên Khánh,\n"
        f"{COMMUNE},UBND xã Diên An,\n"
    )
    rows = agencies.read_csv(text)
    assert [r["level"] for r in rows] == [1, 2, 3]
    assert agencies.import_agencies(db, admin, rows) == {"created": 3, "updated": 0, "total": 3}
    assert agencies.import_agencies(db, admin, rows[1:]) == {"created": 0, "updated": 2, "total": 2}
    page = agencies.list_agencies(db, admin, parent=DISTRICT)
    assert [a["code"] for a in page["items"]] == [COMMUNE] and page["total"] == 1
    got = agencies.get_agency(db, admin, COMMUNE)
    assert got["office_hours_from"] == PROVINCE and got["effective_office_hours"][0] == ["07:30", "11:30"]
    with pytest.raises(InvalidInput) as err:
        agencies.read_csv(text + "000.31.00.H56,Sai mã,\n")
    assert err.value.details["line"] == 5 and "line 5" in err.value.message_en
    with pytest.raises(InvalidInput) as err:
        agencies.read_csv(text + f"{COMMUNE},Lặp,\n")
    assert "already on line 4" in err.value.message_en
    with pytest.raises(InvalidInput):
        agencies.read_csv("ma,ten\n1,2\n")


def test_other_processes_hear_of_an_agency_change(service, db):
    """An agency's hours and days are part of the calendar each process caches (engine/caches.py): a put and an
    import both bump the calendar's generation in their own transaction."""
    from engine.models import CacheGeneration

    def generation():
        with db.read() as s:
            return s.scalar(select(CacheGeneration.generation).where(CacheGeneration.name == "calendar"))

    before = generation()
    if before is None:  # the table is seeded by the migrations; create_all leaves it empty
        with db.uow() as s:
            s.add(CacheGeneration(name="calendar", generation=0))
        before = 0
    put(db, COMMUNE, "UBND xã Diên An")
    after_put = generation()
    agencies.import_agencies(db, admin, agencies.read_csv(f"code,name\n{DISTRICT},UBND huyện\n"))
    assert before < after_put < generation()
