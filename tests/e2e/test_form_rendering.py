"""Forms rendered as they are defined: a JSON Schema form's conditions (`if`/`then` showing a field and
requiring it, `dependentRequired`) and an array of objects edited as rows (lib/form.js); a form-js form
rendered by @bpmn-io/form-js-viewer with its FEEL condition and its dynamic list (lib/formjs.js). The server
validates every submission: its 422 messages land next to the fields, rows and form-js fields included."""

from __future__ import annotations

import pytest

from .support import login, shot
from .webforms import deploy_web_forms, start_web_forms_dossier

pytestmark = pytest.mark.timeout(180)


def _open_task(page, province_server, code):
    page.goto(province_server(f"/dossiers/{code}"))
    page.locator("#open-tasks td a").first.click()
    page.wait_for_selector("#form-area .jsonform, #form-area .fjs-container")
    page.click("#claim")
    page.wait_for_selector("#holder:has-text('Tôi')")


def test_json_schema_conditions_and_rows(province_server, new_page, expect_console_error):
    deploy_web_forms(province_server)
    code = start_web_forms_dossier(province_server)
    page = new_page(1280, 1000)
    login(page, province_server, "tiepnhan")
    _open_task(page, province_server, code)

    org = page.locator("[data-field='org_name']")
    assert org.count() == 1 and org.is_hidden()  # defined in `then` only: hidden until it applies
    page.locator("[data-field='applicant_kind'] label.radio", has_text="Tổ chức").click()
    assert org.is_visible() and org.locator(".req").is_visible()  # shown and required by the `then`
    page.locator("[data-field='applicant_kind'] label.radio", has_text="Cá nhân").click()
    assert org.is_hidden()
    page.locator("[data-field='applicant_kind'] label.radio", has_text="Tổ chức").click()

    # dependentRequired: a tax code makes the fee required
    fee_marker = page.locator("[data-field='fee_paid'] .req")
    assert fee_marker.is_hidden()
    page.fill("[data-field='tax_code'] input", "0101234567")
    assert fee_marker.is_visible()

    # the browser's own check of the fields the conditions require
    page.click("#complete")
    page.wait_for_selector("[data-field='org_name'] .field-error:not([hidden])")
    page.wait_for_selector("[data-field='fee_paid'] .field-error:not([hidden])")
    page.fill("[data-field='org_name'] input", "Hợp tác xã Bình Minh")
    page.fill("[data-field='fee_paid'] input", "20000")

    # an array of objects: rows added and removed, each with the item's fields
    add = page.locator("[data-field='members'] .row-add")
    add.click()
    add.click()
    add.click()
    assert page.locator("[data-field='members'] fieldset.row-item").count() == 3
    page.fill("[data-field='members.0.name'] input", "Bỏ đi")
    page.fill("[data-field='members.1.name'] input", "Lê Thị Thu")
    page.fill("[data-field='members.1.birth'] input", "2019-05-04")
    page.locator("[data-field='members.1.relation'] label.radio", has_text="Con").click()
    page.fill("[data-field='members.1.id_number'] input", "12345")  # the server refuses it (12 digits)
    page.fill("[data-field='members.2.name'] input", "Lê Văn Sơn")
    page.locator("[data-field='members'] fieldset.row-item").first.locator(".row-remove").click()
    assert page.locator("[data-field='members'] fieldset.row-item").count() == 2
    assert page.input_value("[data-field='members.0.name'] input") == "Lê Thị Thu"
    assert page.input_value("[data-field='members.0.birth'] input") == "2019-05-04"
    shot(page, "80-form-conditions-rows")

    # the server's 422 is shown next to the row's field
    expect_console_error(r"status of 422")
    page.click("#complete")
    err = page.wait_for_selector("[data-field='members.0.id_number'] .field-error:not([hidden])")
    assert err.inner_text().strip()
    page.fill("[data-field='members.0.id_number'] input", "001219012345")
    page.click("#complete")
    page.wait_for_selector("#done")

    data = _data(province_server, code)
    assert data["applicant_kind"] == "org" and data["org_name"] == "Hợp tác xã Bình Minh"
    assert data["members"] == [
        {"name": "Lê Thị Thu", "birth": "2019-05-04", "relation": "child", "id_number": "001219012345"},
        {"name": "Lê Văn Sơn"},
    ]


def test_formjs_form_with_its_condition_and_dynamic_list(province_server, new_page, expect_console_error):
    deploy_web_forms(province_server)
    code = start_web_forms_dossier(province_server, {"applicant_kind": "person"})
    page = new_page(1280, 1000)
    login(page, province_server, "tiepnhan")
    _open_task(page, province_server, code)
    page.wait_for_selector("#form-area .fjs-container")
    assert page.locator("#form-area .jsonform").count() == 0  # form-js's own viewer, not the JSON renderer

    # `conditional.hide: =result != "reject"`: the reason shows only when refusing
    reason = page.locator("#form-area textarea")
    assert reason.count() == 0
    page.get_by_label("Từ chối").check()
    reason.wait_for()
    reason.fill("Thiếu bản vẽ")
    page.get_by_label("Đồng ý").check()
    reason.wait_for(state="detached")
    page.get_by_label("Từ chối").check()
    reason.fill("Thiếu bản vẽ hiện trạng")

    # the dynamic list: rows of the list's fields
    page.get_by_label("Tên hạng mục").first.fill("Tường rào")
    page.get_by_label("Số lượng").first.fill("2")
    add = page.locator("#form-area .fjs-repeat-render-add")
    assert add.inner_text().strip() == "Thêm dòng"  # the viewer's own words, in Vietnamese
    add.click()
    assert page.locator("#form-area [aria-label='Xóa dòng 2']").count() == 1
    page.get_by_label("Tên hạng mục").nth(1).fill("Cổng")
    page.get_by_label("Số lượng").nth(1).fill("1")

    # an amount form-js accepts but the server refuses (format vnd: not negative): its 422 on the field
    page.get_by_label("Số tiền phạt").fill("-5")
    shot(page, "81-formjs-form")
    expect_console_error(r"status of 422")
    page.click("#complete")
    page.wait_for_selector("#form-area .fjs-has-errors")
    assert "Số tiền" in page.locator("#form-area .fjs-has-errors").inner_text()
    page.get_by_label("Số tiền phạt").fill("150000")
    page.click("#complete")
    page.wait_for_selector("#done")

    data = _data(province_server, code)
    assert data["result"] == "reject" and data["reason"] == "Thiếu bản vẽ hiện trạng"
    assert data["amount"] == 150000
    assert data["items"] == [{"item_name": "Tường rào", "qty": 2}, {"item_name": "Cổng", "qty": 1}]


def _data(province_server, code) -> dict:
    from engine.auth import load_actor

    svc = province_server.app.extensions["motcua"].dossiers
    with province_server.db.read() as s:
        receiver = load_actor(s, "tiepnhan")
    return svc.get_dossier(receiver, code)["data"]
