"""Over HTTP: the legal actions on a dossier (supplement, refuse, withdraw, stop, extend)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from engine.calendar import VN_TZ
from engine.models import Dossier, Notification

from .helpers import assert_problem, new_dossier

BASE = "/api/v1/dossiers"
ACTIONS = ["supplement-request", "supplement-received", "refuse", "withdraw", "stop", "extend"]


def act(client, code, action, user="tiepnhan", **body):
    return client.post(f"{BASE}/{code}/{action}", user, json=body)


def overdue_dossier(client) -> dict:
    """Brought over by an admin with its real, old receipt date: overdue now."""
    past = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    return new_dossier(client, user="admin", received_at=past)


def test_supplement_request_then_received(client, dossier, app):
    r = act(
        client,
        dossier["code"],
        "supplement-request",
        reason="Thiếu bản sao CCCD",
        documents=["Bản sao CCCD của cha", "Bản sao CCCD của mẹ"],
    )
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["status"], body["status_code"], body["paused"], body["supplement_count"]) == (
        "supplement_requested",
        5,
        True,
        1,
    )
    assert_problem(act(client, dossier["code"], "supplement-request", reason="Lại"), 409)  # already waiting
    r = act(client, dossier["code"], "supplement-received", note="Đã nhận đủ")
    assert r.status_code == 200
    body = r.get_json()
    assert (body["status"], body["paused"]) == ("received", False)
    assert body["due_at"] >= dossier["due_at"]
    history = client.get(f"{BASE}/{dossier['code']}/history", "tiepnhan").get_json()
    events = history["events"] if isinstance(history, dict) and "events" in history else history.get("items", history)
    actions = [e["action"] for e in events]
    assert "supplement.requested" in actions and "supplement.received" in actions
    with app.extensions["motcua"].db.read() as s:
        d = s.scalars(select(Dossier).where(Dossier.code == dossier["code"])).one()
        bodies = [
            n.body
            for n in s.scalars(
                select(Notification).where(Notification.dossier_id == d.id, Notification.channel == "sms")
            )
        ]
    assert any("Ban sao CCCD cua cha" in b for b in bodies)  # SMS without diacritics


def test_refuse_is_final(client, dossier):
    r = act(client, dossier["code"], "refuse", reason="Không thuộc thẩm quyền giải quyết")
    assert r.status_code == 200
    body = r.get_json()
    assert (body["status"], body["status_code"], body["finished"], body["tasks"]) == ("refused", 3, True, [])
    for action in ACTIONS:
        body = {"extend": {"reason": "x", "extra_working_days": 1}, "supplement-received": {"note": "x"}}
        assert_problem(act(client, dossier["code"], action, **body.get(action, {"reason": "x"})), 409)
    assert client.get(f"{BASE}/{dossier['code']}", "tiepnhan").get_json()["tasks"] == []


def test_refuse_after_processing_started_is_409(client, dossier):
    task = dossier["tasks"][0]["id"]
    r = client.post(f"/api/v1/tasks/{task}/complete", "tiepnhan", json={"data": {"decision": "accept"}})
    assert r.status_code == 200, r.get_json()
    assert_problem(act(client, dossier["code"], "refuse", reason="Muộn"), 409)
    r = act(client, dossier["code"], "stop", reason="Đang có tranh chấp")
    assert r.status_code == 200 and r.get_json()["status_code"] == 8


def test_withdraw(client, dossier):
    r = act(client, dossier["code"], "withdraw", reason="Người nộp xin rút hồ sơ")
    assert r.status_code == 200 and (r.get_json()["status"], r.get_json()["status_code"]) == ("withdrawn", 7)


def test_who_may(client, dossier):
    assert_problem(act(client, dossier["code"], "stop", user="chuyenvien", reason="x"), 403)
    assert_problem(act(client, dossier["code"], "refuse", user="supervisor", reason="x"), 403)
    assert_problem(act(client, dossier["code"], "withdraw", user="khac", reason="x"), 404)  # another agency
    assert_problem(act(client, "H56-000000-9999", "withdraw", reason="x"), 404)
    assert_problem(act(client, dossier["code"], "withdraw", user=None, reason="x"), 401)
    r = act(client, dossier["code"], "withdraw", user="admin", reason="Quản trị viên")
    assert r.status_code == 200


def test_reason_is_required(client, dossier):
    for action in ("supplement-request", "refuse", "withdraw", "stop", "extend"):
        r = client.post(f"{BASE}/{dossier['code']}/{action}", "tiepnhan", json={})
        assert_problem(r, 422)
        assert "reason" in r.get_json()["fields"], action
    r = act(client, dossier["code"], "refuse", reason="")
    assert_problem(r, 422)
    assert "reason" in r.get_json()["fields"]


def test_extend_once_when_overdue(client):
    d = overdue_dossier(client)
    assert d["overdue"] is True
    r = act(client, d["code"], "extend", reason="Chờ ý kiến cơ quan phối hợp", extra_working_days=2)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["extended"] is True and body["original_due_at"] == d["due_at"]
    assert datetime.fromisoformat(body["due_at"]) > datetime.now(UTC)
    assert_problem(act(client, d["code"], "extend", reason="Lần hai", extra_working_days=1), 409)


def test_extend_rules(client, dossier):
    # 3 working days ahead: not overdue nor about to be → 409
    assert_problem(act(client, dossier["code"], "extend", reason="Sớm", extra_working_days=1), 409)
    d = overdue_dossier(client)
    r = act(client, d["code"], "extend", reason="Lý do")  # neither a date nor days
    assert_problem(r, 422)
    r = act(client, d["code"], "extend", reason="Lý do", new_due_at="2026-13-01T10:00:00+07:00")
    assert_problem(r, 422)
    assert "new_due_at" in r.get_json()["fields"]
    r = act(client, d["code"], "extend", reason="Lý do", new_due_at="2030-01-02T10:00:00")  # no offset
    assert_problem(r, 422)
    assert "new_due_at" in r.get_json()["fields"]
    r = act(client, d["code"], "extend", reason="Lý do", extra_working_days=-1)
    assert_problem(r, 422)
    assert "extra_working_days" in r.get_json()["fields"]
    later = (datetime.now(VN_TZ) + timedelta(days=14)).replace(hour=16, minute=0, second=0, microsecond=0)
    r = act(client, d["code"], "extend", reason="Hẹn lại", new_due_at=later.isoformat())
    assert r.status_code == 200
    assert datetime.fromisoformat(r.get_json()["due_at"]) == later


def test_actions_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for action in ACTIONS:
        op = paths[f"/api/v1/dossiers/{{code}}/{action}"]["post"]
        assert {"200", "401", "403", "404", "409", "422"} <= set(op["responses"]), action
