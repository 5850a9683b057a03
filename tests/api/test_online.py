"""Citizens online through the API: the public catalogue, online submission (JSON and multipart), sign-in by
a code sent by SMS, my dossiers, supplement, withdrawal, electronic results, and the fee paid through a
gateway that signs like the real ones (tests/fake_gateway.py). Real database (SQLite or PostgreSQL)."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from engine.calendar import VN_TZ
from engine.models import Attachment, Dossier, Event, Notification, OtpCode, Payment, utcnow
from engine.procedures import deploy_bytes, form_files_beside

from .helpers import PAY_SECRET, ROOT, assert_problem

ONLINE = ROOT / "tests" / "data" / "online" / "online_fee.bpmn"
PDF = b"%PDF-1.7\n" + b"0" * 200 + b"\n%%EOF\n"
PHONE = "0987654321"
APPLICANT = {"name": "Trần Văn Bình", "id_number": "001099001234", "phone": PHONE, "email": "binh@example.vn"}


def deploy_variant(db, code: str, fee: str | None = None, level: str | None = None):
    content = ONLINE.read_bytes().decode()
    content = content.replace('value="9.000301"', f'value="{code}"').replace('id="online_fee"', f'id="p{code[-3:]}"')
    if fee is not None:
        content = content.replace('name="fee" value="15000"', f'name="fee" value="{fee}"')
    if level is not None:
        content = content.replace('name="level" value="toan_trinh"', f'name="level" value="{level}"')
    deploy_bytes(db, content.encode(), f"{code}.bpmn", form_files_beside(ONLINE))


@pytest.fixture
def online_app(app, db, settings, gateway):
    deploy_bytes(db, ONLINE.read_bytes(), ONLINE.name, form_files_beside(ONLINE))
    settings.online.pay_secret = PAY_SECRET
    settings.online.pay_url = gateway.url + "/pay"
    settings.online.public_url = "http://motcua.test"
    return app


@pytest.fixture
def c(online_app, client):
    return client


def submit(c, data=None, applicant=None, procedure="9.000301", **kw):
    body = {"procedure_code": procedure, "applicant": applicant or APPLICANT, "data": data or {"purpose": "Xin việc"}}
    body.update(kw)
    return c.post("/api/v1/public/dossiers", json=body)


def sign_in(c, phone=PHONE) -> dict:
    r = c.post("/api/v1/public/otp", json={"phone": phone})
    assert r.status_code == 202, r.get_json()
    code = last_code(c, phone)
    r = c.post("/api/v1/public/otp/verify", json={"phone": phone, "code": code})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


def last_code(c, phone) -> str:
    db = c.app.extensions["motcua"].db
    with db.read() as s:
        body = s.scalars(
            select(Notification.body)
            .where(Notification.recipient == phone, Notification.kind == "otp")
            .order_by(Notification.id.desc())
        ).first()
    return re.search(r"\b(\d{6})\b", body).group(1)


def intake_task(c, code, user="tiepnhan"):
    items = c.get("/api/v1/tasks?per_page=100", user).get_json()["items"]
    return next(t for t in items if t["dossier_code"] == code)


def complete(c, task_id, data, user="tiepnhan"):
    return c.post(f"/api/v1/tasks/{task_id}/complete", user, json={"data": data})


def count(c, model):
    with c.app.extensions["motcua"].db.read() as s:
        return s.scalar(select(func.count()).select_from(model))


# -- the public catalogue ------------------------------------------------------------------------------------


def test_catalogue_lists_searches_and_pages_without_sign_in(c):
    r = c.get("/api/v1/public/procedures")
    assert r.status_code == 200
    body = r.get_json()
    codes = [p["code"] for p in body["items"]]
    assert "9.000301" in codes and body["total"] == len(codes) == 3
    online = next(p for p in body["items"] if p["code"] == "9.000301")
    assert online == {
        "code": "9.000301",
        "name": "Cấp giấy xác nhận thử nghiệm trực tuyến",
        "agency": "000.31.14.H56",
        "deadline": "5 working days",
        "cutoff": None,
        "fee": 15000,
        "level": "toan_trinh",
        "level_label": "Dịch vụ công trực tuyến toàn trình",
        "online": True,
    }
    assert [p["code"] for p in c.get("/api/v1/public/procedures?q=xác nhận").get_json()["items"]] == ["9.000301"]
    assert [p["code"] for p in c.get("/api/v1/public/procedures?q=9.0003").get_json()["items"]] == ["9.000301"]
    assert c.get("/api/v1/public/procedures?agency=000.00.00.H99").get_json()["total"] == 0
    assert c.get("/api/v1/public/procedures?level=toan_trinh").get_json()["total"] == 2
    page = c.get("/api/v1/public/procedures?per_page=1&page=2").get_json()
    assert page["per_page"] == 1 and page["total"] == 3 and len(page["items"]) == 1
    assert_problem(c.get("/api/v1/public/procedures?level=7"), 422)


def test_catalogue_detail_shows_steps_documents_and_only_the_applicants_form(c):
    d = c.get("/api/v1/public/procedures/9.000301").get_json()
    assert [s["name"] for s in d["steps"]] == [
        "Kiểm tra, tiếp nhận hồ sơ",
        "Thẩm định, cấp giấy xác nhận",
        "Trả kết quả",
    ]
    assert [x["key"] for x in d["documents"]] == ["to_khai", "giay_to_tuy_than"]
    mine = {"purpose", "copies", "delivery", "needed_by"}
    assert set(d["form"]["schema"]["properties"]) == mine  # no decision, no refusal reason
    assert d["form"]["schema"]["required"] == ["purpose"] and "allOf" not in d["form"]["schema"]
    r = c.get("/api/v1/public/procedures/9.000301/" + d["forms"][0]["download"])
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    assert set(r.get_json()["schema"]["properties"]) == mine
    assert_problem(c.get("/api/v1/public/procedures/9.999999"), 404)


# -- submission ----------------------------------------------------------------------------------------------


def test_online_submission_opens_the_intake_task_for_the_agencys_receivers(c):
    r = submit(c)
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    assert (d["status"], d["status_code"], d["channel"], d["agency"]) == ("new", 1, 2, "000.31.14.H56")
    task = intake_task(c, d["code"])
    assert task["spec_name"] == "Task_Intake" and "receiver" in task["roles"]
    other = c.get("/api/v1/tasks?per_page=100", "khac").get_json()["items"]
    assert all(t["dossier_code"] != d["code"] for t in other)
    history = c.get(f"/api/v1/dossiers/{d['code']}/history", "tiepnhan").get_json()
    assert history["events"][0]["to_status"] == "new"
    # the applicant is told
    with c.app.extensions["motcua"].db.read() as s:
        sms = s.scalars(select(Notification.body).where(Notification.recipient == PHONE)).all()
    assert any(d["code"] in b for b in sms)


def test_submission_with_documents_checked_like_the_desk(c):
    before = count(c, Dossier)
    payload = json.dumps(
        {
            "procedure_code": "9.000301",
            "applicant": {"name": "Trần Văn Bình", "phone": PHONE},
            "data": {"purpose": "Xin việc"},
        }
    )
    forged = c.post(
        "/api/v1/public/dossiers",
        data={"payload": payload, "to_khai": (io.BytesIO(b"not a pdf at all"), "to_khai.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert_problem(forged, 422)
    big = c.post(
        "/api/v1/public/dossiers",
        data={"payload": payload, "to_khai": (io.BytesIO(PDF * 20), "to_khai.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert_problem(big, 413)
    unknown = c.post(
        "/api/v1/public/dossiers",
        data={"payload": payload, "ban_ve": (io.BytesIO(PDF), "x.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert "ban_ve" in assert_problem(unknown, 422)["fields"]
    unsafe = c.post(
        "/api/v1/public/dossiers",
        data={"payload": payload, "to_khai": (io.BytesIO(PDF), "../../etc/passwd.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert_problem(unsafe, 422)
    assert count(c, Dossier) == before and count(c, Attachment) == 0  # nothing written
    ok = c.post(
        "/api/v1/public/dossiers",
        data={"payload": payload, "to_khai": (io.BytesIO(PDF), "Tờ khai.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 201, ok.get_json()
    docs = ok.get_json()["documents"]
    assert [(x["document_key"], x["filename"], x["content_type"]) for x in docs] == [
        ("to_khai", "Tờ khai.pdf", "application/pdf")
    ]
    staff = c.get(f"/api/v1/dossiers/{ok.get_json()['code']}/attachments", "tiepnhan").get_json()["items"]
    assert [a["document_key"] for a in staff] == ["to_khai"]


def test_a_submission_whose_documents_cannot_be_stored_leaves_no_dossier(c, db):
    """The dossier and its documents are one change: when the database refuses the document's row (a trigger
    stands in for a full disk), no dossier, event or message is left behind."""
    before = (count(c, Dossier), count(c, Event), count(c, Notification))
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_attachments() RETURNS trigger AS $$ "
                "BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_attachments BEFORE INSERT ON attachments "
                "FOR EACH ROW EXECUTE FUNCTION refuse_attachments()"
            )
        else:
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_attachments BEFORE INSERT ON attachments BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
    payload = json.dumps(
        {"procedure_code": "9.000301", "applicant": {"name": "Lê Thị Cúc", "phone": PHONE}, "data": {"purpose": "Học"}}
    )
    c.app.testing = False  # the server's own answer, not the exception re-raised into the test
    r = c.post(
        "/api/v1/public/dossiers",
        data={"payload": payload, "to_khai": (io.BytesIO(PDF), "to_khai.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert r.status_code >= 500 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    assert (count(c, Dossier), count(c, Event), count(c, Notification)) == before
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER refuse_attachments" + (" ON attachments" if db.engine.dialect.name == "postgresql" else "")
        )
    c.app.testing = True
    ok = submit(c, procedure="9.000301", data={"purpose": "Học"})
    assert ok.status_code == 201, ok.get_json()


def test_submission_checks_data_level_and_applicant(c, db):
    bad = assert_problem(submit(c, data={"purpose": "x", "copies": 9}), 422)
    assert set(bad["fields"]) == {"purpose", "copies"}
    staff_field = submit(c, data={"purpose": "Xin việc", "decision": "accept"})  # not the applicant's: dropped
    assert staff_field.status_code == 201
    assert "decision" not in c.get(f"/api/v1/dossiers/{staff_field.get_json()['code']}", "tiepnhan").get_json()["data"]
    deploy_variant(db, "9.000302", level="2")
    level2 = assert_problem(submit(c, procedure="9.000302"), 422)
    assert "2" in level2["message_vi"] and "level 2" in level2["message_en"]
    no_name = assert_problem(submit(c, applicant={"name": " ", "phone": PHONE}), 422)
    assert "applicant.name" in no_name["fields"]
    assert_problem(submit(c, applicant={"name": "A", "phone": "12345"}), 422)
    assert_problem(submit(c, procedure="9.404404"), 404)


def test_anonymous_submissions_are_limited_per_phone_and_per_ip(c):
    for _ in range(5):
        assert submit(c).status_code == 201
    r = submit(c)
    body = assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) > 0 and body["retry_after"] > 0
    # another phone from the same address still passes until the address's own limit
    other = dict(APPLICANT, phone="0911111111")
    assert [submit(c, applicant=other).status_code for _ in range(6)] == [201] * 5 + [429]
    # after the window, the phone may submit again
    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=1)):
        assert submit(c).status_code == 201


# -- sign-in by code -----------------------------------------------------------------------------------------


def test_sign_in_by_code_token_and_what_is_stored(c):
    r = c.post("/api/v1/public/otp", json={"phone": "+84 987 654 321"})
    assert r.status_code == 202 and r.get_json() == {"phone": PHONE, "expires_in": 300}
    code = last_code(c, PHONE)
    with c.app.extensions["motcua"].db.read() as s:
        row = s.get(OtpCode, PHONE)
        assert row.code_hash != code and code not in row.code_hash and len(row.code_hash) == 64
    r = c.post("/api/v1/public/otp/verify", json={"phone": PHONE, "code": code})
    assert r.status_code == 200
    tok = r.get_json()
    assert tok["role"] == "citizen" and tok["phone"] == PHONE and 0 < tok["expires_in"] <= 3600
    again = c.post("/api/v1/public/otp/verify", json={"phone": PHONE, "code": code})
    assert_problem(again, 422)  # used up
    # a citizen's token opens no staff endpoint
    headers = {"Authorization": f"Bearer {tok['access_token']}"}
    assert c.get("/api/v1/dossiers", headers=headers).status_code in (401, 403)
    assert c.get("/api/v1/tasks", headers=headers).status_code in (401, 403)
    # and a staff token is no citizen's
    assert_problem(c.get("/api/v1/public/my/dossiers", "tiepnhan"), 401)


def test_wrong_codes_lock_after_five_and_codes_expire(c):
    c.post("/api/v1/public/otp", json={"phone": PHONE})
    code = last_code(c, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for left in (4, 3, 2, 1):
        body = assert_problem(c.post("/api/v1/public/otp/verify", json={"phone": PHONE, "code": wrong}), 422)
        assert f"còn {left} lần" in body["fields"]["code"]
    last = assert_problem(c.post("/api/v1/public/otp/verify", json={"phone": PHONE, "code": wrong}), 422)
    assert "khóa" in last["message_vi"] and "locked" in last["message_en"]
    locked = c.post("/api/v1/public/otp/verify", json={"phone": PHONE, "code": code})  # even the right one
    assert_problem(locked, 429)
    assert_problem(c.post("/api/v1/public/otp", json={"phone": PHONE}), 429)
    with time_machine.travel(utcnow() + timedelta(minutes=16)):
        assert c.post("/api/v1/public/otp", json={"phone": PHONE}).status_code == 202
        fresh = last_code(c, PHONE)
    with time_machine.travel(utcnow() + timedelta(minutes=16 + 6)):
        assert_problem(c.post("/api/v1/public/otp/verify", json={"phone": PHONE, "code": fresh}), 422)  # expired


def test_codes_are_limited_per_phone(c):
    assert [c.post("/api/v1/public/otp", json={"phone": PHONE}).status_code for _ in range(6)] == [202] * 5 + [429]
    assert_problem(c.post("/api/v1/public/otp", json={"phone": "12"}), 422)


# -- my dossiers ---------------------------------------------------------------------------------------------


def test_a_citizen_sees_only_their_own_dossiers_and_no_staff_fields(c):
    mine = submit(c).get_json()["code"]
    theirs = submit(c, applicant=dict(APPLICANT, phone="0911222333")).get_json()["code"]
    complete(
        c,
        intake_task(c, mine)["id"],
        {"purpose": "Xin việc", "decision": "accept", "note": "nội bộ", "documents_received": ["to_khai"]},
    )
    h = sign_in(c)
    listing = c.get("/api/v1/public/my/dossiers", headers=h).get_json()
    assert [d["code"] for d in listing["items"]] == [mine] and listing["total"] == 1
    view = c.get(f"/api/v1/public/my/dossiers/{mine}", headers=h).get_json()
    assert view["status"] == "payment_required" and view["data"] == {"purpose": "Xin việc"}
    # the step done, and where the dossier waits for the applicant (engine/messages.py)
    assert [(s["name"], s["state"]) for s in view["steps"]] == [
        ("Kiểm tra, tiếp nhận hồ sơ", "completed"),
        ("Chờ nộp lệ phí", "waiting"),
    ]
    assert view["payments"][0]["amount"] == 15000 and view["payments"][0]["status"] == "pending"
    assert_problem(c.get(f"/api/v1/public/my/dossiers/{theirs}", headers=h), 404)
    assert_problem(c.get("/api/v1/public/my/dossiers/NO-SUCH", headers=h), 404)
    assert_problem(c.get("/api/v1/public/my/dossiers"), 401)


def test_my_dossier_shows_the_applicants_fields_labelled_as_the_form_defines_them(c):
    data = {"purpose": "Xin việc", "copies": 2, "delivery": "buu_dien", "needed_by": "2026-02-10"}
    code = submit(c, data=data).get_json()["code"]
    complete(
        c,
        intake_task(c, code)["id"],
        {**data, "decision": "accept", "note": "nội bộ", "documents_received": ["to_khai"]},
    )
    view = c.get(f"/api/v1/public/my/dossiers/{code}", headers=sign_in(c)).get_json()
    [section] = view["data_view"]
    assert section["title"] == "Kiểm tra, tiếp nhận hồ sơ"
    fields = {f["key"]: f for f in section["fields"]}
    # the applicant's fields only, by their labels, a choice by its title, a date marked as a date
    assert list(fields) == ["purpose", "copies", "delivery", "needed_by"]
    assert [f["label"] for f in section["fields"]] == [
        "Mục đích xin cấp",
        "Số bản",
        "Cách nhận kết quả",
        "Cần trước ngày",
    ]
    assert (fields["delivery"]["kind"], fields["delivery"]["text"]) == ("choice", "Qua bưu điện")
    assert (fields["needed_by"]["kind"], fields["needed_by"]["value"]) == ("date", "2026-02-10")
    assert (fields["copies"]["kind"], fields["copies"]["value"]) == ("number", 2)
    assert not any(f["staff_only"] for f in section["fields"])
    # nothing an officer wrote: no decision, note or paper checklist, in the labelled view or the raw data
    assert "Tiếp nhận" not in str(view["data_view"]) and "nội bộ" not in str(view)
    assert set(view["data"]) == set(fields)


def test_a_desk_dossier_with_the_same_phone_is_the_citizens_too(c):
    r = c.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "9.000001", "applicant": {"name": "Bình", "phone": "+84987654321"}, "channel": 1},
    )
    assert r.status_code == 201
    h = sign_in(c)
    assert [d["code"] for d in c.get("/api/v1/public/my/dossiers", headers=h).get_json()["items"]] == [
        r.get_json()["code"]
    ]


# -- intake, payment, result ---------------------------------------------------------------------------------


def pay_order(c, gateway, code, headers):
    r = c.post(f"/api/v1/public/my/dossiers/{code}/payment", headers=headers)
    assert r.status_code == 200, r.get_json()
    link = r.get_json()
    assert link["payment_url"].startswith(gateway.url + "/pay?")
    from urllib.parse import parse_qsl, urlsplit

    order = dict(parse_qsl(urlsplit(link["payment_url"]).query))
    from ..fake_gateway import gateway_sign

    assert order["secure_hash"] == gateway_sign(PAY_SECRET, order)  # we sign as the gateway checks
    assert order["amount"] == "15000" and order["ipn_url"] == "http://motcua.test/api/v1/payments/ipn"
    return order


def test_accepted_online_dossier_waits_for_the_fee_paid_once_through_the_gateway(c, gateway):
    code = submit(c).get_json()["code"]
    r = complete(
        c, intake_task(c, code)["id"], {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}
    )
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "payment_required" and r.get_json()["tasks"] == []
    h = sign_in(c)
    order = pay_order(c, gateway, code, h)
    # forged: signed with another secret → 403, nothing paid
    forged = gateway.confirmation(order, secret="not-the-secret")
    assert_problem(c.get("/api/v1/payments/ipn", query_string=forged), 403)
    # the right signature but another amount → 422
    assert_problem(c.get("/api/v1/payments/ipn", query_string=gateway.confirmation(order, amount=1000)), 422)
    # an order nobody made → 404
    assert_problem(c.get("/api/v1/payments/ipn", query_string=gateway.confirmation(dict(order, order_id="MCX"))), 404)
    # a tampered amount under the old signature → 403
    tampered = dict(gateway.confirmation(order), amount="1")
    assert_problem(c.post("/api/v1/payments/ipn", data=tampered), 403)
    with c.app.extensions["motcua"].db.read() as s:
        assert s.scalar(select(Payment.status)) == "pending"
    good = gateway.confirmation(order)
    r = c.post("/api/v1/payments/ipn", data=good)
    assert r.status_code == 200 and r.get_json()["code"] == "00", r.get_json()
    receipt = r.get_json()["receipt_no"]
    replay = c.post("/api/v1/payments/ipn", data=good)
    assert replay.status_code == 200 and replay.get_json()["code"] == "01"
    d = c.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()
    assert d["status"] == "in_process" and [t["spec_name"] for t in d["tasks"]] == ["Task_Appraisal"]
    # accepted at intake: 1 → 2 (received) → 6 (fee due) → 4 (in process), each in the audit trail
    steps = [
        (e["from_status"], e["to_status"])
        for e in c.get(f"/api/v1/dossiers/{code}/history", "tiepnhan").get_json()["events"]
        if e["from_status"] != e["to_status"]
    ]
    assert steps == [
        (None, "new"),
        ("new", "received"),
        ("received", "payment_required"),
        ("payment_required", "in_process"),
    ]
    history = c.get(f"/api/v1/dossiers/{code}/history", "tiepnhan").get_json()["events"]
    paid = [e for e in history if e["action"] == "payment.received"]
    assert len(paid) == 1 and paid[0]["details"]["receipt_no"] == receipt and paid[0]["details"]["amount"] == 15000
    assert (paid[0]["from_status"], paid[0]["to_status"]) == ("payment_required", "in_process")
    mine = c.get(f"/api/v1/public/my/dossiers/{code}", headers=h).get_json()
    assert mine["payments"][0]["status"] == "paid" and mine["payments"][0]["receipt_no"] == receipt


def test_a_fee_of_zero_skips_payment(c, db):
    deploy_variant(db, "9.000303", fee="0")
    code = submit(c, procedure="9.000303").get_json()["code"]
    r = complete(
        c, intake_task(c, code)["id"], {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}
    )
    assert r.get_json()["status"] == "in_process" and r.get_json()["tasks"][0]["spec_name"] == "Task_Appraisal"
    assert count(c, Payment) == 0


def test_refused_online_dossier_needs_a_reason_and_tells_the_applicant(c):
    code = submit(c).get_json()["code"]
    task = intake_task(c, code)["id"]
    assert (
        "refusal_reason"
        in assert_problem(complete(c, task, {"purpose": "Xin việc", "decision": "refuse"}), 422)["fields"]
    )
    r = complete(c, task, {"purpose": "Xin việc", "decision": "refuse", "refusal_reason": "Không thuộc thẩm quyền"})
    assert r.get_json()["status"] == "refused" and r.get_json()["status_code"] == 3
    with c.app.extensions["motcua"].db.read() as s:
        last = s.scalars(
            select(Notification.body).where(Notification.recipient == PHONE).order_by(Notification.id.desc())
        ).first()
    assert code in last


def test_supplement_from_home_then_confirmed_by_the_desk(c):
    code = submit(c).get_json()["code"]
    r = c.post(
        f"/api/v1/dossiers/{code}/supplement-request",
        "tiepnhan",
        json={"reason": "Thiếu tờ khai", "documents": ["Tờ khai"]},
    )
    assert r.status_code == 200, r.get_json()
    h = sign_in(c)
    view = c.get(f"/api/v1/public/my/dossiers/{code}", headers=h).get_json()
    assert view["can_supplement"] and view["supplement_request"]["reason"] == "Thiếu tờ khai"
    forged = c.post(
        f"/api/v1/public/my/dossiers/{code}/supplement",
        headers=h,
        data={"to_khai": (io.BytesIO(b"text"), "a.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert_problem(forged, 422)
    assert_problem(
        c.post(f"/api/v1/public/my/dossiers/{code}/supplement", headers=h, data={}, content_type="multipart/form-data"),
        422,
    )
    ok = c.post(
        f"/api/v1/public/my/dossiers/{code}/supplement",
        headers=h,
        data={"to_khai": (io.BytesIO(PDF), "to_khai.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 200, ok.get_json()
    assert [x["document_key"] for x in ok.get_json()["documents"]] == ["to_khai"]
    r = c.post(f"/api/v1/dossiers/{code}/supplement-received", "tiepnhan", json={})
    assert r.status_code == 200 and r.get_json()["status"] == "new"
    # no longer waiting for documents: another upload is a 409
    late = c.post(
        f"/api/v1/public/my/dossiers/{code}/supplement",
        headers=h,
        data={"to_khai": (io.BytesIO(PDF), "to_khai.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert_problem(late, 409)


def test_withdraw_from_home_while_not_processed(c):
    code = submit(c).get_json()["code"]
    h = sign_in(c)
    assert_problem(c.post(f"/api/v1/public/my/dossiers/{code}/withdraw", headers=h, json={}), 422)
    r = c.post(f"/api/v1/public/my/dossiers/{code}/withdraw", headers=h, json={"reason": "Nộp nhầm thủ tục"})
    assert r.status_code == 200 and r.get_json()["status"] == "withdrawn" and r.get_json()["status_code"] == 7
    assert_problem(c.post(f"/api/v1/public/my/dossiers/{code}/withdraw", headers=h, json={"reason": "x"}), 409)
    with c.app.extensions["motcua"].db.read() as s:
        ev = s.scalars(select(Event).where(Event.action == "dossier.withdrawn")).one()
        assert ev.actor == f"citizen:phone:{PHONE}" and ev.details["reason"] == "Nộp nhầm thủ tục"


def test_electronic_result_declared_by_the_result_form_downloaded_from_home(c, gateway):
    code = submit(c).get_json()["code"]
    complete(
        c, intake_task(c, code)["id"], {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}
    )
    h = sign_in(c)
    order = pay_order(c, gateway, code, h)
    assert c.post("/api/v1/payments/ipn", data=gateway.confirmation(order)).get_json()["code"] == "00"
    appraisal = intake_task(c, code, "chuyenvien")
    assert complete(c, appraisal["id"], {}, "chuyenvien").status_code == 200
    ret = intake_task(c, code)
    # the result form requires its electronic result file
    missing = assert_problem(complete(c, ret["id"], {"returned_to": "Bình", "return_method": "truc_tuyen"}), 422)
    assert "result_files" in missing["fields"]
    up = c.post(
        f"/api/v1/dossiers/{code}/attachments",
        "tiepnhan",
        data={"file": (io.BytesIO(PDF), "giay_xac_nhan.pdf"), "document_key": "giay_xac_nhan"},
        content_type="multipart/form-data",
    )
    assert up.status_code == 201 and up.get_json()["kind"] == "result"
    done = complete(c, ret["id"], {"returned_to": "Bình", "return_method": "truc_tuyen"})
    assert done.get_json()["status"] == "returned"
    view = c.get(f"/api/v1/public/my/dossiers/{code}", headers=h).get_json()
    assert [f["document_key"] for f in view["result_files"]] == ["giay_xac_nhan"]
    got = c.get(f"/api/v1/public/my/dossiers/{code}/files/{view['result_files'][0]['id']}", headers=h)
    assert got.status_code == 200 and got.data == PDF and got.headers["X-Content-Type-Options"] == "nosniff"
    other = sign_in(c, "0911222333")
    assert_problem(
        c.get(f"/api/v1/public/my/dossiers/{code}/files/{view['result_files'][0]['id']}", headers=other), 404
    )
    # the period report counts the Decision 766 shares
    second = submit(c).get_json()["code"]  # online, not paid, not completed
    assert second
    today = utcnow().astimezone(VN_TZ).date().isoformat()
    rep = c.get(f"/api/v1/reports/summary?from={today}&to={today}&procedure_code=9.000301", "supervisor").get_json()
    shares = rep["rows"][0]["decision_766"]
    assert shares["submitted_online"] == {"count": 2, "of": 2, "percent": 100.0}
    assert shares["paid_online"] == {"count": 1, "of": 2, "percent": 50.0}
    assert shares["electronic_result"] == {"count": 1, "of": 1, "percent": 100.0}
    assert rep["totals"]["decision_766"]["paid_online"]["count"] == 1
    csv_text = c.get(f"/api/v1/reports/summary?from={today}&to={today}&format=csv", "supervisor").data.decode()
    assert "Quyết định 766 - Thanh toán trực tuyến (%)" in csv_text.splitlines()[0]
