"""Sign-in with the national identity provider (OpenID Connect): motcua's client (authlib) against a real
provider started by the test on 127.0.0.1 (tests/oidc_provider.py, authlib's server side): discovery,
redirect with state and nonce, code exchange, RS256 ID token checked against the provider's JWKS, the
citizen's ID number read from the configured claim."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from api import create_app

from ..oidc_provider import OpenIdProvider
from .helpers import Client, assert_problem

CALLBACK = "http://motcua.test/api/v1/public/oidc/callback"


@pytest.fixture
def provider():
    p = OpenIdProvider("motcua-portal", "client-secret-123", [CALLBACK], id_claim="so_dinh_danh").start()
    yield p
    p.stop()


@pytest.fixture
def oidc_client(app, settings, db, provider):
    settings.online.public_url = "http://motcua.test"
    settings.online.oidc_issuer = provider.issuer
    settings.online.oidc_client_id = "motcua-portal"
    settings.online.oidc_client_secret = "client-secret-123"
    settings.online.oidc_id_claim = "so_dinh_danh"
    application = create_app(settings, database=db)
    application.config["TESTING"] = True
    return Client(application)


def sign_in_with_provider(c: Client) -> tuple[str, dict]:
    r = c.get("/api/v1/public/oidc/login?next=/cong-dan")
    assert r.status_code == 302, r.get_data(as_text=True)
    to_provider = r.headers["Location"]
    assert to_provider.startswith(c.app.extensions["motcua"].settings.online.oidc_issuer + "/authorize?")
    query = parse_qs(urlsplit(to_provider).query)
    assert query["redirect_uri"] == [CALLBACK] and query["nonce"] and query["state"] and "openid" in query["scope"][0]
    back = requests.get(to_provider, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == CALLBACK
    return f"{callback.path}?{callback.query}", query


def test_sign_in_with_the_identity_provider_gives_a_citizen_token_for_my_dossiers(oidc_client, provider):
    c = oidc_client
    mine = c.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "9.000001", "channel": 1, "applicant": {"name": "Lan", "id_number": "001203004567"}},
    ).get_json()["code"]
    c.post(
        "/api/v1/dossiers",
        "tiepnhan",
        json={"procedure_code": "9.000001", "channel": 1, "applicant": {"name": "Khác", "id_number": "001203009999"}},
    )
    path, _ = sign_in_with_provider(c)
    r = c.get(path)
    assert r.status_code == 302, r.get_data(as_text=True)
    location = urlsplit(r.headers["Location"])
    assert location.path == "/cong-dan"
    fragment = parse_qs(location.fragment)
    assert fragment["id_number"] == ["001203004567"] and fragment["name"] == ["Nguyễn Thị Lan"]
    assert provider.issued and "id_token" in provider.issued[-1]  # the real code exchange happened
    h = {"Authorization": f"Bearer {fragment['access_token'][0]}"}
    listing = c.get("/api/v1/public/my/dossiers", headers=h).get_json()
    assert [d["code"] for d in listing["items"]] == [mine]


def test_a_forged_or_replayed_callback_is_refused(oidc_client, provider):
    c = oidc_client
    path, _ = sign_in_with_provider(c)
    forged = path.replace("state=", "state=x")
    assert_problem(c.get(forged), 401)
    # a code is good once: after a successful sign-in, the same callback is refused
    path, _ = sign_in_with_provider(c)
    assert c.get(path).status_code == 302
    assert_problem(c.get(path), 401)


def test_without_the_configured_claim_nobody_signs_in(oidc_client, provider):
    provider.user = {"sub": "vneid-0002", "name": "Không số"}
    path, _ = sign_in_with_provider(oidc_client)
    assert_problem(oidc_client.get(path), 403)


def test_sign_in_with_the_provider_is_a_404_when_not_configured(client):
    assert_problem(client.get("/api/v1/public/oidc/login"), 404)
