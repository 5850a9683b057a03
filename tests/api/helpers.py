"""Constants and helpers of the API tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from api.auth import issue_token
from engine.auth import actor_of
from engine.models import User

ROOT = Path(__file__).resolve().parents[2]
FOUR_STEPS = ROOT / "bench" / "four_steps.bpmn"
FORM_STEPS = ROOT / "tests" / "data" / "api_forms" / "form_steps.bpmn"
BROKEN = ROOT / "tests" / "data" / "broken.bpmn"

AGENCY = "000.31.14.H56"
OTHER = "000.00.00.H99"
PASSWORD = "mat-khau-thu-123"

# username, roles, agency
USERS = [
    ("tiepnhan", ["receiver"], AGENCY),
    ("chuyenvien", ["specialist"], AGENCY),
    ("canbo", ["receiver", "specialist"], AGENCY),
    ("canbo2", ["receiver", "specialist"], AGENCY),
    ("khac", ["receiver", "specialist"], OTHER),
    ("analyst", ["analyst"], AGENCY),
    ("analyst_khac", ["analyst"], OTHER),
    ("congdan", ["citizen"], AGENCY),
    ("supervisor", ["supervisor"], "000.00.00.H00"),
    ("admin", ["admin"], AGENCY),
]


class Client:
    """The Flask test client with `as_(username)` for a bearer token."""

    def __init__(self, app):
        self.app = app
        self.raw = app.test_client()
        self._tokens: dict[str, str] = {}

    def token(self, username: str) -> str:
        if username not in self._tokens:
            svc = self.app.extensions["motcua"]
            with svc.db.read() as s:
                user = s.scalars(select(User).where(User.username == username)).one()
                self._tokens[username] = issue_token(
                    actor_of(user), svc.settings.secret_key, svc.settings.token_ttl_seconds
                )
        return self._tokens[username]

    def headers(self, username: str | None, extra: dict | None = None) -> dict:
        h = dict(extra or {})
        if username:
            h["Authorization"] = f"Bearer {self.token(username)}"
        return h

    def get(self, path, user=None, headers=None, **kw):
        return self.raw.get(path, headers=self.headers(user, headers), **kw)

    def post(self, path, user=None, headers=None, **kw):
        return self.raw.post(path, headers=self.headers(user, headers), **kw)

    def delete(self, path, user=None, headers=None, **kw):
        return self.raw.delete(path, headers=self.headers(user, headers), **kw)


def new_dossier(client: Client, user="tiepnhan", procedure="9.000001", **extra):
    body = {
        "procedure_code": procedure,
        "applicant": {
            "name": "Nguyễn Văn An",
            "id_number": "001099012345",
            "phone": "0912345678",
            "email": "an@example.vn",
        },
        "channel": 1,
        "data": {},
    }
    body.update(extra)
    r = client.post("/api/v1/dossiers", user, json=body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def assert_problem(r, status: int, code: str | None = None):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:500])
    assert r.mimetype == "application/problem+json", r.mimetype
    body = r.get_json()
    assert body["status"] == status and body["message_vi"] and body["message_en"]
    assert body["detail"] == f"{body['message_vi']} / {body['message_en']}"
    if code:
        assert body["code"] == code, body
    return body


PAY_SECRET = "pay-secret-for-tests-0123456789"  # the fake payment gateway's and the server's shared secret
