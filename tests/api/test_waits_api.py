"""Waits made visible, through the API: payment and supplement as message catch events that the gateway's
confirmation and the desk's "supplement received" correlate by the dossier's code; the diagram's live counts
show how many dossiers wait at each; versions without them keep working (docs/bpmn-conventions.md,
"Sự kiện chờ / Waits")."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.models import ProcedureVersion, Task
from engine.procedures import deploy_bytes, form_files_beside

from .helpers import ROOT
from .test_online import PAY_SECRET, complete, intake_task, pay_order, sign_in

WAITS = ROOT / "tests" / "data" / "waits" / "waits.bpmn"
ONLINE = ROOT / "tests" / "data" / "online" / "online_fee.bpmn"
CODE = "9.000501"
ACCEPT = {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}


@pytest.fixture
def c(app, client, db, settings, gateway):
    deploy_bytes(db, WAITS.read_bytes(), WAITS.name, form_files_beside(ONLINE))
    settings.online.pay_secret = PAY_SECRET
    settings.online.pay_url = gateway.url + "/pay"
    settings.online.public_url = "http://motcua.test"
    return client


def counts(c) -> dict:
    r = c.get(f"/api/v1/procedures/{CODE}/counts", "chuyenvien")
    assert r.status_code == 200, r.get_json()
    return {k: (v["ready"], v["waiting"]) for k, v in r.get_json()["counts"].items()}


def submit(c) -> str:
    body = {
        "procedure_code": CODE,
        "applicant": {"name": "Trần Văn Bình", "id_number": "001099001234", "phone": "0987654321"},
        "data": {"purpose": "Xin việc"},
    }
    r = c.post("/api/v1/public/dossiers", json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["code"]


def test_payment_and_supplement_waits_are_counted_and_correlated_by_code(c, gateway, db):
    code = submit(c)
    other = submit(c)
    for dossier in (code, other):
        r = complete(c, intake_task(c, dossier)["id"], ACCEPT)
        assert r.status_code == 200 and r.get_json()["status"] == "payment_required", r.get_json()
    assert counts(c) == {"Event_Payment": (0, 2)}
    # the gateway's confirmation of one order moves that dossier only
    h = sign_in(c)
    order = pay_order(c, gateway, code, h)
    r = c.post("/api/v1/payments/ipn", data=gateway.confirmation(order))
    assert r.status_code == 200 and r.get_json()["code"] == "00", r.get_json()
    assert counts(c) == {"Event_Payment": (0, 1), "Task_Appraisal": (1, 0)}
    # the specialist asks for a supplement through the diagram: status 5, clock paused, counted at the event
    task = next(
        t for t in c.get("/api/v1/tasks?per_page=100", "chuyenvien").get_json()["items"] if t["dossier_code"] == code
    )
    r = complete(c, task["id"], {"proposal": "supplement"}, user="chuyenvien")
    assert r.status_code == 200 and r.get_json()["status"] == "supplement_requested", r.get_json()
    d = c.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()
    assert d["paused"] and d["supplement_count"] == 1 and d["tasks"] == []
    assert counts(c) == {"Event_Payment": (0, 1), "Event_Supplement": (0, 1)}
    # the waits are steps of the dossier's timeline (the control slip), with when they began and ended
    steps = c.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()["steps"]
    waits = [(s["spec_name"], s["title"], s["state"]) for s in steps if s["spec_name"].startswith("Event_")]
    assert waits == [
        ("Event_Payment", "Chờ nộp lệ phí", "waited"),
        ("Event_Supplement", "Chờ bổ sung hồ sơ", "waiting"),
    ]
    # nobody's inbox holds a wait, and nobody can claim one
    wait_id = next(s["id"] for s in steps if s["state"] == "waiting")
    assert c.post(f"/api/v1/tasks/{wait_id}/claim", "admin").status_code in (403, 409)
    # the desk receives the documents: the `supplement` message reaches the event, appraisal again
    r = c.post(f"/api/v1/dossiers/{code}/supplement-received", "tiepnhan", json={"note": "Đủ giấy tờ"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "in_process" and [t["spec_name"] for t in body["tasks"]] == ["Task_Appraisal"]
    assert counts(c) == {"Event_Payment": (0, 1), "Task_Appraisal": (1, 0)}
    history = c.get(f"/api/v1/dossiers/{code}/history", "tiepnhan").get_json()["events"]
    received = [e for e in history if e["action"] == "supplement.received"]
    assert received[0]["details"]["message_delivered"] is True
    task = body["tasks"][0]
    r = complete(c, task["id"], {"proposal": "approve"}, user="chuyenvien")
    assert r.get_json()["status"] == "returned" and r.get_json()["finished"]
    with db.read() as s:
        assert s.scalars(select(Task.state).where(Task.dossier_code == code, Task.state == "waiting")).all() == []


def test_a_version_deployed_before_waits_were_recorded_keeps_working(c, gateway, db):
    with db.uow() as s:  # as deployed before this release: no `waits` in its metadata
        v = s.scalars(select(ProcedureVersion)).all()[-1]
        assert set(v.meta["waits"]) == {"Event_Payment", "Event_Supplement"}
        v.meta = {k: val for k, val in v.meta.items() if k != "waits"}
    c.app.extensions["motcua"].dossiers.runtimes._items.clear()
    code = submit(c)
    r = complete(c, intake_task(c, code)["id"], ACCEPT)
    assert r.get_json()["status"] == "payment_required"
    assert counts(c) == {}  # not counted, but the dossier waits and is paid as before
    order = pay_order(c, gateway, code, sign_in(c))
    assert c.post("/api/v1/payments/ipn", data=gateway.confirmation(order)).get_json()["code"] == "00"
    assert counts(c) == {"Task_Appraisal": (1, 0)}


def test_a_diagram_without_a_supplement_event_uses_the_legal_action_alone(client):
    """The library's procedures have no supplement event: request and receipt pause and resume the clock and
    keep the open step, as they always did."""
    from .helpers import new_dossier

    d = new_dossier(client)
    r = client.post(f"/api/v1/dossiers/{d['code']}/supplement-request", "tiepnhan", json={"reason": "Thiếu bản sao"})
    assert r.status_code == 200 and r.get_json()["status"] == "supplement_requested", r.get_json()
    r = client.post(f"/api/v1/dossiers/{d['code']}/supplement-received", "tiepnhan", json={})
    assert r.status_code == 200, r.get_json()
    assert [t["spec_name"] for t in r.get_json()["tasks"]] == [t["spec_name"] for t in d["tasks"]]
    history = client.get(f"/api/v1/dossiers/{d['code']}/history", "tiepnhan").get_json()["events"]
    assert [e for e in history if e["action"] == "supplement.received"][0]["details"]["message_delivered"] is False
