"""Two clients at once: the same Idempotency-Key, the same task."""

from __future__ import annotations

import threading

from .helpers import new_dossier


def _together(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        results[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_same_idempotency_key_at_once_creates_one_dossier(client):
    body = {"procedure_code": "9.000001", "applicant": {"name": "Phạm Văn Dũng"}}

    def post(_):
        r = client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "same"}, json=body)
        return r.status_code, r.get_json()

    results = _together(4, post)
    assert {s for s, _ in results} <= {201, 409}, results
    created = [b for s, b in results if s == 201]
    assert created and all(b == created[0] for b in created)
    assert client.get("/api/v1/dossiers", "tiepnhan").get_json()["total"] == 1
    again = client.post("/api/v1/dossiers", "tiepnhan", headers={"Idempotency-Key": "same"}, json=body)
    assert again.status_code == 201 and again.get_json() == created[0]


def test_same_task_completed_twice_at_once_one_wins(client):
    d = new_dossier(client)
    tid = d["tasks"][0]["id"]
    users = ["canbo", "canbo2"]

    def complete(i):
        r = client.post(f"/api/v1/tasks/{tid}/complete", users[i], json={"data": {"decision": "accept"}})
        return r.status_code, r.get_json()

    results = _together(2, complete)
    assert sorted(s for s, _ in results) == [200, 409], results
    loser = next(b for s, b in results if s == 409)
    assert loser["code"] == "conflict" and loser["message_vi"]
    history = client.get(f"/api/v1/dossiers/{d['code']}/history", "canbo").get_json()["events"]
    assert [e["action"] for e in history].count("task.completed") == 1
