"""The dossier page shows its data as the procedure's forms define it (forms/display.py, lib/display.js):
labels, choices by their titles, dates dd/mm/yyyy, amounts "20.000 ₫", arrays of objects as a table, staff-only
fields marked — both for a JSON Schema form and a form-js form."""

from __future__ import annotations

import re

import pytest

from .support import login, shot
from .webforms import WEB_FORMS_CODE, deploy_web_forms, start_web_forms_dossier

pytestmark = pytest.mark.timeout(120)

INTAKE = {
    "applicant_kind": "org",
    "org_name": "Công ty TNHH Hoa Sen",
    "tax_code": "0101234567",
    "fee_paid": 20000,
    "appointment": "2026-12-10",
    "papers": ["ban_ve"],
    "members": [
        {"name": "Lê Văn An", "birth": "2020-01-02", "relation": "child"},
        {"name": "Phạm Thị Bình", "relation": "spouse"},
    ],
}
REVIEW = {
    "result": "reject",
    "reason": "Thiếu bản vẽ",
    "amount": 1500000,
    "items": [{"item_name": "Tường rào", "qty": 2}],
}


def test_dossier_data_is_shown_with_the_forms_labels(province_server, new_page):
    deploy_web_forms(province_server)
    code = start_web_forms_dossier(province_server, INTAKE, REVIEW)
    page = new_page(1280, 900)
    login(page, province_server, "tiepnhan", next_path=f"/dossiers/{code}")
    page.wait_for_selector("#dossier-data .data-section")
    box = page.locator("#dossier-data")
    text = box.inner_text()

    def value(key):
        return box.locator(f"dd[data-key='{key}']").first.inner_text().strip()

    # labels, not field names
    assert "Loại người nộp" in text and "applicant_kind" not in text
    assert value("applicant_kind") == "Tổ chức"  # the choice's title, not "org"
    assert value("org_name") == "Công ty TNHH Hoa Sen"  # defined only in the form's `then`
    assert value("appointment") == "10/12/2026"
    assert re.fullmatch(r"20\.000\s₫", value("fee_paid"))
    assert value("papers") == "Bản vẽ hiện trạng"  # the document's name
    # an array of objects is a table with the item form's labels and choices
    table = box.locator("dd[data-key='members'] table")
    assert table.locator("th").all_inner_texts() == ["Họ và tên", "Ngày sinh", "Số định danh", "Quan hệ với chủ hộ"]
    assert table.locator("tbody tr").first.inner_text().split("\t") == ["Lê Văn An", "02/01/2020", "—", "Con"]
    assert table.locator("tbody tr").nth(1).inner_text().split("\t")[1].strip() == "—"
    # the form-js step: values by their labels, vnd amount, dynamic list as rows
    assert value("result") == "Từ chối"
    assert re.fullmatch(r"1\.500\.000\s₫", value("amount"))
    assert box.locator("dd[data-key='items'] tbody tr").inner_text().split("\t") == ["Tường rào", "2"]
    # staff-only fields are marked; the fields the applicant may see (x-public) are not
    assert box.locator("dt[data-key='tax_code'] .badge-staff").count() == 1
    assert box.locator("dt[data-key='applicant_kind'] .badge-staff").count() == 0
    assert box.locator("dt[data-key='appointment'] .badge-staff").count() == 0
    shot(page, "50-dossier-labelled-data")


def test_dossier_api_gives_the_labelled_view(province_server):
    deploy_web_forms(province_server)
    code = start_web_forms_dossier(province_server, INTAKE, None)
    client = province_server.app.test_client()
    tok = client.post("/api/v1/auth/token", json={"username": "tiepnhan", "password": "motcua-demo"}).get_json()
    res = client.get(f"/api/v1/dossiers/{code}", headers={"Authorization": f"Bearer {tok['access_token']}"})
    assert res.status_code == 200
    sections = res.get_json()["data_view"]
    assert [s["form"] for s in sections] == ["ws_intake.json"]
    fields = {f["key"]: f for f in sections[0]["fields"]}
    assert fields["applicant_kind"] == {
        "key": "applicant_kind",
        "label": "Loại người nộp",
        "kind": "choice",
        "value": "org",
        "text": "Tổ chức",
        "staff_only": False,
    }
    assert fields["fee_paid"]["kind"] == "money"
    assert fields["members"]["rows"][0][3]["text"] == "Con"
    assert WEB_FORMS_CODE == "9.000013"
