"""The Decree 63/2024 inter-agency group of bpmn/ in headless Chromium (docs/bpmn-conventions.md 9.5): the
commune desk receives it, the commune registers the birth, then the commune police the residence and the
social insurance the card side by side, the desk returns the results. The police officer opens the dossier from their task (a
performing agency reads the dossier, docs/security.md "Performing agencies"); an officer of a fourth agency
gets "not found"; the process control slip shows each hand-over and each agency's share of the time, on a
desk and on a phone, with no serious axe-core finding."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import time_machine

from engine.demo import DEMO_AGENCY, DEMO_INSURANCE, DEMO_POLICE
from tests.api.test_birth_group_api import BIRTH, INTAKE, STEPS

from .a11y import axe_violations, describe
from .conftest import DEMO_PASSWORD, _serve
from .support import login, shot

pytestmark = pytest.mark.timeout(240)

ELSEWHERE = "000.05.15.H56"  # another commune's police: a fourth agency
VN = timezone(timedelta(hours=7))


def at(day: int, hour: int):
    """A fixed moment in office hours of the week from Monday 30 November 2026 (UTC+7): the steps take
    working time, so each agency has a share of it."""
    return time_machine.travel(
        datetime(2026, 11, day, hour, tzinfo=VN) if day > 7 else datetime(2026, 12, day, hour, tzinfo=VN), tick=False
    )


def _load(db, service):
    from engine.auth import add_user

    with db.uow() as s:
        add_user(s, "congan_khac", DEMO_PASSWORD, ["police_officer"], ELSEWHERE, "Công an xã khác")


@pytest.fixture(scope="module")
def group_server(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("e2e-group"), _load)


class Api:
    """The HTTP API of the test server, as each demo account."""

    def __init__(self, server):
        self.client = server.app.test_client()
        self.tokens: dict[str, str] = {}

    def headers(self, user):
        if user not in self.tokens or self.tokens.get("at") != datetime.now(VN).isoformat():
            self.tokens = {"at": datetime.now(VN).isoformat()}  # a token of another moment may have expired
            r = self.client.post("/api/v1/auth/token", json={"username": user, "password": DEMO_PASSWORD})
            self.tokens[user] = r.get_json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path, user):
        r = self.client.get(f"/api/v1{path}", headers=self.headers(user))
        assert r.status_code == 200, (path, r.get_json())
        return r.get_json()

    def complete(self, user, step, data):
        task = next(t for t in self.get("/tasks", user)["items"] if t["spec_name"] == step)
        r = self.client.post(f"/api/v1/tasks/{task['id']}/complete", headers=self.headers(user), json={"data": data})
        assert r.status_code == 200, (step, r.get_json())
        return task


def test_three_agencies_work_the_group_and_the_slip_shows_their_shares(group_server, new_page, expect_console_error):
    api = Api(group_server)
    body = {"procedure_code": "LT63.01", "applicant": {"name": "Trần Thị Cúc", "id_number": "001199000222"}}
    with at(30, 8):
        r = api.client.post("/api/v1/dossiers", headers=api.headers("tiepnhan"), json=body)
        assert r.status_code == 201, r.get_json()
        code = r.get_json()["code"]
    with at(30, 9):
        api.complete("tiepnhan", "Task_Intake", INTAKE)
    (birth, signature), hours = STEPS[:2], (10, 14)  # the commune: birth, signature
    for (step, user, data), hour in zip((birth, signature), hours):
        with at(30, hour):
            api.complete(user, step, data)

    # The police officer finds the residence step in their inbox and opens its dossier from the task.
    page = new_page(1366, 900)
    login(page, group_server, "conganxa")
    row = page.locator("#inbox tr", has_text=code)
    row.wait_for()
    row.locator("a.task-link").click()
    page.wait_for_selector("#form-area .jsonform")
    page.locator(f"a[href='/dossiers/{code}']").first.click()
    page.wait_for_selector("#timeline li")
    assert "Trần Thị Cúc" in page.inner_text("#dossier-facts")
    assert BIRTH["child_name"] in page.inner_text("#dossier-data")
    bad = axe_violations(page)
    assert not bad, describe("dossier page of a performing agency", bad)
    shot(page, "60-group-dossier-police")

    # An officer of a fourth agency does not find it, neither the page nor the slip.
    expect_console_error(r"status of 404")  # the fourth agency's answers
    other = new_page(1366, 900)
    login(other, group_server, "congan_khac")
    for path in (f"/dossiers/{code}", f"/dossiers/{code}/control-slip"):
        other.goto(group_server(path))
        other.wait_for_selector("#flash :text('Không tìm thấy hồ sơ')")

    for (step, user, data), (day, hour) in zip(STEPS[2:], ((2, 10), (3, 9), (3, 15))):
        with at(day, hour):  # the police, the social insurance, the desk
            api.complete(user, step, data)
    assert api.get(f"/dossiers/{code}", "tiepnhan")["status"] == "returned"

    # The control slip, read by the receiving desk: a row per step with its agency, the three hand-overs,
    # and the share of each agency.
    login(page, group_server, "tiepnhan")
    # the procedure's diagram draws the fork and the join (the file's DI): both branches between them
    page.goto(group_server("/procedures/LT63.01"))
    page.wait_for_selector("body[data-ready=true]")
    boxes = {}
    for element in ("Gateway_Fork", "Task_Residence", "Task_Card", "Gateway_Join", "Flow_Fork_Card", "Flow_Card_Join"):
        shape = page.locator(f"g.djs-element[data-element-id='{element}']")
        shape.wait_for()
        boxes[element] = shape.bounding_box()
    assert (
        boxes["Gateway_Fork"]["x"] < boxes["Task_Residence"]["x"]
        and boxes["Gateway_Fork"]["x"] < boxes["Task_Card"]["x"]
    )
    assert boxes["Task_Residence"]["y"] < boxes["Task_Card"]["y"]  # one lane each
    shot(page, "63-group-diagram", full_page=False)
    page.goto(group_server(f"/dossiers/{code}/control-slip"))
    page.wait_for_selector("#control-agencies tr[data-agency]")
    steps = page.locator("#control-table tbody tr[data-step]")
    assert steps.count() == 6
    police = page.locator("#control-table tr[data-step='Task_Residence']").inner_text()
    assert "Công an xã (ví dụ)" in police and "Nhận bàn giao từ UBND xã (ví dụ)" in police
    card = page.locator("#control-table tr[data-step='Task_Card']").inner_text()
    # both reached their agencies from the commune's signature at once (parallel branches)
    assert "Bảo hiểm xã hội tỉnh (ví dụ)" in card and "Nhận bàn giao từ UBND xã (ví dụ)" in card
    back = page.locator("#control-table tr[data-step='Task_Return']").inner_text()
    assert "Nhận bàn giao từ Bảo hiểm xã hội tỉnh (ví dụ)" in back
    assert page.inner_text("#control-handovers") == "3"
    shares = api.get(f"/dossiers/{code}/steps", "tiepnhan")["agencies"]
    rows = page.locator("#control-agencies tr[data-agency]")
    assert [rows.nth(i).get_attribute("data-agency") for i in range(rows.count())] == [
        DEMO_AGENCY,
        DEMO_POLICE,
        DEMO_INSURANCE,
    ]
    for share, name in zip(shares, ("UBND xã (ví dụ)", "Công an xã (ví dụ)", "Bảo hiểm xã hội tỉnh (ví dụ)")):
        text = page.locator(f"#control-agencies tr[data-agency='{share['agency']}']").inner_text()
        assert name in text and str(share["steps"]) in text, text
        assert share["percent"] is not None and f"{share['percent']:g}".replace(".", ",") + " %" in text, text
    assert sum(s["steps"] for s in shares) == 6
    # the two agencies' steps overlapped: their hours add up to more than the dossier's, printed apart
    elapsed = api.get(f"/dossiers/{code}/steps", "tiepnhan")["elapsed_working_hours"]
    assert sum(s["working_hours"] for s in shares) > elapsed
    note = page.inner_text("#control-elapsed")
    assert f"{elapsed:g}".replace(".", ",") in note and "song song" in note, note
    bad = axe_violations(page)
    assert not bad, describe("control slip", bad)
    shot(page, "61-group-control-slip")

    # The same slip on a phone: each step a card, nothing wider than the screen; the police read it too.
    phone = new_page(390, 844, is_mobile=True, has_touch=True)
    login(phone, group_server, "conganxa")
    phone.goto(group_server(f"/dossiers/{code}/control-slip"))
    phone.wait_for_selector("#control-agencies tr[data-agency]")
    assert phone.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    cell = phone.locator("#control-agencies tr[data-agency] td").first
    assert cell.get_attribute("data-label") == "Cơ quan"
    bad = axe_violations(phone)
    assert not bad, describe("control slip on a phone", bad)
    shot(phone, "62-group-control-slip-phone")
