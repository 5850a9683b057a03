"""The trust boundary through the API, one regression test per attack that used to get through
(docs/security.md lists them with the rule each one breaks)."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import time_machine
from alembic import command
from click.testing import CliRunner

from api import create_app
from cli.main import main as cli
from engine.migrate import alembic_config

from .helpers import AGENCY, FORM_STEPS, OTHER, PASSWORD, Client, assert_problem, new_dossier


def login(client, username="tiepnhan", password=PASSWORD, ip="10.0.0.1", headers=None):
    return client.raw.post(
        "/api/v1/auth/token",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
        headers=headers or {},
    )


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# -- 1. an account that is not staff reads no dossier, task, history or applicant --------------------------
def test_a_citizen_reads_no_dossier_task_or_history_of_their_own_agency(client, dossier):
    code, task = dossier["code"], dossier["tasks"][0]["id"]
    for user in ("congdan", "analyst"):
        for path in (
            f"/api/v1/dossiers/{code}",
            "/api/v1/dossiers",
            f"/api/v1/dossiers?agency={AGENCY}",
            f"/api/v1/dossiers/{code}/history",
            f"/api/v1/dossiers/{code}/attachments",
            f"/api/v1/dossiers/{code}/steps",
            "/api/v1/tasks",
            f"/api/v1/tasks/{task}",
            "/api/v1/monitor/overdue",
        ):
            r = client.get(path, user)
            assert_problem(r, 403, "forbidden")
            assert "Nguyễn Văn An" not in r.get_data(as_text=True) and "001099012345" not in r.get_data(as_text=True)


# -- 2. procedures belong to their agency; two agencies, two variants ----------------------------------------
def _upload(client, user, content: bytes):
    data = {
        "file": (io.BytesIO(content), "form_steps.bpmn"),
        "forms": [(io.BytesIO((FORM_STEPS.parent / "intake.json").read_bytes()), "intake.json")],
    }
    return client.post("/api/v1/procedures", user, data=data, content_type="multipart/form-data")


def test_an_analyst_cannot_replace_another_agencys_procedure(client):
    original = FORM_STEPS.read_bytes()
    hijack = original.replace("Thủ tục thử có biểu mẫu".encode(), "Thủ tục bị chiếm".encode())
    r = _upload(client, "analyst_khac", hijack)  # analyst of H99 uploading H56's procedure
    assert_problem(r, 403, "forbidden")
    assert "000.31.14.H56" in r.get_json()["message_en"] or OTHER in r.get_json()["message_en"]
    detail = client.get("/api/v1/procedures/9.000002", "tiepnhan").get_json()
    assert detail["name"] == "Thủ tục thử có biểu mẫu" and detail["version"] == 1
    # Province-wide (no agency): only an admin.
    assert_problem(_upload(client, "analyst", original.replace(b'<camunda:property name="agency"', b"<x")), 403)

    # H99's own variant of the same code: a new procedure of its own, versioned on its own.
    variant = hijack.replace(AGENCY.encode(), OTHER.encode())
    r = _upload(client, "analyst_khac", variant)
    assert r.status_code == 201 and r.get_json()["version"] == 1, r.get_json()
    assert _upload(client, "analyst_khac", variant.replace(b"20000", b"30000")).get_json()["version"] == 2
    ours = client.get("/api/v1/procedures/9.000002", "tiepnhan").get_json()
    theirs = client.get("/api/v1/procedures/9.000002", "khac").get_json()
    assert (ours["name"], ours["agency"], ours["version"], ours["fee"]) == (
        "Thủ tục thử có biểu mẫu",
        AGENCY,
        1,
        20000,
    )
    assert (theirs["name"], theirs["agency"], theirs["version"], theirs["fee"]) == ("Thủ tục bị chiếm", OTHER, 2, 30000)
    asked = client.get(f"/api/v1/procedures/9.000002?agency={OTHER}", "tiepnhan").get_json()
    assert asked["agency"] == OTHER
    codes = [(p["code"], p["agency"]) for p in client.get("/api/v1/procedures", "tiepnhan").get_json()["items"]]
    assert ("9.000002", AGENCY) in codes and ("9.000002", OTHER) in codes
    r = client.get(f"/api/v1/procedures/9.000002/diagram?agency={OTHER}", "tiepnhan")
    assert "Thủ tục bị chiếm" in r.get_data(as_text=True)

    # Each agency's dossiers run its own variant; the audit says which version.
    mine, yours = new_dossier(client, "tiepnhan", "9.000002"), new_dossier(client, "khac", "9.000002")
    history = client.get(f"/api/v1/dossiers/{mine['code']}/history", "tiepnhan").get_json()["events"]
    assert history[0]["details"]["version"] == 1
    history = client.get(f"/api/v1/dossiers/{yours['code']}/history", "khac").get_json()["events"]
    assert history[0]["details"]["version"] == 2
    # A province-wide procedure (9.000001) is run by every agency that has no variant of its own.
    assert new_dossier(client, "khac")["code"].startswith("H99")


def test_a_procedure_only_another_agency_offers_is_not_received_here(client):
    body = {"procedure_code": "9.000002", "applicant": {"name": "A"}, "channel": 1, "data": {}}
    assert_problem(client.post("/api/v1/dossiers", "khac", json=body), 404)


# -- 7. authorization before validation -----------------------------------------------------------------------
def test_a_receiver_changing_the_calendar_gets_403_whatever_the_body(client):
    for body in ({"working": "maybe"}, {}, {"name": "\u0000"}, [1, 2]):
        assert_problem(
            client.raw.put("/api/v1/calendar/days/2030-13-45", json=body, headers=client.headers("tiepnhan")), 403
        )
    assert_problem(
        client.raw.put(
            "/api/v1/calendar/days/2030-01-02",
            data=b"{",
            headers={**client.headers("tiepnhan"), "Content-Type": "application/json"},
        ),
        403,
    )
    assert_problem(client.raw.put("/api/v1/calendar/days/2030-01-02", json={"working": "x"}), 401)
    assert_problem(
        client.raw.put("/api/v1/calendar/days/2030-01-02", json={"working": "x"}, headers=client.headers("admin")), 422
    )


def test_a_step_of_another_role_is_refused_before_its_body_is_read(client, dossier):
    """Staff of the agency without the step's role get 403, another agency's staff 404, whatever the body;
    only a holder of the role meets the form's 422."""
    tid = dossier["tasks"][0]["id"]  # the intake step: role receiver
    for body in ({"data": "not an object"}, {"version": "x"}, [1, 2]):
        r = client.post(f"/api/v1/tasks/{tid}/complete", "chuyenvien", json=body)
        assert_problem(r, 403)
        assert_problem(client.post(f"/api/v1/tasks/{tid}/complete", "khac", json=body), 404)
    for action in ("claim", "unclaim"):
        assert_problem(client.post(f"/api/v1/tasks/{tid}/{action}", "chuyenvien"), 403)
    assert_problem(client.post(f"/api/v1/tasks/{tid}/complete", "tiepnhan", json={"data": "not an object"}), 422)
    assert client.get(f"/api/v1/dossiers/{dossier['code']}", "tiepnhan").get_json()["tasks"][0]["id"] == tid


# -- 8. a changed password or a disabled account revokes tokens -----------------------------------------------
def test_changing_the_password_revokes_older_tokens(client, app):
    app.config["MOTCUA_ACTOR_CACHE_SECONDS"] = 0  # the 5-second cache is the only grace (docs/security.md)
    old = login(client).get_json()["access_token"]
    assert client.raw.get("/api/v1/auth/me", headers=bearer(old)).status_code == 200
    r = client.raw.post(
        "/api/v1/auth/password",
        json={"current_password": "wrong-one", "new_password": "mat-khau-moi-456"},
        headers=bearer(old),
    )
    assert_problem(r, 403)
    assert_problem(
        client.raw.post(
            "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "short"}, headers=bearer(old)
        ),
        422,
    )
    r = client.raw.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "mat-khau-moi-456"},
        headers=bearer(old),
    )
    assert r.status_code == 204, r.get_data(as_text=True)
    assert_problem(client.raw.get("/api/v1/auth/me", headers=bearer(old)), 401, "unauthenticated")
    assert_problem(login(client), 401)
    new = login(client, password="mat-khau-moi-456").get_json()["access_token"]
    assert client.raw.get("/api/v1/auth/me", headers=bearer(new)).status_code == 200


def test_the_cli_changes_passwords_and_disables_users(client, app, settings, tmp_path):
    app.config["MOTCUA_ACTOR_CACHE_SECONDS"] = 0
    env = {**os.environ, "DATABASE_URL": settings.database_url, "MOTCUA_VAR": str(tmp_path / "cli-var")}
    command.stamp(alembic_config(settings.database_url), "head")  # the fixture built the tables itself
    token = login(client, "canbo").get_json()["access_token"]
    r = CliRunner().invoke(cli, ["users", "passwd", "canbo", "--password", "mat-khau-cli-789"], env=env)
    assert r.exit_code == 0, r.output
    assert_problem(client.raw.get("/api/v1/auth/me", headers=bearer(token)), 401)
    token = login(client, "canbo", "mat-khau-cli-789").get_json()["access_token"]
    r = CliRunner().invoke(cli, ["users", "disable", "canbo"], env=env)
    assert r.exit_code == 0, r.output
    assert_problem(client.raw.get("/api/v1/auth/me", headers=bearer(token)), 401)
    assert_problem(login(client, "canbo", "mat-khau-cli-789"), 401)
    r = CliRunner().invoke(cli, ["users", "disable", "nobody"], env=env)
    assert r.exit_code != 0 and "nobody" in r.output
    r = CliRunner().invoke(cli, ["users", "passwd", "canbo", "--password", "short"], env=env)
    assert r.exit_code != 0 and "8" in r.output


def test_a_revoked_token_passes_at_most_for_the_actor_cache(client, app):
    old = login(client).get_json()["access_token"]
    assert client.raw.get("/api/v1/auth/me", headers=bearer(old)).status_code == 200  # now cached (5 s)
    r = client.raw.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "mat-khau-moi-456"},
        headers=bearer(old),
    )
    assert r.status_code == 204
    app.extensions["motcua_actors"].clear()  # what 5 seconds do to the cache
    assert_problem(client.raw.get("/api/v1/auth/me", headers=bearer(old)), 401)


# -- 9. sign-in limits are shared, per account and address, behind proxies -----------------------------------
def test_wrong_passwords_from_anyone_do_not_lock_the_owner_out(client):
    with time_machine.travel(datetime(2030, 1, 2, 9, 0, tzinfo=UTC), tick=False):
        for _ in range(10):
            assert login(client, password="guess", ip="198.51.100.7").status_code in (401, 429)
        assert login(client, password="guess", ip="198.51.100.7").status_code == 429
        assert login(client, ip="10.9.9.9").status_code == 200  # the owner, from their own address


def test_the_limits_are_shared_by_every_process(app, settings, db):
    other_process = Client(create_app(settings, database=db))  # another server over the same database
    first = Client(app)
    with time_machine.travel(datetime(2030, 1, 2, 9, 0, tzinfo=UTC), tick=False):
        for i in range(6):
            assert login(first if i % 2 else other_process, password="guess").status_code == 401
        assert login(other_process).status_code == 429 and login(first).status_code == 429
        for _ in range(30):
            other_process.raw.get("/api/v1/public/dossiers/H56-990101-0001", environ_base={"REMOTE_ADDR": "10.1.1.1"})
        r = first.raw.get("/api/v1/public/dossiers/H56-990101-0001", environ_base={"REMOTE_ADDR": "10.1.1.1"})
        assert_problem(r, 429)


def test_the_client_address_comes_from_trusted_proxies_only(app, settings, db):
    settings.trusted_proxies = 1  # MOTCUA_TRUSTED_PROXIES=1
    app = create_app(settings, database=db)
    client = Client(app)
    proxy = "10.0.0.1"  # every request reaches the server through the same reverse proxy
    with time_machine.travel(datetime(2030, 1, 2, 9, 0, tzinfo=UTC), tick=False):
        for _ in range(6):  # an attacker at 203.0.113.9, spoofing an extra hop
            h = {"X-Forwarded-For": "1.2.3.4, 203.0.113.9"}
            assert login(client, password="guess", ip=proxy, headers=h).status_code == 401
        assert login(client, ip=proxy, headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 429
        # the owner behind the same proxy, from another address, is not slowed down
        assert login(client, ip=proxy, headers={"X-Forwarded-For": "198.51.100.20"}).status_code == 200


# -- 10. pages: same-origin `next`, headers on every response, the diagram as a download ---------------------
def test_every_response_carries_the_security_headers(client, dossier):
    for r in (
        client.raw.get("/login"),
        client.raw.get("/healthz"),
        client.get("/api/v1/dossiers", "tiepnhan"),
        client.raw.get("/api/v1/dossiers"),  # an error
        client.raw.get("/api/v1/openapi.json"),
        client.raw.get("/no/such/page"),
    ):
        assert r.headers["X-Frame-Options"] == "DENY", r.request.path
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "same-origin"
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp or "default-src" in csp
        assert "'unsafe-inline'" not in csp.split("script-src", 1)[-1].split(";")[0]


def test_the_diagram_is_a_download_never_a_page(client):
    r = client.get("/api/v1/procedures/9.000002/diagram", "tiepnhan")
    assert r.status_code == 200
    assert r.headers["Content-Disposition"].startswith("attachment;")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


# -- 11. the public lookup shows only the fields the forms mark public ---------------------------------------
def test_the_public_lookup_shows_only_public_fields(client):
    d = new_dossier(client, "tiepnhan", "9.000002")
    data = {"decision": "accept", "so_ban": 2, "ghi_chu": "Ý kiến nội bộ: hồ sơ đáng ngờ"}
    r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "tiepnhan", json={"data": data})
    assert r.status_code == 200, r.get_json()
    body = client.raw.get(f"/api/v1/public/dossiers/{d['code']}?id_number=001099012345").get_json()
    assert body["identity_verified"] is True and body["data"] == {"so_ban": 2}
    assert "nội bộ" not in str(body)
