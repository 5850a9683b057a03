"""A citizen's whole path on a phone, in headless Chromium, against the app served on 127.0.0.1 and a fake
payment gateway served beside it (tests/fake_gateway.py): find the procedure in the catalogue, fill the
intake form rendered from its schema, attach a document, submit and see the code; sign in with the code
sent by SMS; my dossiers; pay the fee through the gateway (its page, the IPN, the return page); upload a
supplement; download the electronic result. Officers' steps go through the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from engine.models import Notification
from engine.procedures import deploy_bytes, form_files_beside

from ..fake_gateway import FakeGateway
from .conftest import DEMO_PASSWORD
from .support import shot

pytestmark = pytest.mark.timeout(240)

ONLINE = Path(__file__).resolve().parents[1] / "data" / "online" / "online_fee.bpmn"
PDF = b"%PDF-1.7\n" + b"0" * 300 + b"\n%%EOF\n"
PHONE = "0977123456"
SECRET = "e2e-pay-secret-0123456789"


@pytest.fixture
def online_server(live_server):
    deploy_bytes(live_server.db, ONLINE.read_bytes(), ONLINE.name, form_files_beside(ONLINE))
    gateway = FakeGateway(SECRET).start()
    o = live_server.settings.online
    saved = (o.public_url, o.pay_url, o.pay_secret)
    o.public_url, o.pay_url, o.pay_secret = live_server.url, gateway.url + "/pay", SECRET
    yield live_server, gateway
    o.public_url, o.pay_url, o.pay_secret = saved
    gateway.stop()


class Staff:
    def __init__(self, server):
        self.server = server
        self.tokens = {}

    def h(self, user):
        if user not in self.tokens:
            r = requests.post(
                self.server("/api/v1/auth/token"), json={"username": user, "password": DEMO_PASSWORD}, timeout=10
            )
            self.tokens[user] = r.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def task(self, code, user):
        items = requests.get(self.server("/api/v1/tasks?per_page=100"), headers=self.h(user), timeout=10).json()
        return next(t for t in items["items"] if t["dossier_code"] == code)

    def complete(self, code, user, data):
        t = self.task(code, user)
        r = requests.post(
            self.server(f"/api/v1/tasks/{t['id']}/complete"), headers=self.h(user), json={"data": data}, timeout=20
        )
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path, user, **kw):
        r = requests.post(self.server(path), headers=self.h(user), timeout=20, **kw)
        assert r.status_code in (200, 201), r.text
        return r.json()


def last_code(server) -> str:
    with server.db.read() as s:
        body = s.scalars(
            select(Notification.body)
            .where(Notification.recipient == PHONE, Notification.kind == "otp")
            .order_by(Notification.id.desc())
        ).first()
    return re.search(r"\b(\d{6})\b", body).group(1)


def test_a_citizen_submits_signs_in_pays_supplements_and_downloads_the_result(online_server, new_page):
    server, gateway = online_server
    staff = Staff(server)
    page = new_page(width=390, height=844, has_touch=True, is_mobile=True)  # a phone

    # 1. find the procedure and submit
    page.goto(server("/cong-dan"))
    page.fill("#q", "xác nhận thử nghiệm")
    page.click("#catalogue-form button[type=submit]")
    page.click("text=Cấp giấy xác nhận thử nghiệm trực tuyến")
    page.wait_for_selector("#submit-form:not([hidden])")
    assert "Thành phần hồ sơ" in page.inner_text("#procedure")
    page.fill("#a-name", "Lê Thị Hoa")
    page.fill("#a-phone", PHONE)
    page.fill("[data-field=purpose] input", "Bổ sung hồ sơ xin việc")
    page.fill("[data-field=copies] input", "2")
    page.check('[data-field=delivery] label:has-text("Qua bưu điện") input')
    page.fill("[data-field=needed_by] input[type=date]", "2026-02-10")
    page.set_input_files("#doc-to_khai", files=[{"name": "to_khai.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    shot(page, "citizen-01-form")
    page.tap("#submit")
    page.wait_for_selector("#dossier-code")
    code = page.inner_text("#dossier-code").strip()
    assert re.fullmatch(r"H56\.31\.14-\d{6}-\d{4}", code)
    shot(page, "citizen-02-submitted")

    # the desk accepts it (the uploaded document counts for the checklist): the fee is now due
    accepted = staff.complete(
        code, "tiepnhan", {"purpose": "Bổ sung hồ sơ xin việc", "decision": "accept", "note": "Ghi chú nội bộ"}
    )
    assert accepted["status"] == "payment_required"

    # 2. sign in with the code sent by SMS
    page.goto(server("/cong-dan/dang-nhap"))
    page.fill("#phone", PHONE)
    page.click("#send-code")
    page.wait_for_selector("#verify-form:not([hidden])")
    page.fill("#code", last_code(server))
    page.click("#verify")
    page.wait_for_url(re.compile(r"/cong-dan/ho-so$"))
    page.click(f"text={code}")
    page.wait_for_selector("#pay")
    shot(page, "citizen-03-pay")
    # their own data as the form labels it (as on the staff's page), documents by their checklist names,
    # and nothing an officer wrote
    mine = page.inner_text("#my-data")
    for text in ("Mục đích xin cấp", "Bổ sung hồ sơ xin việc", "Cách nhận kết quả", "Qua bưu điện", "10/02/2026"):
        assert text in mine
    assert "delivery" not in mine and "buu_dien" not in mine and "2026-02-10" not in mine
    assert "Nội bộ" not in mine and "Kết quả kiểm tra" not in page.inner_text("#my-dossier")
    assert "Ghi chú nội bộ" not in page.inner_text("#my-dossier")
    assert "Tờ khai (theo mẫu): to_khai.pdf" in page.inner_text("#my-documents")

    # 3. pay through the gateway: its page, then back to ours; the IPN confirmed it server to server
    page.click("#pay")
    page.wait_for_url(re.compile(re.escape(gateway.url)))
    assert "15.000" in page.inner_text("#amount")
    page.click("#pay")
    page.wait_for_selector("#payment-result")
    assert "thành công" in page.inner_text("#payment-result")
    assert gateway.ipn_answers and gateway.ipn_answers[-1][0] == 200 and gateway.ipn_answers[-1][1]["code"] == "00"
    shot(page, "citizen-04-paid")
    page.click("#back-to-dossier")
    page.wait_for_selector("#receipts")
    assert "Đang xử lý" in page.inner_text("#dossier-status")

    # 4. the specialist asks for a supplement; the citizen uploads it from home; the desk confirms
    staff.post(f"/api/v1/dossiers/{code}/supplement-request", "tiepnhan", json={"reason": "Ảnh giấy tờ tùy thân bị mờ"})
    page.reload()
    page.wait_for_selector("#supplement-box")
    assert "bị mờ" in page.inner_text("#supplement-box")
    page.select_option("#supplement-key", "giay_to_tuy_than")
    page.set_input_files("#supplement-file", files=[{"name": "cccd.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.click("#send-supplement")
    page.wait_for_selector("text=Đã gửi giấy tờ bổ sung")
    staff.post(f"/api/v1/dossiers/{code}/supplement-received", "tiepnhan", json={})

    # 5. processed, the result attached electronically, downloaded from home
    staff.complete(code, "chuyenvien", {})
    staff.post(
        f"/api/v1/dossiers/{code}/attachments",
        "tiepnhan",
        files={"file": ("giay_xac_nhan.pdf", PDF, "application/pdf")},
        data={"document_key": "giay_xac_nhan"},
    )
    staff.complete(code, "tiepnhan", {"returned_to": "Lê Thị Hoa", "return_method": "truc_tuyen"})
    page.reload()
    page.wait_for_selector("#result-files")
    with page.expect_download() as dl:
        page.click("#result-files button")
    assert dl.value.suggested_filename == "giay_xac_nhan.pdf"
    assert Path(dl.value.path()).read_bytes() == PDF
    shot(page, "citizen-05-result")


ONLINE_FORMJS = Path(__file__).resolve().parents[1] / "data" / "online_formjs" / "online_formjs.bpmn"


def test_a_form_js_intake_form_is_filled_in_with_the_form_js_viewer(online_server, new_page):
    """A level-3 procedure whose intake form is a form-js form: the citizen's page draws it with form-js's own
    viewer (as the staff's task page does), cut to the applicant's fields, its conditions live."""
    from .a11y import axe_violations, describe

    server, _ = online_server
    deploy_bytes(server.db, ONLINE_FORMJS.read_bytes(), ONLINE_FORMJS.name, form_files_beside(ONLINE_FORMJS))
    page = new_page(width=390, height=844, has_touch=True, is_mobile=True)
    page.goto(server("/cong-dan/thu-tuc/9.000302"))
    page.wait_for_selector("#applicant-form .fjs-container")
    form = page.locator("#applicant-form")
    # only the applicant's part: no officer's field, nor the text placed among them
    text = form.inner_text()
    assert "Mục đích đăng ký" in text and "Cách nhận kết quả" in text
    for staff_only in ("Kết quả kiểm tra", "Ghi chú nội bộ", "Phần dành cho cán bộ"):
        assert staff_only not in text
    # form-js's condition: the address shows only for delivery by post
    assert form.get_by_label("Địa chỉ nhận qua bưu điện").count() == 0
    page.fill("#a-name", "Lê Thị Hoa")
    page.fill("#a-phone", PHONE)
    page.click("#submit")  # required fields, checked by the viewer before anything is sent
    page.wait_for_selector("#applicant-form .fjs-has-errors")
    assert page.locator("#dossier-code").count() == 0
    form.get_by_label("Mục đích đăng ký").fill("Đăng ký thử")
    form.get_by_label("Qua bưu điện").check()
    form.get_by_label("Địa chỉ nhận qua bưu điện").fill("12 Trần Phú, Quảng Ngãi")
    bad = axe_violations(page)
    assert not bad, describe("/cong-dan/thu-tuc/9.000302", bad)
    shot(page, "citizen-06-formjs")
    page.click("#submit")
    page.wait_for_selector("#dossier-code")
    code = page.inner_text("#dossier-code").strip()
    d = requests.get(server(f"/api/v1/dossiers/{code}"), headers=Staff(server).h("tiepnhan"), timeout=10).json()
    assert d["data"] == {"purpose": "Đăng ký thử", "delivery": "buu_dien", "address": "12 Trần Phú, Quảng Ngãi"}
    assert d["channel"] == 2 and d["procedure_code"] == "9.000302"
