"""A dossier waiting at a `supplement` message catch event, in headless Chromium: the procedure's diagram
counts it at the event ("1 hồ sơ chờ") and the process control slip shows the wait (docs/bpmn-conventions.md,
"Sự kiện chờ / Waits")."""

from __future__ import annotations

import pytest

from .conftest import ROOT, _serve
from .support import login, shot

pytestmark = pytest.mark.timeout(240)

WAITS = ROOT / "tests" / "data" / "waits" / "waits.bpmn"
ONLINE = ROOT / "tests" / "data" / "online" / "online_fee.bpmn"


def _load(db, service):
    from engine.procedures import deploy_bytes, form_files_beside
    from tests.helpers import ALL_ROLES, staff

    free = WAITS.read_bytes().replace(b'name="fee" value="15000"', b'name="fee" value="0"')
    deploy_bytes(db, free, WAITS.name, form_files_beside(ONLINE), actor="e2e")
    applicant = {"name": "Lê Văn Bình", "id_number": "001085009876", "phone": "0912345678"}
    d = service.start_dossier(staff({"receiver"}, name="tiepnhan"), "9.000501", applicant, data={"purpose": "Xin việc"})
    accept = {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], accept)
    d = service.complete_task(ALL_ROLES, d["tasks"][0]["id"], {"proposal": "supplement"})
    assert d["status"] == "supplement_requested"
    return d["code"]


@pytest.fixture(scope="module")
def waits_server(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("e2e-waits"), _load)


def test_the_diagram_and_the_control_slip_show_where_the_dossier_waits(waits_server, new_page):
    code = waits_server.loaded
    page = new_page(1366, 900)
    login(page, waits_server, "tiepnhan")
    page.goto(waits_server("/procedures/9.000501"))
    page.wait_for_selector("body[data-ready=true]")
    badge = page.locator(".count-badge.waiting[data-element='Event_Supplement']")
    badge.wait_for()
    assert badge.inner_text() == "1 hồ sơ chờ" and badge.get_attribute("data-waiting") == "1"
    assert "1 hồ sơ chờ nộp lệ phí/bổ sung" in page.inner_text("#counts-info")
    shot(page, "40-procedure-waits", full_page=False)
    page.goto(waits_server(f"/dossiers/{code}/control-slip"))
    page.wait_for_selector("#slip")
    row = page.locator("tr", has_text="Chờ bổ sung hồ sơ")
    row.wait_for()
    assert "Đang chờ" in row.inner_text()
