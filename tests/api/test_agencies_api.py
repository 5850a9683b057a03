"""Over HTTP: the agencies' admin API (GET list paged, GET one, PUT) and due times on an agency's calendar."""

from __future__ import annotations

import time_machine

from .helpers import AGENCY, assert_problem, new_dossier

AGENCIES = "/api/v1/agencies"
DISTRICT = "000.00.14.H56"  # AGENCY (000.31.14.H56) is a commune of it


def put(client, code, user, body):
    return client.raw.put(f"{AGENCIES}/{code}", json=body, headers=client.headers(user))


def test_only_admins_and_before_the_body_is_read(client):
    for user in ("tiepnhan", "supervisor", "analyst", "congdan"):
        assert_problem(put(client, "rác", user, {"days": "rác", "office_hours": 42}), 403)
        assert_problem(client.get(AGENCIES, user, query_string={"per_page": "rác"}), 403)
        assert_problem(client.get(f"{AGENCIES}/{DISTRICT}", user), 403)
    assert_problem(put(client, DISTRICT, None, {"name": "x"}), 401)


def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(client):
    r = put(client, "000.31.00.H56", "admin", {"name": "Sai mã"})
    assert_problem(r, 422)
    assert "code" in r.get_json()["fields"]
    for hours in ("17:00-07:00", "07:30-11:30 13:30-17:00"):  # backwards; 7.5 hours instead of 8
        r = put(client, DISTRICT, "admin", {"name": "Huyện", "office_hours": hours})
        assert_problem(r, 422)
        assert "office_hours" in r.get_json()["fields"]
    r = put(
        client, DISTRICT, "admin", {"name": "Huyện", "days": [{"date": "2026-13-01", "working": False, "name": "x"}]}
    )
    assert_problem(r, 422)
    assert "days[0].date" in r.get_json()["fields"]
    assert client.get(AGENCIES, "admin").get_json()["total"] == 0
    assert_problem(client.get(f"{AGENCIES}/{DISTRICT}", "admin"), 404)


def test_put_get_list_and_the_due_time_of_a_commune(client):
    day_off = {"date": "2026-03-03", "working": False, "name": "Lễ hội Tháp Bà"}
    r = put(client, DISTRICT, "admin", {"name": "UBND huyện Diên Khánh", "office_hours": None, "days": [day_off]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["level"] == 2 and r.get_json()["parent"] == "000.00.00.H56"
    r = put(
        client, AGENCY, "admin", {"name": "UBND xã Diên An", "office_hours": [["07:30", "11:30"], ["13:00", "17:00"]]}
    )
    assert r.status_code == 200, r.get_json()
    got = client.get(f"{AGENCIES}/{AGENCY}", "admin").get_json()
    assert got["office_hours_from"] == AGENCY and got["days"] == [] and got["parent"] == DISTRICT
    district = client.get(f"{AGENCIES}/{DISTRICT}", "admin").get_json()
    assert district["days"][0]["date"] == "2026-03-03" and district["days"][0]["weekday"] == "Thứ Ba"

    page = client.get(AGENCIES, "admin", query_string={"per_page": 1, "page": 2}).get_json()
    assert page["total"] == 2 and [a["code"] for a in page["items"]] == [AGENCY]  # by code: 000.00… first
    assert client.get(AGENCIES, "admin", query_string={"q": "diên an"}).get_json()["total"] == 1
    assert client.get(AGENCIES, "admin", query_string={"parent": DISTRICT}).get_json()["items"][0]["code"] == AGENCY
    assert_problem(client.get(AGENCIES, "admin", query_string={"per_page": 1000}), 422)

    # The commune follows its district's day off (Tue 03/03) with its own office hours (from 07:30):
    # Mon 02/03 17:00 + 1 working day → Wed 04/03 07:30-11:30 and 13:00-17:00 → Wed 17:00.
    q = {"start": "2026-03-02T17:00:00+07:00", "deadline": "1 working day", "agency": AGENCY}
    assert client.get("/api/v1/calendar/due", "tiepnhan", query_string=q).get_json()["due_at"] == (
        "2026-03-04T17:00:00+07:00"
    )
    q["agency"] = "000.00.00.H99"  # another province: the national calendar
    assert client.get("/api/v1/calendar/due", "tiepnhan", query_string=q).get_json()["due_at"] == (
        "2026-03-03T17:00:00+07:00"
    )
    days = client.get("/api/v1/calendar/days", "tiepnhan", query_string={"year": 2026, "agency": AGENCY}).get_json()
    assert {d["date"]: d["source"] for d in days["days"]}["2026-03-03"] == f"agency:{DISTRICT}"


def test_a_new_dossier_is_due_on_its_receiving_agencys_calendar(client):
    with time_machine.travel("2026-03-02T09:00:00+07:00", tick=False):
        before = new_dossier(client)
        put(
            client,
            DISTRICT,
            "admin",
            {"name": "Huyện", "days": [{"date": "2026-03-04", "working": False, "name": "x"}]},
        )
        after = new_dossier(client)
    assert before["due_at"] == "2026-03-05T09:00:00+07:00"  # 3 working days
    assert after["due_at"] == "2026-03-06T09:00:00+07:00"  # Wednesday off in the district: a day later
