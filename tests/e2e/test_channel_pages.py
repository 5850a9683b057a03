"""The channels' pages in Chromium: the administrators' dead letters (/admin/dead-letters: list, select,
re-send) and the delivery log on the dossier page. Messages are delivered by the real `Delivery` to servers
started here (an SMS gateway on 127.0.0.1 that answers 500, then recovers; an SMTP server; the national
portal), on a server of their own so no other test's outbox is touched."""

from __future__ import annotations

import json
import urllib.request

import pytest

from engine.channels.config import EMAIL, NATIONAL_PORTAL, SMS, ChannelPolicy, ChannelSettings
from engine.channels.delivery import Delivery
from engine.channels.senders import build_senders
from tests.channels_support import Gateway, SmtpServer

from .conftest import DEMO_PASSWORD, _serve
from .support import login, shot


@pytest.fixture(scope="module")
def channel_server(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("e2e-channels"))


def _api(server, path, body=None, token=None):
    req = urllib.request.Request(
        server(path),
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _dossier(server, token, phone: str) -> str:
    body = {
        "procedure_code": "1.001193",
        "applicant": {"name": "Lê Thị Hoa", "id_number": "001190000777", "phone": phone, "email": "hoa@example.vn"},
        "channel": 1,
        "data": {},
    }
    return _api(server, "/api/v1/dossiers", body, token)["code"]


def test_admin_resends_a_dead_letter_and_the_dossier_page_logs_every_delivery(channel_server, new_page):
    server = channel_server
    sms, smtp, portal = Gateway(status=500), SmtpServer(), Gateway()
    channels = ChannelSettings(
        sms_url=sms.url,
        smtp_url=smtp.url,
        portal_url=portal.url,
        policy=ChannelPolicy(timeout=2.0, concurrency=2, max_tries=1),  # one failure is a dead letter
    )
    delivery = Delivery(server.db, channels, build_senders(channels, server.settings.var_dir))
    try:
        token = _api(server, "/api/v1/auth/token", {"username": "tiepnhan", "password": DEMO_PASSWORD})["access_token"]
        first, second = _dossier(server, token, "0912000001"), _dossier(server, token, "0912000002")
        out = delivery.drain(channels=[SMS, EMAIL, NATIONAL_PORTAL])
        assert (out[SMS].dead, out[EMAIL].sent, out[NATIONAL_PORTAL].sent) == (2, 2, 2)

        # A receiver is not let in.
        page = new_page(1280, 900)
        login(page, server, "tiepnhan")
        page.goto(server("/admin/dead-letters"))
        page.wait_for_selector("#flash:has-text('Chỉ quản trị viên')")
        assert page.locator("#dead-letters tr").count() == 0

        # The administrator sees both dead SMS, with the gateway's error, and re-sends one of them.
        login(page, server, "admin")
        page.goto(server("/admin/dead-letters"))
        page.wait_for_selector("#dead-letters tbody tr")
        assert page.inner_text("#dead-count") == "2 tin"
        rows = page.locator("#dead-letters tbody tr")
        assert rows.count() == 2
        text = page.inner_text("#dead-letters")
        assert "0912000001" in text and "0912000002" in text and "HTTP 500" in text and "sms" in text
        assert page.is_enabled("#resend")
        shot(page, "60-dead-letters")
        page.click("#resend")  # nothing selected yet: told so, nothing sent
        page.wait_for_selector("#flash:has-text('Chưa chọn tin nào')")
        row = rows.filter(has_text="0912000001")
        row.locator("input[type=checkbox]").check()
        page.click("#resend")
        page.wait_for_selector("#flash:has-text('Đã đưa 1 tin vào hàng đợi gửi lại')")
        page.wait_for_function("() => document.querySelectorAll('#dead-letters tbody tr').length === 1")
        assert page.inner_text("#dead-count") == "1 tin" and "0912000001" not in page.inner_text("#dead-letters")
        shot(page, "61-dead-letters-resent")

        # The gateway recovers; the re-sent message leaves on the next delivery, the other stays dead.
        sms.status = 200
        assert delivery.drain(channels=[SMS])[SMS].sent == 1
        assert [b["to"] for b in sms.bodies(status=200)] == ["0912000001"]
        page.click("#refresh")
        page.wait_for_function("() => document.querySelector('#dead-count').textContent === '1 tin'")

        # The delivery log on the dossier page: channel, recipient, tries, result.
        login(page, server, "tiepnhan")
        page.goto(server(f"/dossiers/{first}"))
        page.wait_for_selector("#deliveries tbody tr")
        log = page.inner_text("#deliveries")
        assert "Nhật ký gửi tin" in log
        for channel in ("SMS", "Thư điện tử", "Cổng DVC quốc gia"):
            assert page.locator("#deliveries tbody tr", has_text=channel).count() >= 1, channel
        sent = page.locator("#deliveries tbody tr.delivery-sent", has_text="SMS")
        assert sent.count() == 1 and "0912000001" in sent.inner_text() and "Đã gửi" in sent.inner_text()
        assert page.locator("#deliveries tbody tr.delivery-dead").count() == 0
        assert page.locator("#deliveries tbody tr", has_text="hoa@example.vn").first.inner_text().count("Đã gửi") == 1
        shot(page, "62-dossier-deliveries")

        page.goto(server(f"/dossiers/{second}"))
        page.wait_for_selector("#deliveries tbody tr")
        dead = page.locator("#deliveries tbody tr.delivery-dead")
        assert dead.count() == 1 and "Thất bại (thư chết)" in dead.inner_text() and "0912000002" in dead.inner_text()
        assert "HTTP 500" in (dead.locator("td").last.get_attribute("title") or "")

        # On a phone both pages fit the screen: the rows become cards, each value under its column's name.
        phone = new_page(390, 844)
        login(phone, server, "tiepnhan")
        phone.goto(server(f"/dossiers/{second}"))
        phone.wait_for_selector("#deliveries tbody tr.delivery-dead")
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        assert phone.locator("#deliveries tbody tr.delivery-dead td[data-label='Kết quả']").is_visible()
        shot(phone, "63-dossier-deliveries-phone")
        login(phone, server, "admin")
        phone.goto(server("/admin/dead-letters"))
        phone.wait_for_selector("#dead-letters tbody tr")
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        phone.locator("#dead-letters tbody tr input[type=checkbox]").focus()  # with the keyboard: space, then tab
        phone.keyboard.press("Space")
        assert phone.locator("#dead-letters tbody tr input[type=checkbox]").is_checked()
        shot(phone, "64-dead-letters-phone")
    finally:
        delivery.close()
        for s in (sms, smtp, portal):
            s.close()
