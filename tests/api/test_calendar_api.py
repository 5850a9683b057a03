"""Over HTTP: GET /calendar/due, GET /calendar/days, PUT/DELETE /calendar/days/{date}."""

from __future__ import annotations

from datetime import datetime

import time_machine

from engine.calendar import VN_TZ
from tests.helpers import staff

from .helpers import assert_problem

DUE = "/api/v1/calendar/due"
DAYS = "/api/v1/calendar/days"


def put(client, path, user, **kw):
    return client.raw.put(path, headers=client.headers(user), **kw)


def delete(client, path, user):
    return client.raw.delete(path, headers=client.headers(user))


def test_due_by_the_convention(client):
    # docs/deadlines.md: received Fri 13/02/2026 10:00, 3 working days → Tết and weekends skipped → Wed 25/02 10:00.
    r = client.get(DUE, "tiepnhan", query_string={"start": "2026-02-13T10:00:00+07:00", "deadline": "3 working days"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["due_at"] == "2026-02-25T10:00:00+07:00"
    assert body["deadline_hours"] == 24 and body["clock_start"] == "2026-02-13T10:00:00+07:00"


def test_due_with_cutoff_calendar_days_and_vietnamese(client):
    # Birth registration: 0 days, cut-off 15:00; at 15:30 it counts from the next working day → 17:00 then.
    r = client.get(
        DUE,
        "chuyenvien",
        query_string={
            "start": "2026-03-06T15:30:00+07:00",
            "deadline": "0 days",
            "cutoff": "15:00",
            "agency": "000.31.14.H56",
        },
    )
    assert r.get_json()["due_at"] == "2026-03-09T17:00:00+07:00" and r.get_json()["agency"] == "000.31.14.H56"
    r = client.get(DUE, "tiepnhan", query_string={"start": "2026-03-02T09:00", "deadline": "7 ngày làm việc"})
    assert r.get_json()["due_at"] == "2026-03-11T09:00:00+07:00"  # no offset: UTC+7


def test_due_errors_name_the_field(client):
    r = client.get(DUE, "tiepnhan", query_string={"start": "2026-02-30T10:00", "deadline": "3 working days"})
    assert_problem(r, 422)
    assert "start" in r.get_json()["fields"]
    r = client.get(DUE, "tiepnhan", query_string={"deadline": "ba ngày"})
    assert_problem(r, 422)
    assert "deadline" in r.get_json()["fields"]
    r = client.get(DUE, "tiepnhan", query_string={"deadline": "3 working days", "cutoff": "25:00"})
    assert "cutoff" in r.get_json()["fields"]
    r = client.get(DUE, "tiepnhan")
    assert_problem(r, 422)
    assert "deadline" in r.get_json()["fields"]
    assert_problem(client.get(DUE, None, query_string={"deadline": "1 working day"}), 401)


def test_days_of_a_year(client):
    r = client.get(DAYS, "tiepnhan", query_string={"year": 2026})
    assert r.status_code == 200
    days = {d["date"]: d for d in r.get_json()["days"]}
    assert days["2026-08-22"]["working"] is True and days["2026-08-22"]["source"] == "swap"  # make-up Saturday
    assert days["2026-09-02"]["working"] is False and days["2026-09-02"]["name"]
    assert days["2026-02-17"]["working"] is False  # Tết
    assert "fields" in client.get(DAYS, "tiepnhan", query_string={"year": "abc"}).get_json()
    assert_problem(client.get(DAYS, "tiepnhan", query_string={"year": 1500}), 422)


def test_admin_overrides_change_new_due_times(client, app):
    start = {"start": "2026-03-06T10:00:00+07:00", "deadline": "1 working day"}  # Friday → Monday 10:00
    assert client.get(DUE, "tiepnhan", query_string=start).get_json()["due_at"] == "2026-03-09T10:00:00+07:00"
    r = put(client, f"{DAYS}/2026-03-07", "admin", json={"working": True, "name": "Làm bù thử"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {
        "date": "2026-03-07",
        "weekday": "Thứ Bảy",
        "working": True,
        "name": "Làm bù thử",
        "source": "override",
        "updated_by": "admin",
    }
    assert client.get(DUE, "tiepnhan", query_string=start).get_json()["due_at"] == "2026-03-07T10:00:00+07:00"
    # The dossier service's cached calendar was invalidated: a dossier received now uses the override.
    r = put(client, f"{DAYS}/2026-03-09", "admin", json={"working": False, "name": "Nghỉ đột xuất"})
    assert r.status_code == 200
    svc = app.extensions["motcua"].dossiers
    with time_machine.travel(datetime(2026, 3, 6, 10, 0, tzinfo=VN_TZ), tick=False):  # (tokens are not valid then)
        d = svc.start_dossier(staff({"receiver"}), "9.000001", {"name": "Nguyễn Văn An"})
    # 3 working days from Fri 10:00: Sat (worked), Mon off, Tue, Wed → Wed 11/03 10:00
    assert d["due_at"] == "2026-03-11T10:00:00+07:00"
    days = {x["date"]: x for x in client.get(DAYS, "tiepnhan", query_string={"year": 2026}).get_json()["days"]}
    assert days["2026-03-09"]["source"] == "override" and days["2026-03-09"]["working"] is False
    assert delete(client, f"{DAYS}/2026-03-07", "admin").status_code == 204
    assert client.get(DUE, "tiepnhan", query_string=start).get_json()["due_at"] == "2026-03-10T10:00:00+07:00"
    assert_problem(delete(client, f"{DAYS}/2026-03-07", "admin"), 404)


def test_overrides_are_admin_only_and_validated(client):
    assert_problem(put(client, f"{DAYS}/2026-03-07", "tiepnhan", json={"working": True, "name": "x"}), 403)
    assert_problem(put(client, f"{DAYS}/2026-03-07", "supervisor", json={"working": True, "name": "x"}), 403)
    assert_problem(delete(client, f"{DAYS}/2026-03-07", "tiepnhan"), 403)
    r = put(client, f"{DAYS}/2026-02-30", "admin", json={"working": True, "name": "x"})
    assert_problem(r, 422)
    assert "date" in r.get_json()["fields"]
    r = put(client, f"{DAYS}/2026-03-07", "admin", json={"working": "maybe", "name": ""})
    assert_problem(r, 422)
    assert {"working", "name"} <= set(r.get_json()["fields"])
    r = delete(client, f"{DAYS}/07-03-2026", "admin")
    assert_problem(r, 422)
    assert "date" in r.get_json()["fields"]


def test_calendar_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/calendar/due", "/api/v1/calendar/days", "/api/v1/calendar/days/{day}"} <= set(paths)
    assert {"put", "delete"} <= set(paths["/api/v1/calendar/days/{day}"])
