"""The authorization matrix: every operation of the OpenAPI document × anonymous, citizen, analyst, receiver,
a lane role, supervisor and admin × a resource of their own agency and of another → the expected status.

The table below says, in the words of docs/security.md, who may call each operation; the expected status
follows from it: 401 without a token, 403 without the right role — whatever the body holds (every call
sends a malformed body or query), 404 for another agency's dossier or task unless the caller oversees
every agency, and otherwise an answer past authorization (never 401/403, never 5xx). A new operation
fails `test_the_table_covers_every_operation` until it is added here.
"""

from __future__ import annotations

import pytest

from .helpers import AGENCY, OTHER, new_dossier

ACTORS = {
    "anonymous": None,
    "citizen": "congdan",
    "analyst": "analyst",
    "receiver": "tiepnhan",
    "lane": "chuyenvien",  # role `specialist`, named by a lane of a deployed procedure
    "supervisor": "supervisor",
    "admin": "admin",
}
STAFF = {"receiver", "lane", "supervisor", "admin"}
EVERYONE = set(ACTORS)
SIGNED_IN = EVERYONE - {"anonymous"}
RECEIVERS = {"receiver", "admin"}
SUPERVISORS = {"supervisor", "admin"}
ADMINS = {"admin"}
GATEWAY: set[str] = set()  # no user: 401 without the gateway's token, 403 with a wrong one (404 unconfigured)
CITIZEN_TOKEN: set[str] = set()  # a citizen's own token: 401 with any staff account's token
ANONYMOUS_OR_CITIZEN_TOKEN = {"anonymous"}  # no token, or a citizen's: 401 with a staff account's token

# (method, path) -> (who may call it, whether it reads one agency's dossier or task: 404 across agencies)
TABLE = {
    ("GET", "/healthz"): (EVERYONE, False),
    ("POST", "/api/v1/auth/token"): (EVERYONE, False),
    ("GET", "/api/v1/auth/me"): (SIGNED_IN, False),
    ("POST", "/api/v1/auth/password"): (SIGNED_IN, False),
    ("GET", "/api/v1/procedures"): (STAFF | {"analyst"}, False),
    ("POST", "/api/v1/procedures"): ({"analyst", "admin"}, False),
    ("GET", "/api/v1/procedures/{code}"): (STAFF | {"analyst"}, False),
    ("GET", "/api/v1/procedures/{code}/diagram"): (STAFF | {"analyst"}, False),
    ("GET", "/api/v1/procedures/{code}/counts"): (STAFF | {"analyst"}, False),
    ("POST", "/api/v1/procedures/validate"): ({"analyst", "admin"}, False),
    ("POST", "/api/v1/procedures/{code}/migrations"): (ADMINS, False),
    ("POST", "/api/v1/dossiers"): (RECEIVERS, False),
    ("GET", "/api/v1/dossiers"): (STAFF, False),
    ("GET", "/api/v1/dossiers/{code}"): (STAFF, True),
    ("GET", "/api/v1/dossiers/{code}/history"): (STAFF, True),
    ("GET", "/api/v1/dossiers/{code}/steps"): (STAFF, True),
    ("GET", "/api/v1/dossiers/{code}/incidents"): (STAFF, True),
    ("POST", "/api/v1/dossiers/{code}/incidents/{incident_id}/retry"): (STAFF, True),
    ("GET", "/api/v1/dossiers/{code}/attachments"): (STAFF, True),
    ("GET", "/api/v1/dossiers/{code}/attachments/{attachment_id}"): (STAFF, True),
    ("POST", "/api/v1/dossiers/{code}/attachments"): (RECEIVERS, True),
    ("DELETE", "/api/v1/dossiers/{code}/attachments/{attachment_id}"): (RECEIVERS, True),
    ("POST", "/api/v1/dossiers/{code}/supplement-request"): (RECEIVERS, True),
    ("POST", "/api/v1/dossiers/{code}/supplement-received"): (RECEIVERS, True),
    ("POST", "/api/v1/dossiers/{code}/refuse"): (RECEIVERS, True),
    ("POST", "/api/v1/dossiers/{code}/withdraw"): (RECEIVERS, True),
    ("POST", "/api/v1/dossiers/{code}/stop"): (RECEIVERS, True),  # and leaders' roles (none here)
    ("POST", "/api/v1/dossiers/{code}/extend"): (RECEIVERS, True),
    ("GET", "/api/v1/tasks"): (STAFF, False),
    ("GET", "/api/v1/tasks/{task_id}"): (STAFF, True),
    # The task in question is an intake step (role `receiver`): other staff may not hold it (403).
    ("POST", "/api/v1/tasks/{task_id}/claim"): (RECEIVERS, True),
    ("POST", "/api/v1/tasks/{task_id}/unclaim"): (RECEIVERS, True),
    # claim, unclaim, complete: the step's own role, checked before the body (the world's step is the intake)
    ("POST", "/api/v1/tasks/{task_id}/complete"): (RECEIVERS, True),
    ("GET", "/api/v1/public/dossiers/{code}"): (EVERYONE, False),
    ("GET", "/api/v1/calendar/due"): (STAFF, False),
    ("GET", "/api/v1/calendar/days"): (STAFF, False),
    ("PUT", "/api/v1/calendar/days/{day}"): (ADMINS, False),
    ("DELETE", "/api/v1/calendar/days/{day}"): (ADMINS, False),
    ("GET", "/api/v1/agencies"): (ADMINS, False),
    ("GET", "/api/v1/agencies/{code}"): (ADMINS, False),
    ("PUT", "/api/v1/agencies/{code}"): (ADMINS, False),
    ("GET", "/api/v1/monitor/overdue"): (STAFF, False),
    ("GET", "/api/v1/monitor/due-soon"): (STAFF, False),
    ("GET", "/api/v1/dossiers/{code}/deliveries"): (STAFF, True),
    ("GET", "/api/v1/me/messages"): (STAFF, False),
    ("GET", "/api/v1/notifications/dead"): (ADMINS, False),
    ("POST", "/api/v1/notifications/resend"): (ADMINS, False),
    ("GET", "/api/v1/templates"): (ADMINS, False),
    ("POST", "/api/v1/templates/preview"): (ADMINS, False),
    ("GET", "/api/v1/templates/{name}"): (ADMINS, False),
    ("PUT", "/api/v1/templates/{name}"): (ADMINS, False),
    ("DELETE", "/api/v1/templates/{name}"): (ADMINS, False),
    # Citizens online: the public catalogue and submission are open to anyone (rate-limited)…
    ("GET", "/api/v1/public/procedures"): (EVERYONE, False),
    ("GET", "/api/v1/public/procedures/{code}"): (EVERYONE, False),
    ("GET", "/api/v1/public/procedures/{code}/forms/{key}"): (EVERYONE, False),
    ("POST", "/api/v1/public/dossiers"): (ANONYMOUS_OR_CITIZEN_TOKEN, False),
    ("POST", "/api/v1/public/otp"): (EVERYONE, False),
    ("POST", "/api/v1/public/otp/verify"): (EVERYONE, False),
    ("GET", "/api/v1/public/oidc/login"): (EVERYONE, False),
    # … the identity provider's and the payment gateway's callbacks carry their own proof (state, signature)…
    ("GET", "/api/v1/public/oidc/callback"): (GATEWAY, False),
    ("GET", "/api/v1/payments/ipn"): (GATEWAY, False),
    ("POST", "/api/v1/payments/ipn"): (GATEWAY, False),
    # … and a citizen's own dossiers need a citizen's token (SMS code or national identity), never a staff one.
    ("GET", "/api/v1/public/my/dossiers"): (CITIZEN_TOKEN, False),
    ("GET", "/api/v1/public/my/dossiers/{code}"): (CITIZEN_TOKEN, False),
    ("POST", "/api/v1/public/my/dossiers/{code}/supplement"): (CITIZEN_TOKEN, False),
    ("POST", "/api/v1/public/my/dossiers/{code}/withdraw"): (CITIZEN_TOKEN, False),
    ("GET", "/api/v1/public/my/dossiers/{code}/files/{file_id}"): (CITIZEN_TOKEN, False),
    ("POST", "/api/v1/public/my/dossiers/{code}/payment"): (CITIZEN_TOKEN, False),
    # The SMS / Zalo gateways: a shared token (X-Gateway-Token), never a user's bearer token.
    ("POST", "/api/v1/inbound/sms"): (GATEWAY, False),
    ("POST", "/api/v1/inbound/zalo"): (GATEWAY, False),
    ("GET", "/api/v1/reports/summary"): (SUPERVISORS, False),
    ("GET", "/api/v1/reports/on-time-by-month"): (SUPERVISORS, False),
}
# Operations whose path names a dossier or a task: the bodies sent there are malformed, so a caller past
# the role check gets 422 before the dossier is looked up; GETs carry no body and show the 404.
OVERSEE_EVERY_AGENCY = {"supervisor", "admin"}


def _operations(app):
    spec = app.extensions["motcua_api"].spec.to_dict()
    for path, item in spec["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "delete", "patch"):
                yield method.upper(), path


def test_the_table_covers_every_operation(app):
    assert set(_operations(app)) == set(TABLE)


def test_every_protected_operation_declares_what_it_needs(app):
    """An operation behind a bearer token names its permission (`api.auth.requires`) rather than relying on
    the default."""
    from api.auth import authenticate, required_of

    spec = app.extensions["motcua_api"].spec.to_dict()
    protected = {
        (m.upper(), p)
        for p, item in spec["paths"].items()
        for m, op in item.items()
        if m in ("get", "post", "put", "delete", "patch") and op.get("security") != []
    }
    adapter = app.url_map.bind("localhost")
    checked = 0
    for method, path in protected:
        url = path.replace("{code}", "X").replace("{task_id}", "T").replace("{day}", "2030-01-01")
        url = url.replace("{attachment_id}", "1").replace("{name}", "received/sms.txt").replace("{file_id}", "1")
        url = url.replace("{incident_id}", "1")
        endpoint, _ = adapter.match(url, method=method)
        if authenticate not in app.before_request_funcs.get(endpoint.rsplit(".", 1)[0], ()):
            continue  # a citizen's own token (api/citizen_auth.py): the matrix shows staff tokens get 401
        checked += 1
        assert required_of(app.view_functions[endpoint]) is not None, (method, path)
    assert checked > 40


@pytest.fixture
def world(client):
    own = new_dossier(client, "tiepnhan")
    other = new_dossier(client, "khac")
    return {"own": own, "other": other}


def _request(client, method, path, user, resource):
    url = (
        path.replace("{code}", resource["code"])
        .replace("{task_id}", resource["tasks"][0]["id"])
        .replace("{day}", "2030-01-01")
        .replace("{attachment_id}", "1")
        .replace("{name}", "received/sms.txt")
        .replace("{key}", "intake.json")
        .replace("{file_id}", "1")
        .replace("{incident_id}", "1")
    )
    if path.startswith(("/api/v1/procedures/{code}", "/api/v1/public/procedures/{code}")):
        url = path.replace("{code}", "9.000002").replace("{key}", "intake.json")
    kw = {}
    if method in ("POST", "PUT"):
        if path in ("/api/v1/procedures", "/api/v1/procedures/validate") or path.endswith("/attachments"):
            kw = {"data": {"nothing": "here"}, "content_type": "multipart/form-data"}
        else:
            kw = {"json": {"unexpected": [1, 2, 3], "working": "not a boolean"}}
    elif path in ("/api/v1/reports/summary", "/api/v1/calendar/due"):
        url += "?from=yesterday&start=never"
    return client.raw.open(url, method=method, headers=client.headers(user), **kw)


@pytest.mark.parametrize("side", ["own", "other"])
@pytest.mark.parametrize("actor", list(ACTORS))
def test_matrix(client, world, actor, side):
    failures = []
    for (method, path), (who, scoped) in TABLE.items():
        if path == "/api/v1/auth/token":
            continue  # anyone; its own tests (test_auth.py, test_security.py) cover the limits
        resource = world[side]
        r = _request(client, method, path, ACTORS[actor], resource)
        got = r.status_code
        hidden = scoped and side == "other" and actor in STAFF - OVERSEE_EVERY_AGENCY
        if hidden and (method == "GET" or "claim" in path or path.endswith("/complete")):
            expected = 404  # another agency's dossier or task does not exist for its staff
            ok = got == 404
        elif who is GATEWAY:
            expected = "401, 403 or 404"
            ok = got in (401, 403, 404)
        elif who is CITIZEN_TOKEN or (who is ANONYMOUS_OR_CITIZEN_TOKEN and actor != "anonymous"):
            expected = 401
            ok = got == 401
        elif actor not in who:
            expected = 401 if actor == "anonymous" else 403
            ok = got == expected
        else:
            expected = "past authorization"
            ok = got not in (401, 403) and got < 500
        if not ok:
            failures.append(f"{method} {path} as {actor} on {side} agency's: {got}, expected {expected}")
    assert not failures, "\n".join(failures)


def test_the_world_has_two_agencies(world):
    assert world["own"]["code"].startswith("H56") and world["other"]["code"].startswith("H99")
    assert AGENCY != OTHER
