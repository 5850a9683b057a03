"""A dossier whose population-register check failed, in headless Chromium: the dossier page shows the
incident, and an officer of its agency retries it with one button; the worker's next call moves the dossier
on (docs/bpmn-conventions.md, 9.6)."""

from __future__ import annotations

import json
import os

import pytest

from tests.fake_register import FakeRegister

from .conftest import ROOT, _serve
from .support import login, shot

pytestmark = pytest.mark.timeout(240)

ID_CHECK = ROOT / "tests" / "data" / "connectors" / "id_check.bpmn"
ONLINE = ROOT / "tests" / "data" / "online" / "online_fee.bpmn"


@pytest.fixture(scope="module")
def register():
    r = FakeRegister().start()
    config = {"population_register": {"urls": [r.url], "path": "/citizens/verify", "timeout": 1, "retries": 0}}
    before = os.environ.get("MOTCUA_CONNECTORS")
    os.environ["MOTCUA_CONNECTORS"] = json.dumps(config)
    yield r
    if before is None:
        os.environ.pop("MOTCUA_CONNECTORS", None)
    else:
        os.environ["MOTCUA_CONNECTORS"] = before
    r.stop()


@pytest.fixture(scope="module")
def connector_server(tmp_path_factory, register):
    def load(db, service):
        from engine import connectors
        from engine.procedures import deploy_bytes, form_files_beside
        from tests.helpers import staff

        deploy_bytes(db, ID_CHECK.read_bytes(), ID_CHECK.name, form_files_beside(ONLINE), actor="e2e")
        applicant = {"name": "Trần Văn Bình", "id_number": "001099001234", "phone": "0987654321"}
        register.mode = "error"
        d = service.start_dossier(staff({"receiver"}, name="tiepnhan"), "9.000601", applicant, data={})
        assert connectors.run_due(service) == {"done": 0, "incidents": 1}
        return d["code"], service

    yield from _serve(tmp_path_factory.mktemp("e2e-connectors"), load)


def test_the_dossier_page_shows_the_incident_and_an_officer_retries_it(connector_server, register, new_page):
    from engine import connectors

    code, service = connector_server.loaded
    page = new_page(1366, 900)
    login(page, connector_server, "tiepnhan")
    page.goto(connector_server(f"/dossiers/{code}"))
    row = page.locator("#incidents tr.call-incident")
    row.wait_for()
    assert "Đối chiếu số định danh cá nhân" in row.inner_text() and "HTTP 500" in row.inner_text()
    page.locator("#timeline", has_text="Sự cố khi gọi hệ thống ngoài").wait_for()
    shot(page, "45-dossier-incident", full_page=False)
    register.mode = "ok"
    page.get_by_role("button", name="Thử lại").click()
    page.locator("#incidents tr.call-pending").wait_for()
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    page.reload()
    page.locator("#open-tasks", has_text="Kiểm tra, tiếp nhận hồ sơ").wait_for()
    assert page.locator("#incidents").is_hidden()
