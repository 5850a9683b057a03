"""Accessibility: axe-core (tests/e2e/a11y.py) on every page — the officers', the supervisors', the analysts'
and the citizens' — with no serious or critical violation, on a desktop and on a phone; and the desk's
intake (a new dossier to its receipt) done with the keyboard alone. Over a province's volumes (1,500
procedures, 5,000 open tasks: tests/e2e/province.py)."""

from __future__ import annotations

import re

import pytest

from .a11y import axe_violations, describe
from .support import login, shot
from .webforms import deploy_web_forms, start_web_forms_dossier

pytestmark = pytest.mark.timeout(600)

PHONE = "0977000131"


def _dossier_and_task(province_server) -> tuple[str, str]:
    from engine.auth import load_actor

    svc = province_server.app.extensions["motcua"].dossiers
    with province_server.db.read() as s:
        receiver = load_actor(s, "tiepnhan")
    d = svc.start_dossier(receiver, "1.001193", {"name": "Võ Thị Hạnh", "id_number": "001190054321", "phone": PHONE})
    return d["code"], d["tasks"][0]["id"]


def _open_task_of(province_server, code) -> str:
    from engine.auth import load_actor

    svc = province_server.app.extensions["motcua"].dossiers
    with province_server.db.read() as s:
        receiver = load_actor(s, "tiepnhan")
    return svc.get_dossier(receiver, code)["tasks"][0]["id"]


def _citizen_session(page, province_server):
    from api.citizen_auth import issue_citizen_token
    from engine.citizens import Citizen

    token = issue_citizen_token(Citizen(phone=PHONE), province_server.settings.secret_key, 1800)
    page.goto(province_server("/cong-dan"))
    page.evaluate(
        """([t, phone]) => sessionStorage.setItem('motcua.citizen', JSON.stringify(
             { token: t, phone, expires_at: Date.now() + 1800000 }))""",
        [token, PHONE],
    )


@pytest.mark.parametrize("width,height", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_every_page_has_no_serious_accessibility_violation(province_server, new_page, width, height):
    deploy_web_forms(province_server)
    code, task_id = _dossier_and_task(province_server)
    labelled = start_web_forms_dossier(province_server, {"applicant_kind": "org", "org_name": "Công ty A"})
    formjs_task = _open_task_of(province_server, labelled)  # its next step has a form-js form
    found: list[str] = []

    def check(page, path, ready, name):
        page.goto(province_server(path))
        page.wait_for_selector(ready, state="attached", timeout=60000)  # a busy machine, a province's data
        page.wait_for_load_state("networkidle")
        bad = axe_violations(page)
        if bad:
            shot(page, f"a11y-{name}")
            found.append(describe(path, bad))

    for page in (new_page(width, height),):
        # anyone
        check(page, "/", "main h1", "home")
        check(page, "/login", "#login-form", "login")
        check(page, "/tra-cuu", "#lookup-form", "lookup")
        check(page, "/cong-dan", "main h1", "citizen-home")
        check(page, "/cong-dan/thu-tuc/1.001193", "main h1", "citizen-procedure")
        check(page, "/cong-dan/dang-nhap", "main h1", "citizen-signin")
        # a citizen signed in
        _citizen_session(page, province_server)
        check(page, "/cong-dan/ho-so", f"text={code}", "citizen-dossiers")
        check(page, f"/cong-dan/ho-so/{code}", "main h1", "citizen-dossier")
        # officers
        login(page, province_server, "tiepnhan")
        check(page, "/inbox", "#inbox table", "inbox")
        check(page, f"/tasks/{task_id}", "#form-area .jsonform", "task")
        check(page, "/dossiers", "#dossiers table", "dossiers")
        check(page, "/dossiers/new", "#procedure_code option[value]:not([value=''])", "new-dossier")
        check(page, f"/dossiers/{code}", "#timeline li", "dossier")
        check(page, f"/dossiers/{labelled}", "#dossier-data .data-section", "dossier-data")
        check(page, f"/tasks/{formjs_task}", "#form-area .fjs-container", "task-formjs")
        check(page, f"/dossiers/{code}/receipt", "#slip-code", "receipt")
        check(page, f"/dossiers/{code}/control-slip", "#control-table", "control-slip")
        # analysts
        login(page, province_server, "analyst")
        check(page, "/procedures", "#procedures tr[data-code='1.001193']", "procedures")
        check(page, "/procedures/1.001193", "body[data-ready=true]", "procedure")
        check(page, "/modeler/1.001193", "body[data-ready=true]", "modeler")
        # supervisors and the administrator
        login(page, province_server, "supervisor")
        check(page, "/supervisor", "#kpi-overdue-dossiers", "board")
        check(page, "/supervisor/report", "#report-table", "report")
        login(page, province_server, "admin")
        check(page, "/admin/dead-letters", "main h1", "dead-letters")
    assert not found, "accessibility violations (serious, critical):\n" + "\n".join(found)


def tab_to(page, selector: str, limit: int = 80):
    """Press Tab until the focused element matches `selector` (reading the focus is all the test does
    besides pressing keys)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def test_the_desk_receives_a_dossier_with_the_keyboard_alone(province_server, new_page):
    page = new_page(1280, 900)
    login(page, province_server, "tiepnhan")
    page.goto(province_server("/dossiers/new"))
    page.wait_for_selector("#procedure_code option[value]:not([value=''])", state="attached")
    # From here on, only keys: search the catalogue (1,500 procedures) on the server, pick the match.
    tab_to(page, "#procedure_search")
    page.keyboard.type("1.001193")
    page.wait_for_selector("#procedure_matches:has-text('khớp')")
    page.keyboard.press("ArrowDown")  # from the search box to the list of matches
    assert page.evaluate("() => document.activeElement.id") == "procedure_code"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.querySelector('#procedure_code').value") == "1.001193"
    tab_to(page, "#applicant_name")
    page.keyboard.type("Đặng Văn Phúc")
    page.keyboard.press("Tab")
    page.keyboard.type("001090067890")
    page.keyboard.press("Tab")
    page.keyboard.type("0912000111")
    tab_to(page, "#channel")
    page.keyboard.press("ArrowDown")  # online → back to in person
    page.keyboard.press("ArrowUp")
    tab_to(page, "#new-dossier button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dossiers/[^/]+\?created=1$"))
    code = page.url.split("/dossiers/")[1].split("?")[0]
    page.wait_for_selector("#dossier-facts dd")
    # the focus ring is visible on the link to the receipt, then Enter opens it
    tab_to(page, "#link-receipt")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused link shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_selector("#slip-code")
    assert page.inner_text("#slip-code") == code
    assert page.inner_text("#slip-applicant") == "Đặng Văn Phúc"
    tab_to(page, "#print")
    shot(page, "70-keyboard-receipt")
