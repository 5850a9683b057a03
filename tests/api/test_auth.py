"""POST /auth/token, GET /auth/me, and the bearer-token check every protected endpoint shares."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
from sqlalchemy import update

from engine.models import User

from .helpers import AGENCY, PASSWORD, assert_problem


def login(client, username="tiepnhan", password=PASSWORD, ip="10.0.0.1"):
    return client.raw.post(
        "/api/v1/auth/token", json={"username": username, "password": password}, environ_base={"REMOTE_ADDR": ip}
    )


def test_token_happy_path(client, app):
    r = login(client)
    assert r.status_code == 200
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == app.extensions["motcua"].settings.token_ttl_seconds
    assert body["username"] == "tiepnhan" and body["roles"] == ["receiver"] and body["agency"] == AGENCY
    claims = jwt.decode(body["access_token"], app.extensions["motcua"].settings.secret_key, algorithms=["HS256"])
    assert claims["sub"] == "tiepnhan" and claims["agency"] == AGENCY and claims["roles"] == ["receiver"]
    assert 0 < claims["exp"] - claims["iat"] <= body["expires_in"]
    me = client.raw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.get_json()["username"] == "tiepnhan"
    assert me.get_json()["is_supervisor"] is False


def test_wrong_password_is_401_problem(client):
    body = assert_problem(login(client, password="sai-mat-khau"), 401)
    assert "mật khẩu" in body["message_vi"]
    assert_problem(login(client, username="khong-co-ai"), 401)


def test_bad_payload_is_422_with_fields(client):
    r = client.raw.post("/api/v1/auth/token", json={"username": "tiepnhan"})
    body = assert_problem(r, 422, "invalid")
    assert set(body["fields"]) == {"password"}
    assert body["fields"]["password"].startswith("Thiếu trường bắt buộc / ")
    r = client.raw.post("/api/v1/auth/token", data="{not json", content_type="application/json")
    assert_problem(r, 422)
    r = client.raw.post("/api/v1/auth/token", json={"username": "a", "password": "b", "extra": 1})
    assert "extra" in assert_problem(r, 422)["fields"]


def test_failed_logins_slow_down_with_growing_delays_not_a_lock(client):
    import time_machine

    with time_machine.travel(datetime(2030, 1, 2, 9, 0, tzinfo=UTC), tick=False) as clock:
        for _ in range(6):  # five free failures, the sixth makes this account + address wait 2 s
            assert login(client, password="wrong-password").status_code == 401
        r = login(client)  # even the right password: the attacker must not learn it now
        body = assert_problem(r, 429, "too_many_requests")
        assert r.headers["Retry-After"] == "2" and body["retry_after"] == 2
        assert login(client, ip="10.0.0.2").status_code == 200  # the owner, elsewhere, is not locked out
        assert login(client, username="canbo").status_code == 200  # nor another user
        clock.shift(3)
        assert login(client, password="wrong-password").status_code == 401
        assert login(client).headers["Retry-After"] == "4"  # growing: 2, 4, 8, … at most 15 minutes
        clock.shift(5)
        assert login(client).status_code == 200  # a success starts the account + address over
        assert login(client, password="wrong-password").status_code == 401


def test_successful_logins_are_not_limited(client):
    for _ in range(12):
        assert login(client).status_code == 200


def test_no_token_is_401_everywhere(client):
    for path in ("/api/v1/auth/me", "/api/v1/dossiers", "/api/v1/tasks", "/api/v1/procedures"):
        r = client.raw.get(path)
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_bad_expired_and_foreign_tokens_are_401(client, app):
    secret = app.extensions["motcua"].settings.secret_key
    now = int(time.time())
    expired = jwt.encode({"sub": "tiepnhan", "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256")
    forged = jwt.encode({"sub": "admin", "iat": now, "exp": now + 60}, "another-secret-" + "y" * 32, algorithm="HS256")
    none_alg = jwt.encode({"sub": "admin", "iat": now, "exp": now + 60}, None, algorithm="none")
    for token, word in (
        (expired, "hết hạn"),
        (forged, "không hợp lệ"),
        (none_alg, "không hợp lệ"),
        ("garbage", "không hợp lệ"),
    ):
        r = client.raw.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert word in assert_problem(r, 401)["message_vi"]
    r = client.raw.get("/api/v1/auth/me", headers={"Authorization": "Basic dGllcG5oYW46eA=="})
    assert_problem(r, 401)


def test_deactivated_user_loses_access_when_the_short_cache_expires(client, app):
    assert client.get("/api/v1/auth/me", "canbo").status_code == 200
    with app.extensions["motcua"].db.uow() as s:
        s.execute(update(User).where(User.username == "canbo").values(active=False, roles=["analyst"]))
    assert_problem(login(client, username="canbo"), 401)
    assert client.get("/api/v1/auth/me", "canbo").status_code == 200  # cached for at most a few seconds
    app.extensions["motcua_actors"].clear()  # the cache entries expire
    assert_problem(client.get("/api/v1/auth/me", "canbo"), 401)


def test_changed_roles_apply_without_a_new_token(client, app):
    app.config["MOTCUA_ACTOR_CACHE_SECONDS"] = 0
    assert client.get("/api/v1/auth/me", "canbo").get_json()["roles"] == ["receiver", "specialist"]
    with app.extensions["motcua"].db.uow() as s:
        s.execute(update(User).where(User.username == "canbo").values(roles=["specialist"]))
    assert client.get("/api/v1/auth/me", "canbo").get_json()["roles"] == ["specialist"]
    assert_problem(
        client.post("/api/v1/dossiers", "canbo", json={"procedure_code": "9.000001", "applicant": {"name": "A"}}), 403
    )


def test_a_token_used_before_still_expires(client, app):
    import time_machine

    body = login(client).get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # verified once, remembered
    with time_machine.travel(time.time() + body["expires_in"] + 60, tick=False):
        r = client.get("/api/v1/auth/me", headers=headers)
    assert_problem(r, 401)
