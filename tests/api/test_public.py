"""GET /public/dossiers/{code}?id_number=: no login, no personal data unless the id number matches."""

from __future__ import annotations

from .helpers import assert_problem

PERSONAL = ("Nguyễn Văn An", "001099012345", "0912345678", "an@example.vn")


def lookup(client, code, id_number=None, ip="203.0.113.7"):
    q = f"?id_number={id_number}" if id_number is not None else ""
    return client.raw.get(f"/api/v1/public/dossiers/{code}{q}", environ_base={"REMOTE_ADDR": ip})


def test_lookup_without_identity_shows_no_personal_data(client, dossier):
    r = lookup(client, dossier["code"])
    assert r.status_code == 200
    body = r.get_json()
    assert body["code"] == dossier["code"] and body["status"] == "received" and body["status_code"] == 2
    assert body["received_at"] == dossier["received_at"] and body["due_at"] == dossier["due_at"]
    assert body["procedure_name"] == "Thủ tục thử"
    assert body["steps"] == [
        {
            "name": "Tiếp nhận",
            "state": "ready",
            "started_at": body["steps"][0]["started_at"],
            "completed_at": None,
            "due_at": None,
        }
    ]
    assert body["identity_verified"] is False and body["applicant"] is None and "data" not in body
    text = r.get_data(as_text=True)
    assert not any(p in text for p in PERSONAL)
    assert "tiepnhan" not in text  # officers' names are not shown either
    wrong = lookup(client, dossier["code"], "000000000000")
    assert wrong.status_code == 200 and wrong.get_json()["applicant"] is None
    assert not any(p in wrong.get_data(as_text=True) for p in PERSONAL)


def test_lookup_with_matching_identity_shows_the_applicant(client, dossier):
    body = lookup(client, dossier["code"], "001099012345").get_json()
    assert body["identity_verified"] is True
    assert body["applicant"] == {
        "name": "Nguyễn Văn An",
        "id_number": "001099012345",
        "phone": "0912345678",
        "email": "an@example.vn",
    }


def test_lookup_follows_the_steps(client, dossier):
    client.post(
        f"/api/v1/tasks/{dossier['tasks'][0]['id']}/complete", "tiepnhan", json={"data": {"decision": "accept"}}
    )
    body = lookup(client, dossier["code"]).get_json()
    assert [(s["name"], s["state"]) for s in body["steps"]] == [("Tiếp nhận", "completed"), ("Thẩm định", "ready")]
    assert body["status"] == "in_process"


def test_unknown_codes_are_all_the_same_404(client, dossier):
    a = assert_problem(lookup(client, "H56-990101-9999"), 404)
    b = assert_problem(lookup(client, "H56-990101-9999", "001099012345"), 404)
    c = assert_problem(lookup(client, "x" * 100), 404)
    for body in (a, b, c):
        body.pop("request_id")  # each request's own id (docs/operations.md); nothing else may differ
    assert a == b == c


def test_lookup_is_rate_limited_per_ip(client, dossier):
    for _ in range(30):
        assert lookup(client, "H56-990101-0001").status_code == 404
    r = lookup(client, dossier["code"])
    assert_problem(r, 429, "too_many_requests")
    assert int(r.headers["Retry-After"]) >= 1
    assert lookup(client, dossier["code"], ip="203.0.113.8").status_code == 200


def test_lookup_bad_query_is_422(client, dossier):
    assert "id_number" in assert_problem(lookup(client, dossier["code"], "9" * 40), 422)["fields"]
