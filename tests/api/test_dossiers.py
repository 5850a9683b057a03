"""POST /dossiers (with Idempotency-Key), GET /dossiers (filters, paging), GET /dossiers/{code}, /history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import event, update
from sqlalchemy.orm import Session

from api.idempotency import _HELD, _fingerprint
from engine.models import Dossier, IdempotencyRecord

from .helpers import AGENCY, OTHER, assert_problem, new_dossier

APPLICANT = {"name": "Trần Thị Bình", "id_number": "079200001111", "phone": "0987654321", "email": None}


def test_receive_a_dossier(client):
    r = client.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "9.000001", "applicant": APPLICANT, "channel": "online", "data": {"ghi_chu": "x"}},
    )
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    assert d["code"].startswith("H56.31.14-") and d["status"] == "new" and d["status_code"] == 1
    assert d["channel"] == 2 and d["agency"] == AGENCY and d["data"] == {"ghi_chu": "x"}
    assert d["received_at"].endswith("+07:00") and d["due_at"].endswith("+07:00")
    assert [t["name"] for t in d["tasks"]] == ["Tiếp nhận"] and d["tasks"][0]["roles"] == ["receiver"]
    assert d["applicant"]["name"] == "Trần Thị Bình"


def test_receive_errors(client):
    body = {"procedure_code": "9.000001", "applicant": APPLICANT}
    assert_problem(client.post("/api/v1/dossiers", json=body), 401)
    assert_problem(client.post("/api/v1/dossiers", "chuyenvien", json=body), 403, "forbidden")
    assert_problem(client.post("/api/v1/dossiers", "tiepnhan", json={**body, "procedure_code": "0.0"}), 404)
    p = assert_problem(
        client.post(
            "/api/v1/dossiers",
            "tiepnhan",
            json={"procedure_code": "", "applicant": {"name": ""}, "channel": 7, "data": [1], "colour": "red"},
        ),
        422,
        "invalid",
    )
    assert set(p["fields"]) == {"procedure_code", "applicant.name", "channel", "data", "colour"}
    assert all(" / " in m for m in p["fields"].values())
    # A received_at in the past is for admins only, and must carry an offset.
    past = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    assert_problem(client.post("/api/v1/dossiers", "tiepnhan", json={**body, "received_at": past}), 403)
    p = assert_problem(
        client.post("/api/v1/dossiers", "admin", json={**body, "received_at": "2026-01-05T09:00:00"}), 422
    )
    assert "received_at" in p["fields"]


def test_admin_brings_over_a_dossier_with_its_real_date(client):
    r = client.post(
        "/api/v1/dossiers",
        "admin",
        json={
            "procedure_code": "9.000001",
            "applicant": APPLICANT,
            "received_at": "2026-02-13T10:00:00+07:00",
            "agency": OTHER,
        },
    )
    assert r.status_code == 201, r.get_json()
    d = r.get_json()
    # 3 working days from Friday 13 Feb 2026 10:00, Tết skipped: Wednesday 25 Feb 10:00 (docs/deadlines.md).
    assert d["received_at"] == "2026-02-13T10:00:00+07:00" and d["due_at"] == "2026-02-25T10:00:00+07:00"
    assert d["agency"] == OTHER and d["code"].startswith("H99-260213-")


def test_idempotency_key_returns_the_first_result(client, app):
    body = {"procedure_code": "9.000001", "applicant": APPLICANT}
    h = {"Idempotency-Key": "retry-1"}
    first = client.post("/api/v1/dossiers", "tiepnhan", headers=h, json=body)
    again = client.post("/api/v1/dossiers", "tiepnhan", headers=h, json=body)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    listed = client.get("/api/v1/dossiers", "tiepnhan").get_json()
    assert listed["total"] == 1
    # The same key from another user is another key.
    other = client.post("/api/v1/dossiers", "canbo", headers=h, json=body)
    assert other.status_code == 201 and other.get_json()["code"] != first.get_json()["code"]
    # The same key for a different payload is refused.
    p = assert_problem(
        client.post("/api/v1/dossiers", "tiepnhan", headers=h, json={**body, "applicant": {"name": "Người khác"}}), 422
    )
    assert "Idempotency-Key" in p["fields"]
    # A request still running under the key (pending record within its lease) is a 409; a pending record past
    # its lease belongs to a request whose process died before any effect: the retry takes the key over and
    # runs once; a record whose first request took effect but lost its answer says so (409, no second effect).
    fp = _fingerprint("POST /api/v1/dossiers", {**body, "channel": 1, "data": {}, "received_at": None})
    now = datetime.now(UTC)
    with app.extensions["motcua"].db.uow() as s:
        for key, at, status in (
            ("busy", now, 0),
            ("killed", now - timedelta(seconds=6), 0),
            ("lost", now - timedelta(seconds=6), -1),
        ):
            s.add(
                IdempotencyRecord(
                    key=key,
                    username="tiepnhan",
                    endpoint="POST /api/v1/dossiers",
                    status=status,
                    body={"request_sha256": fp},
                    created_at=at,
                )
            )
    p = assert_problem(client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "busy"}, json=body), 409)
    assert "đang được xử lý" in p["message_vi"]
    p = assert_problem(client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "lost"}, json=body), 409)
    assert "đã có hiệu lực" in p["message_vi"]
    taken = client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "killed"}, json=body)
    assert taken.status_code == 201, taken.get_json()
    replay = client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "killed"}, json=body)
    assert replay.get_json() == taken.get_json() and replay.headers["Idempotent-Replayed"] == "true"
    assert client.get("/api/v1/dossiers", "tiepnhan").get_json()["total"] == 3  # + canbo's and the taken-over one


def test_idempotency_overtaken_request_rolls_back(client, app):
    """A request whose lease a retry took over (it was slow, the client gave up on it) does not take effect: its
    transaction rolls back with a 409 at commit, so the key's request takes effect once."""
    body = {"procedure_code": "9.000001", "applicant": APPLICANT}

    def retry_takes_over(session):  # at the use case's commit, before the key is marked: a retry took it over
        if _HELD.get() is not None:
            session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.key == "slow")
                .values(created_at=datetime.now(UTC) + timedelta(seconds=1))
                .execution_options(synchronize_session=False)
            )

    event.listen(Session, "before_commit", retry_takes_over, insert=True)
    try:
        p = assert_problem(
            client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "slow"}, json=body), 409
        )
    finally:
        if event.contains(Session, "before_commit", retry_takes_over):
            event.remove(Session, "before_commit", retry_takes_over)
    assert "đang được xử lý" in p["message_vi"]
    assert client.get("/api/v1/dossiers", "tiepnhan").get_json()["total"] == 0  # rolled back: no dossier
    again = client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "slow"}, json=body)
    assert again.status_code == 201  # the key's one effect
    assert client.get("/api/v1/dossiers", "tiepnhan").get_json()["total"] == 1


def test_idempotency_refused_request_can_be_retried(client):
    h = {"Idempotency-Key": "retry-2"}
    body = {"procedure_code": "9.999999", "applicant": APPLICANT}
    assert_problem(client.post("/api/v1/dossiers", "tiepnhan", headers=h, json=body), 404)
    assert_problem(client.post("/api/v1/dossiers", "tiepnhan", headers=h, json=body), 404)  # ran again, not a 409
    body["procedure_code"] = "9.000001"
    assert client.post("/api/v1/dossiers", "tiepnhan", headers=h, json=body).status_code == 201
    assert_problem(
        client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "bad\u00e9key"}, json=body), 422
    )


def _codes(r):
    assert r.status_code == 200, r.get_json()
    return [d["code"] for d in r.get_json()["items"]]


def test_list_filters_and_paging(client, app):
    a = new_dossier(client, "tiepnhan")
    b = new_dossier(
        client,
        "tiepnhan",
        procedure="9.000002",
        applicant={"name": "Lê Văn Cường", "id_number": "1", "phone": None, "email": None},
    )
    c = new_dossier(client, "khac")  # another agency
    d = new_dossier(client, "tiepnhan", channel=2)
    past = datetime.now(UTC) - timedelta(days=1)
    with app.extensions["motcua"].db.uow() as s:
        s.execute(update(Dossier).where(Dossier.code == a["code"]).values(due_at=past))
    get = lambda q, user="chuyenvien": client.get(f"/api/v1/dossiers{q}", user)  # noqa: E731
    assert set(_codes(get(""))) == {a["code"], b["code"], d["code"]}  # own agency only
    assert _codes(get("")) == [d["code"], b["code"], a["code"]]  # newest first
    assert _codes(get("?sort=received_at")) == [a["code"], b["code"], d["code"]]
    assert set(_codes(get("", "supervisor"))) == {a["code"], b["code"], c["code"], d["code"]}
    assert _codes(get(f"?agency={OTHER}", "supervisor")) == [c["code"]]
    assert_problem(get(f"?agency={OTHER}"), 403)
    assert _codes(get("?overdue=true")) == [a["code"]]
    assert set(_codes(get("?overdue=false"))) == {b["code"], d["code"]}
    assert _codes(get("?procedure_code=9.000002")) == [b["code"]]
    assert _codes(get("?status=new")) == [d["code"]]
    assert set(_codes(get("?status=new&status=received"))) == {a["code"], b["code"], d["code"]}
    assert _codes(get("?q=" + quote("cường"))) == [b["code"]]  # part of the name, any case
    assert set(_codes(get("?q=" + quote(a["code"][:10].lower())))) == {a["code"], b["code"], d["code"]}
    assert _codes(get("?q=" + quote(a["code"]))) == [a["code"]]
    assert _codes(get("?q=" + quote("%"))) == []  # wildcards are literal
    due_before = quote((datetime.now(UTC)).isoformat())
    assert _codes(get(f"?due_before={due_before}")) == [a["code"]]
    page = get("?per_page=2&page=2").get_json()
    assert page["total"] == 3 and page["page"] == 2 and page["per_page"] == 2 and len(page["items"]) == 1
    item = page["items"][0]
    assert item["code"] == a["code"] and item["overdue"] is True and item["applicant_name"] == "Nguyễn Văn An"
    assert "data" not in item and "tasks" not in item


def test_list_errors(client):
    assert_problem(client.get("/api/v1/dossiers"), 401)
    assert "per_page" in assert_problem(client.get("/api/v1/dossiers?per_page=101", "tiepnhan"), 422)["fields"]
    assert "status.0" in assert_problem(client.get("/api/v1/dossiers?status=lost", "tiepnhan"), 422)["fields"]
    assert "overdue" in assert_problem(client.get("/api/v1/dossiers?overdue=maybe", "tiepnhan"), 422)["fields"]
    r = client.get("/api/v1/dossiers?due_before=2026-01-01T00:00:00", "tiepnhan")
    assert "due_before" in assert_problem(r, 422)["fields"]
    assert "sort" in assert_problem(client.get("/api/v1/dossiers?sort=name", "tiepnhan"), 422)["fields"]


def test_detail_and_history(client, dossier):
    code = dossier["code"]
    task = dossier["tasks"][0]
    client.post(f"/api/v1/tasks/{task['id']}/complete", "tiepnhan", json={"data": {"decision": "accept"}})
    r = client.get(f"/api/v1/dossiers/{code}", "chuyenvien")
    assert r.status_code == 200
    d = r.get_json()
    assert d["status"] == "in_process" and [t["name"] for t in d["tasks"]] == ["Thẩm định"]
    assert [e["action"] for e in d["timeline"]] == ["dossier.received", "task.completed"]
    assert d["applicant"]["id_number"] == "001099012345"
    h = client.get(f"/api/v1/dossiers/{code}/history", "supervisor").get_json()
    assert h["code"] == code and h["status"] == "in_process"
    done = h["events"][1]
    assert done["actor"] == "tiepnhan" and done["from_status"] == "received" and done["to_status"] == "in_process"
    assert done["task_id"] == task["id"] and done["at"].endswith("+07:00")


def test_detail_is_404_for_another_agency_and_unknown_codes(client, dossier):
    code = dossier["code"]
    for path in (f"/api/v1/dossiers/{code}", f"/api/v1/dossiers/{code}/history"):
        assert_problem(client.get(path), 401)
        assert_problem(client.get(path, "khac"), 404, "not_found")
        assert client.get(path, "supervisor").status_code == 200
    assert_problem(client.get("/api/v1/dossiers/H56-000000-0000", "tiepnhan"), 404)
    assert_problem(client.get("/api/v1/dossiers/H56-000000-0000/history", "tiepnhan"), 404)


def test_idempotency_use_case_commit_marks_the_key(client, app):
    """The use case's own transaction marks its key "took effect" (status -1) before it commits, whichever way
    it writes (the hot path's Core statements or the ORM): a process killed right after that commit leaves a
    key that a retry never runs again."""
    db = app.extensions["motcua"].db
    seen = []

    def at_commit(session):
        if _HELD.get() is not None:
            with db.read() as s:
                seen.append({r.key: r.status for r in s.query(IdempotencyRecord)})

    event.listen(Session, "after_commit", at_commit)
    try:
        body = {"procedure_code": "9.000001", "applicant": APPLICANT}
        d = client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "new-1"}, json=body)
        assert d.status_code == 201, d.get_json()
        tid = d.get_json()["tasks"][0]["id"]
        done = client.post(
            f"/api/v1/tasks/{tid}/complete",
            "tiepnhan",
            headers={"Idempotency-Key": "done-1"},
            json={"data": {"decision": "accept"}},
        )
        assert done.status_code == 200, done.get_json()
    finally:
        event.remove(Session, "after_commit", at_commit)
    assert seen == [{"new-1": -1}, {"new-1": 201, "done-1": -1}]
