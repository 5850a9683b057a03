"""Citizen channels through the API and the delivery task, against real servers started here: an SMTP server
(aiosmtpd) and HTTP gateways on 127.0.0.1 (SMS, Zalo, national portal), including a slow one and a failing one."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from engine.channels.config import ChannelPolicy
from engine.channels.senders import sms_text, zalo_phone
from engine.models import InboundMessage, Notification, utcnow
from engine.worker import Worker
from tests.channels_support import Gateway, SmtpServer

from .helpers import assert_problem, new_dossier

TOKEN = "gateway-secret-token"


@pytest.fixture
def servers(settings):
    """Every channel configured against servers of this test (before the app is built)."""
    smtp, sms, zalo, portal, oa = SmtpServer(), Gateway(), Gateway(answer={"error": 0}), Gateway(), Gateway()
    ch = settings.channels
    ch.smtp_url, ch.mail_from = smtp.url, "motcua@tinh.gov.vn"
    ch.sms_url, ch.zalo_url, ch.zalo_token, ch.portal_url = sms.url, zalo.url, "zalo-token", portal.url
    ch.zalo_oa_url, ch.zalo_app_id, ch.zalo_oa_secret = oa.url, "app-123", "oa-secret"
    ch.inbound_token = TOKEN
    ch.policy = ChannelPolicy(timeout=1.0, concurrency=4, max_tries=3, backoff_base=30, backoff_cap=120)
    yield {"smtp": smtp, "sms": sms, "zalo": zalo, "portal": portal, "oa": oa}
    for s in (smtp, sms, zalo, portal, oa):
        s.close()


@pytest.fixture
def worker(settings, db, app):
    w = Worker(settings, db=db, name=f"motcua-ch-{id(settings)}")
    yield w
    w.delivery.close()
    try:
        w.huey.storage.flush_all()
    except Exception:
        pass


def rows(db, **where):
    with db.read() as s:
        q = select(Notification).order_by(Notification.id)
        for k, v in where.items():
            q = q.where(getattr(Notification, k) == v)
        out = list(s.scalars(q))
        s.expunge_all()
        return out


def finish(client, d):
    """Every step of the four-step procedure, accepted: received → in process → processed → returned."""
    for user in ("tiepnhan", "chuyenvien", "chuyenvien", "tiepnhan"):
        r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", user, json={"data": {"decision": "accept"}})
        assert r.status_code == 200, r.get_json()
        d = r.get_json()
    return d


# ---------------------------------------------------------------------------------------------------------
def test_every_channel_delivers_to_its_real_server(servers, client, worker, db):
    d = new_dossier(client)
    out = worker.deliver()
    assert {c: r["sent"] for c, r in out.items()} == {"email": 1, "sms": 1, "zalo": 1, "national_portal": 1}

    (sms,) = servers["sms"].bodies()
    assert (
        sms["to"] == "0912345678"
        and sms["text"] == f"Ho so {d['code']} da duoc tiep nhan. Ngay hen tra: " + sms["text"].rsplit(": ", 1)[1]
    )
    assert sms["text"].isascii() and len(sms["text"]) <= 160

    (mail,) = servers["smtp"].messages
    m = mail["message"]
    assert mail["to"] == ["an@example.vn"] and m["Subject"] == f"Hồ sơ {d['code']} đã được tiếp nhận"
    assert m.is_multipart() and [p.get_content_type() for p in m.iter_parts()] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in m.iter_parts())
    assert "Kính gửi Nguyễn Văn An" in text and "Ngày hẹn trả kết quả" in text
    assert "<strong>" + d["code"] + "</strong>" in html and all(
        p.get_content_charset() == "utf-8" for p in m.iter_parts()
    )

    (z,) = servers["zalo"].requests
    assert z["headers"]["access_token"] == "zalo-token"
    assert z["json"]["phone"] == "84912345678" and z["json"]["template_id"] == "motcua_received"
    assert z["json"]["template_data"]["ma_ho_so"] == d["code"]

    (p,) = servers["portal"].requests
    assert p["json"] == {
        "code": d["code"],
        "status_code": 2,
        "status": "received",
        "procedure_code": "9.000001",
        "agency": "000.31.14.H56",
        "at": p["json"]["at"],
        "sequence": 1,
        "idempotency_key": f"{d['code']}-1",
    }
    assert p["headers"]["Idempotency-Key"] == f"{d['code']}-1"

    log = client.get(f"/api/v1/dossiers/{d['code']}/deliveries", "tiepnhan").get_json()
    assert log["total"] == 4 and {i["result"] for i in log["items"]} == {"sent"}
    assert {i["channel"] for i in log["items"]} == {"email", "sms", "zalo", "national_portal"}
    assert all(i["tries"] == 1 for i in log["items"])
    assert client.get(f"/api/v1/dossiers/{d['code']}/deliveries", "khac").status_code == 404  # other agency


def test_portal_gets_every_status_in_order_as_a_list_after_an_outage(servers, client, worker, db):
    portal = servers["portal"]
    portal.status = 500  # the portal is down while the dossier moves on
    d = new_dossier(client)
    worker.deliver()
    finish(client, d)
    worker.deliver()  # the head is backing off: nothing else of this dossier may leave
    statuses = [r.payload["status_code"] for r in rows(db, channel="national_portal")]
    assert statuses == [2, 4, 9, 10]
    assert [r["json"]["sequence"] for r in portal.requests] == [1]  # only the head was tried
    portal.status = 200
    with time_machine.travel(utcnow() + timedelta(seconds=31), tick=True):
        worker.deliver()
    last = portal.requests[-1]["json"]
    assert isinstance(last, list) and [i["sequence"] for i in last] == list(range(1, len(statuses) + 1))
    assert [i["status_code"] for i in last] == statuses
    assert portal.requests[-1]["headers"]["Idempotency-Key"] == ",".join(
        f"{d['code']}-{n}" for n in range(1, len(statuses) + 1)
    )


def test_a_failing_gateway_backs_off_then_dead_letters_and_an_admin_resends(servers, client, worker, db):
    servers["sms"].status = 500
    d = new_dossier(client)
    t0 = utcnow()
    worker.deliver()
    (sms,) = rows(db, channel="sms")
    assert sms.tries == 1 and sms.sent_at is None and "HTTP 500" in sms.last_error
    assert 29 <= (sms.next_try_at - t0).total_seconds() <= 35  # base 30 s
    with time_machine.travel(t0 + timedelta(seconds=31), tick=True):
        worker.deliver()
    (sms,) = rows(db, channel="sms")
    assert sms.tries == 2 and 59 <= (sms.next_try_at - t0 - timedelta(seconds=31)).total_seconds() <= 65  # doubled
    with time_machine.travel(t0 + timedelta(seconds=100), tick=True):
        worker.deliver()
    (sms,) = rows(db, channel="sms")
    assert sms.tries == 3 and sms.dead_at is not None and sms.next_try_at is None  # max_tries = 3
    assert len(servers["sms"].requests) == 3
    # others were not held up by the failing SMS gateway
    assert {r.channel for r in rows(db) if r.sent_at} == {"email", "zalo", "national_portal"}

    assert client.get("/api/v1/notifications/dead", "tiepnhan").status_code == 403
    dead = client.get("/api/v1/notifications/dead", "admin").get_json()
    assert dead["total"] == 1 and dead["items"][0]["id"] == sms.id and dead["items"][0]["result"] == "dead"
    assert_problem(client.post("/api/v1/notifications/resend", "tiepnhan", json={"ids": "x"}), 403)
    assert_problem(client.post("/api/v1/notifications/resend", "admin", json={"ids": [10**9]}), 404)
    servers["sms"].status = 200
    assert client.post("/api/v1/notifications/resend", "admin", json={"ids": [sms.id]}).get_json() == {"resent": 1}
    worker.deliver()
    (sms,) = rows(db, channel="sms")
    assert sms.sent_at is not None and sms.tries == 1 and len(servers["sms"].requests) == 4
    items = client.get(f"/api/v1/dossiers/{d['code']}/history", "tiepnhan").get_json()["events"]
    assert any(e["action"] == "notification.resent" and e["actor"] == "admin" for e in items)


def metrics(client) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    client.app.config["MOTCUA_METRICS_CACHE_SECONDS"] = 0
    out = {}
    for fam in text_string_to_metric_families(client.raw.get("/metrics").get_data(as_text=True)):
        for s in fam.samples:
            out[(s.name, s.labels.get("channel"))] = s.value
    return out


def test_the_portal_is_retried_forever_with_capped_backoff_in_order_and_shows_as_a_backlog(servers, client, worker, db):
    """max_tries = 3 dead-letters the SMS; the portal, answering 500 for 10 tries (the clock moved on), is
    retried every backoff_cap (120 s) and never dead-lettered; its backlog and age are in /metrics; every try
    carries the dossier's updates from its first unsent one, in order; when the portal recovers, all arrive."""
    portal = servers["portal"]
    portal.status = servers["sms"].status = 500
    t0 = utcnow()
    d = new_dossier(client)
    worker.deliver()
    finish(client, d)  # three more status changes queue behind the failing head
    waits, now = [], t0
    for _ in range(9):
        (head,) = [r for r in rows(db, channel="national_portal") if r.sequence == 1]
        now = head.next_try_at + timedelta(seconds=1)
        with time_machine.travel(now, tick=True):
            worker.deliver()
        (head,) = [r for r in rows(db, channel="national_portal") if r.sequence == 1]
        waits.append(round((head.next_try_at - now).total_seconds()))
    heads = rows(db, channel="national_portal")
    assert heads[0].tries == 10 and heads[0].dead_at is None and "HTTP 500" in heads[0].last_error
    assert [w // 10 for w in waits] == [6, 12, 12, 12, 12, 12, 12, 12, 12]  # 60 s, then the 120 s cap
    assert all(r.dead_at is None for r in heads) and [r.tries for r in heads] == [10, 9, 9, 9]
    sent = [r["json"] if isinstance(r["json"], list) else [r["json"]] for r in portal.requests]
    assert len(sent) == 10 and all([i["sequence"] for i in b] == list(range(1, len(b) + 1)) for b in sent)
    sms = rows(db, channel="sms")
    assert len(sms) == 4 and all(r.dead_at is not None and r.tries == 3 for r in sms)  # others still give up

    with time_machine.travel(now + timedelta(seconds=5), tick=True):
        m = metrics(client)
        log = client.get(f"/api/v1/dossiers/{d['code']}/deliveries", "tiepnhan").get_json()["items"]
    assert m[("motcua_outbox_pending", "national_portal")] == 4
    assert m[("motcua_outbox_oldest_pending_seconds", "national_portal")] >= (now - t0).total_seconds()
    assert m.get(("motcua_outbox_dead", "national_portal"), 0) == 0 and m[("motcua_outbox_dead", "sms")] == 4
    assert {i["result"] for i in log if i["channel"] == "national_portal"} == {"retrying"}
    dead = client.get("/api/v1/notifications/dead", "admin").get_json()
    assert {i["channel"] for i in dead["items"]} == {"sms"}

    portal.status = 200  # the portal recovers: the next try sends the dossier's whole backlog, in order
    with time_machine.travel(now + timedelta(seconds=121), tick=True):
        out = worker.deliver()
        m = metrics(client)
    assert out["national_portal"]["sent"] == 4
    last = portal.requests[-1]["json"]
    assert [i["sequence"] for i in last] == [1, 2, 3, 4] and [i["status_code"] for i in last] == [2, 4, 9, 10]
    assert all(r.sent_at for r in rows(db, channel="national_portal"))
    assert m.get(("motcua_outbox_pending", "national_portal"), 0) == 0


def test_backoff_stays_at_its_cap_for_a_message_retried_for_months():
    from engine.channels.config import ChannelSettings

    p, ch = ChannelPolicy(backoff_base=30, backoff_cap=3600), ChannelSettings()
    assert [p.backoff(t) for t in (1, 2, 3, 8, 5000, 10**6)] == [30, 60, 120, 3600, 3600, 3600]
    assert ch.gives_up("sms", 8) and not ch.gives_up("sms", 7) and not ch.gives_up("national_portal", 10**6)


def test_a_slow_gateway_slows_neither_requests_nor_other_channels(servers, client, worker, db):
    servers["sms"].delay = 5.0  # answers after 5 s; the SMS timeout is 1 s
    new_dossier(client)
    new_dossier(client)
    import threading

    started = time.monotonic()
    done = {}
    t = threading.Thread(target=lambda: done.update(worker.deliver()))
    t.start()
    time.sleep(0.2)  # let the delivery be under way, then use the API meanwhile
    r0 = time.monotonic()
    new_dossier(client)
    request_seconds = time.monotonic() - r0
    t.join()
    assert request_seconds < 1.0
    assert done["sms"]["sent"] == 0 and done["sms"]["failed"] == 2
    assert done["email"]["sent"] == 2 and done["national_portal"]["sent"] == 2
    assert done["email"]["seconds"] < 1.0 < done["sms"]["seconds"] < 4.0  # timed out at 1 s, not 5 s
    assert time.monotonic() - started < 4.5
    assert all(
        "Timeout" in r.last_error or "timed out" in r.last_error for r in rows(db, channel="sms") if r.last_error
    )


# ---------------------------------------------------------------------------------------------------------
def test_inbound_sms_lookup(servers, client, worker, db):
    d = new_dossier(client)
    worker.deliver()
    url = "/api/v1/inbound/sms"
    assert_problem(client.post(url, json={"from": "0987000111", "text": f"TRACUU {d['code']}"}), 401)
    assert_problem(
        client.post(url, headers={"X-Gateway-Token": "wrong"}, json={"from": "0987000111", "text": "TC x"}), 403
    )
    h = {"X-Gateway-Token": TOKEN}
    code = d["code"]
    for text in (f"TRACUU {code}", f"tra cuu {code.lower()}", f"TRA CỨU {code}", f"tc {code}", f"Tracuu{code}"):
        r = client.post(url, headers=h, json={"from": "0987000111", "text": text})
        assert r.status_code == 202 and r.get_json() == {"accepted": True, "outcome": "found"}, text
    r = client.post(url, headers=h, json={"from": "0987000111", "text": "TRACUU KHONG-CO-0001"})
    assert r.get_json()["outcome"] == "unknown"
    assert client.post(url, headers=h, json={"from": "0987000111", "text": "xin chao"}).get_json()["outcome"] == "help"
    worker.deliver()
    answers = [b["text"] for b in servers["sms"].bodies() if b["to"] == "0987000111"]
    assert len(answers) == 7 and all(a.isascii() and len(a) <= 160 for a in answers)
    assert sum(a.startswith(f"Ho so {code}: Duoc tiep nhan. Hen tra: ") for a in answers) == 5
    assert "Nguyen" not in " ".join(answers) and "0912345678" not in " ".join(answers)  # no personal data
    assert sum(a.startswith("Xin loi, khong tim thay ho so KHONG-CO-0001") for a in answers) == 1
    assert sum(a.startswith("De tra cuu ho so, soan: TRACUU") for a in answers) == 1
    # at most 10 per number per hour (counted in the database, so across processes), told once
    for _ in range(5):
        client.post(url, headers=h, json={"from": "0987000111", "text": f"TC {code}"})
    outcomes = [
        client.post(url, headers=h, json={"from": "0987000111", "text": f"TC {code}"}).get_json()["outcome"]
        for _ in range(2)
    ]
    assert outcomes == ["limited", "limited"]
    assert (
        client.post(url, headers=h, json={"from": "0987000222", "text": f"TC {code}"}).get_json()["outcome"] == "found"
    )
    worker.deliver()
    answers = [b["text"] for b in servers["sms"].bodies() if b["to"] == "0987000111"]
    assert len(answers) == 11 and sum(a.startswith("Ban da tra cuu qua 10 lan") for a in answers) == 1
    with time_machine.travel(utcnow() + timedelta(hours=1, seconds=5), tick=True):
        assert (
            client.post(url, headers=h, json={"from": "0987000111", "text": f"TC {code}"}).get_json()["outcome"]
            == "found"
        )
    with db.read() as s:
        assert s.query(InboundMessage).count() == 16


def zalo_event(user="zalo-user-1", text="TRACUU X", app_id="app-123", ts="1732700000000"):
    return json.dumps(
        {
            "app_id": app_id,
            "event_name": "user_send_text",
            "timestamp": ts,
            "sender": {"id": user},
            "recipient": {"id": "oa-1"},
            "message": {"text": text, "msg_id": "m1"},
        }
    ).encode()


def zalo_mac(raw: bytes, app_id="app-123", ts="1732700000000", secret="oa-secret") -> str:
    return hashlib.sha256(app_id.encode() + raw + ts.encode() + secret.encode()).hexdigest()


def test_zalo_webhook_checks_the_signature_and_answers_through_the_oa_api(servers, client, worker, db):
    d = new_dossier(client)
    raw = zalo_event(text=f"tra cứu {d['code']}")
    url = "/api/v1/inbound/zalo"
    ct = {"Content-Type": "application/json"}
    assert_problem(client.post(url, data=raw, headers=ct), 401)
    assert_problem(client.post(url, data=raw, headers={**ct, "X-ZEvent-Signature": "mac=" + "0" * 64}), 403)
    tampered = raw.replace(b"zalo-user-1", b"zalo-user-2")
    assert_problem(client.post(url, data=tampered, headers={**ct, "X-ZEvent-Signature": f"mac={zalo_mac(raw)}"}), 403)
    r = client.post(url, data=raw, headers={**ct, "X-ZEvent-Signature": f"mac={zalo_mac(raw)}"})
    assert r.status_code == 200 and r.get_json()["outcome"] == "found"
    worker.deliver()
    (answer,) = servers["oa"].requests
    assert answer["headers"]["access_token"] == "zalo-token"
    assert answer["json"]["recipient"] == {"user_id": "zalo-user-1"}
    assert answer["json"]["message"]["text"].startswith(f"Ho so {d['code']}: ")


# ---------------------------------------------------------------------------------------------------------
def test_templates_are_overridden_by_an_admin_and_previewed(servers, client, worker, db):
    assert client.get("/api/v1/templates", "tiepnhan").status_code == 403
    items = client.get("/api/v1/templates", "admin").get_json()["items"]
    names = {i["name"] for i in items}
    for ev in (
        "received",
        "refused",
        "supplement_requested",
        "payment_required",
        "result_ready",
        "returned",
        "apology",
        "otp",
        "officer_reminder",
    ):
        assert f"{ev}/sms.txt" in names and f"{ev}/email.html" in names
    t = client.get("/api/v1/templates/received/sms.txt", "admin").get_json()
    assert t["overridden"] is False and "tiep nhan" in t["source"]
    bad = client.raw.put(
        "/api/v1/templates/received/sms.txt", headers=client.headers("admin"), json={"source": "{{ code "}
    )
    assert_problem(bad, 422)
    sandbox = client.raw.put(
        "/api/v1/templates/received/sms.txt",
        headers=client.headers("admin"),
        json={"source": "{{ ''.__class__.__mro__[1].__subclasses__() }}"},
    )
    assert_problem(sandbox, 422)  # the sandbox refuses internals
    r = client.raw.put(
        "/api/v1/templates/received/sms.txt",
        headers=client.headers("admin"),
        json={"source": "UBND xa: da nhan ho so {{ code }}, hen {{ due_date }}"},
    )
    assert r.status_code == 200 and r.get_json()["overridden"] is True
    prev = client.post(
        "/api/v1/templates/preview", "admin", json={"event": "received", "context": {"code": "ABC-1"}}
    ).get_json()
    assert prev["parts"]["received/sms.txt"]["text"].startswith("UBND xa: da nhan ho so ABC-1")
    assert "Kính gửi" in prev["parts"]["received/email.txt"]["text"]
    d = new_dossier(client)
    worker.deliver()
    assert servers["sms"].bodies()[-1]["text"].startswith(f"UBND xa: da nhan ho so {d['code']}")
    assert client.raw.delete("/api/v1/templates/received/sms.txt", headers=client.headers("admin")).status_code == 204
    assert client.get("/api/v1/templates/nope.txt", "admin").status_code == 404


def test_sms_text_and_zalo_phone_rules():
    assert sms_text("Hồ sơ   đã được\ntiếp nhận") == "Ho so da duoc tiep nhan"
    long = "Hồ sơ " + "rất dài " * 100
    cut = sms_text(long)
    assert len(cut) <= 3 * 153 and cut.endswith("...") and cut.isascii() and not cut[:-3].endswith(" ")
    assert len(sms_text("a" * 160)) == 160 and len(sms_text("a " * 100)) <= 200
    assert zalo_phone("0912 345 678") == "84912345678" == zalo_phone("+84 912.345.678") == zalo_phone("84912345678")


def test_officers_are_reminded_by_email_and_zalo_and_always_in_their_inbox(servers, client, worker, db):
    from datetime import datetime

    from engine.calendar import VN_TZ
    from engine.models import User

    with db.uow() as s:
        u = s.scalars(select(User).where(User.username == "tiepnhan")).one()
        u.email, u.phone = "tiepnhan@xa.gov.vn", "0903111222"
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=VN_TZ), tick=False):
        d = new_dossier(client)  # the intake step waits for the receivers' role
    with time_machine.travel(datetime(2026, 3, 4, 15, 0, tzinfo=VN_TZ), tick=False):
        assert worker.sweep()["reminders"] == 1
        worker.deliver()
    reminder = [m for m in servers["smtp"].messages if m["to"] == ["tiepnhan@xa.gov.vn"]]
    assert len(reminder) == 1 and reminder[0]["message"]["Subject"] == f"Nhắc việc: hồ sơ {d['code']} sắp đến hạn"
    zalo = [r["json"] for r in servers["zalo"].requests if r["json"]["phone"] == "84903111222"]
    assert len(zalo) == 1 and zalo[0]["template_id"] == "motcua_officer_reminder"
    # canbo / canbo2 hold the receiver role too but gave no address: only their inbox has it
    assert not [m for m in servers["smtp"].messages if "canbo" in m["to"][0]]
    inbox = client.get("/api/v1/me/messages", "canbo").get_json()
    assert inbox["total"] == 1 and inbox["items"][0]["kind"] == "deadline.reminder"
    assert client.get("/api/v1/me/messages", "khac").get_json()["total"] == 0  # another agency


def test_period_report_is_sent_once_per_period_on_schedule(servers, settings, client, worker, db):
    from datetime import datetime

    from engine.calendar import VN_TZ
    from engine.channels.periodic import enqueue_due_reports

    reports = Gateway()
    settings.channels.reports_url = reports.url
    settings.channels.reports_schedule = ("monthly", "quarterly")
    try:
        with time_machine.travel(datetime(2026, 10, 3, 9, 0, tzinfo=VN_TZ), tick=False):
            new_dossier(client)
        with time_machine.travel(datetime(2026, 10, 15, 0, 5, tzinfo=VN_TZ), tick=False):
            assert enqueue_due_reports(db, settings) == ["report:monthly:2026-10", "report:quarterly:2026-Q3"]
            assert enqueue_due_reports(db, settings) == []  # once per period
            worker.deliver()
        monthly, quarterly = sorted(reports.requests, key=lambda r: r["json"]["period"])
        assert monthly["headers"]["Idempotency-Key"] == "report:monthly:2026-10"
        m = monthly["json"]
        assert (m["from"], m["to"]) == ("2026-09-15", "2026-10-14") and m["totals"]["received"]["total"] == 1
        assert quarterly["json"]["from"] == "2026-06-15" and quarterly["json"]["to"] == "2026-09-14"
        assert all(r.sent_at for r in rows(db, channel="national_report"))
    finally:
        reports.close()


def test_report_periods_follow_the_decree_cut_off_and_are_sent_from_the_15th_utc7(
    servers, settings, client, worker, db
):
    """Decree 09/2019's cut-off: every period ends on the 14th of its last month (UTC+7) and starts the day
    after the previous one of its type; both halves of the year are reported; each is sent from the 15th."""
    from datetime import datetime

    from engine.calendar import VN_TZ
    from engine.channels.periodic import enqueue_due_reports

    reports = Gateway()
    settings.channels.reports_url = reports.url
    settings.channels.reports_schedule = ("monthly", "quarterly", "half_year", "yearly")

    def at(y, mo, d, h, mi):
        with time_machine.travel(datetime(y, mo, d, h, mi, tzinfo=VN_TZ), tick=False):
            return enqueue_due_reports(db, settings)

    try:
        # first run: the latest closed period of each type
        assert at(2026, 12, 14, 23, 55) == [
            "report:monthly:2026-11",
            "report:quarterly:2026-Q3",
            "report:half_year:2026-H1",
            "report:yearly:2025",
        ]
        assert at(2026, 12, 15, 0, 5) == [  # 17:05 UTC on the 14th: already the 15th in Vietnam
            "report:monthly:2026-12",
            "report:quarterly:2026-Q4",
            "report:half_year:2026-H2",
            "report:yearly:2026",
        ]
        assert at(2027, 1, 14, 23, 55) == []
        assert at(2027, 1, 15, 8, 0) == ["report:monthly:2027-01"]
        assert at(2027, 6, 15, 8, 0) == [
            "report:monthly:2027-06",
            "report:quarterly:2027-Q2",
            "report:half_year:2027-H1",
        ]
        with time_machine.travel(datetime(2027, 6, 15, 8, 1, tzinfo=VN_TZ), tick=True):
            worker.deliver()
        got = {r["headers"]["Idempotency-Key"]: (r["json"]["from"], r["json"]["to"]) for r in reports.requests}
        assert len(got) == 12 and all(r.sent_at for r in rows(db, channel="national_report"))
        assert got["report:monthly:2026-12"] == ("2026-11-15", "2026-12-14")
        assert got["report:monthly:2027-01"] == ("2026-12-15", "2027-01-14")
        assert got["report:quarterly:2026-Q4"] == ("2026-09-15", "2026-12-14")
        assert got["report:quarterly:2027-Q2"] == ("2027-03-15", "2027-06-14")
        assert got["report:half_year:2026-H1"] == ("2025-12-15", "2026-06-14")
        assert got["report:half_year:2026-H2"] == ("2026-06-15", "2026-12-14")
        assert got["report:half_year:2027-H1"] == ("2026-12-15", "2027-06-14")
        assert got["report:yearly:2025"] == ("2024-12-15", "2025-12-14")
        assert got["report:yearly:2026"] == ("2025-12-15", "2026-12-14")
    finally:
        reports.close()


def test_the_drainer_keeps_to_its_share_of_the_sqlite_write_lock():
    from engine.channels.config import ChannelSettings
    from engine.channels.delivery import WriteTurns

    assert ChannelSettings.from_env({}).sqlite_write_share == 0.05
    assert ChannelSettings.from_env({"MOTCUA_OUTBOX_WRITE_SHARE": "0.2"}).sqlite_write_share == 0.2
    for bad in ("0", "1.5", "-1"):
        with pytest.raises(ValueError, match="MOTCUA_OUTBOX_WRITE_SHARE"):
            ChannelSettings.from_env({"MOTCUA_OUTBOX_WRITE_SHARE": bad})
    turns = WriteTurns(0.5)
    for _ in range(3):  # a few short writes fit in the burst: no wait
        with turns:
            time.sleep(0.001)
    assert turns.paused == 0
    with turns:  # 0.1 s of write time overdraws the bucket by ~0.05 s, which refills at 0.5 s per second
        time.sleep(0.1)
    t = time.monotonic()
    with turns:
        pass
    assert 0.08 <= time.monotonic() - t < 1.0 and turns.paused > 0


# ---------------------------------------------------------------------------------------------------------
def test_on_sqlite_each_drain_write_is_one_short_statement(servers, client, worker, db):
    """On SQLite every request's transaction needs the one write lock: the drainer's writes hold it for one
    statement of at most PIECE rows each (docs/channels.md, "Measured"), however big its rounds are (4 sending
    threads × 25 = 100 messages a round here). Counted by SQLite itself (the connection's total_changes) for
    every writing transaction of the draining threads while 260 messages drain to the real gateways: most
    accepted, some SMS refused (their failures recorded in pieces too), the portal's runs in order."""
    if not db.is_sqlite:
        pytest.skip("the bound is SQLite's (one writer); PostgreSQL's row locks block no request")
    import threading

    from sqlalchemy import event

    from engine.channels.delivery import PIECE

    dossiers = [new_dossier(client) for _ in range(60)]
    for d in dossiers[:5]:
        finish(client, d)  # five dossiers with runs of portal updates
    servers["sms"].status = lambda n: 500 if n % 3 == 0 else 200
    mine = threading.local()
    writes: list[tuple[int, int]] = []  # (statements, rows changed) of each of the drainer's writing transactions

    def draining() -> bool:
        return threading.current_thread().name.startswith("drain-")

    @event.listens_for(db.write_engine, "begin")
    def _begin(conn):
        if draining():
            mine.changes, mine.statements = conn.connection.dbapi_connection.total_changes, 0

    @event.listens_for(db.write_engine, "after_cursor_execute")
    def _statement(conn, cursor, statement, *_):
        if draining() and not statement.startswith(("PRAGMA", "BEGIN")):
            mine.statements += 1

    @event.listens_for(db.write_engine, "commit")
    def _commit(conn):
        if draining() and mine.statements:
            writes.append((mine.statements, conn.connection.dbapi_connection.total_changes - mine.changes))

    try:
        out = worker.deliver()
    finally:
        for name, fn in (("begin", _begin), ("after_cursor_execute", _statement), ("commit", _commit)):
            event.remove(db.write_engine, name, fn)
    total = len(rows(db))
    assert total >= 260
    sms_failed = out["sms"]["failed"]
    assert sms_failed >= 15 and out["sms"]["sent"] + sms_failed == len(servers["sms"].requests) == len(
        rows(db, channel="sms")
    )
    assert sum(r["sent"] for r in out.values()) == total - sms_failed  # everything else in this one delivery
    assert sum(n for _, n in writes) >= 2 * total  # every message claimed and recorded: all counted here
    assert max(n for _, n in writes) <= PIECE and {k for k, _ in writes} == {1}, sorted(writes)[-5:]
    # the guarantees hold: each message reached its gateway once, the portal's updates in order per dossier
    for channel, gateway in (("email", servers["smtp"].messages), ("zalo", servers["zalo"].requests)):
        assert len(gateway) == len(rows(db, channel=channel)) >= 60
    keys = [k for r in servers["portal"].requests for k in r["headers"]["Idempotency-Key"].split(",")]
    assert len(keys) == len(set(keys)) == len(rows(db, channel="national_portal"))
    for d in dossiers[:5]:
        sequences = [int(k.rsplit("-", 1)[1]) for k in keys if k.startswith(d["code"] + "-")]
        assert sequences == sorted(sequences) and len(sequences) > 1
