"""A real OpenID Connect provider for the tests, served on 127.0.0.1, built with authlib's server side
(authorization code flow, `OpenIDCode` extension, RS256 ID tokens, discovery document and JWKS).

It stands in for the national identity provider: the test says who signs in (`provider.user`), the
authorization endpoint consents for that person at once, and motcua's client (authlib's Flask client,
api/citizens.py) does the rest over HTTP: discovery, redirect, code exchange, ID token signature and claims.
"""

from __future__ import annotations

import threading
import time

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, grants
from authlib.oidc.core import AuthorizationCodeMixin, UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


class Client(ClientMixin):
    def __init__(self, client_id, client_secret, redirect_uris):
        self.client_id, self.client_secret, self.redirect_uris = client_id, client_secret, redirect_uris

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile"))

    def check_redirect_uri(self, redirect_uri):
        return not self.redirect_uris or redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


class Code(AuthorizationCodeMixin):
    def __init__(self, code, client_id, redirect_uri, scope, user, nonce):
        self.code, self.client_id, self.redirect_uri = code, client_id, redirect_uri
        self.scope, self.user, self.nonce, self.auth_time = scope, user, nonce, int(time.time())

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class OpenIdProvider:
    """Start with `OpenIdProvider(client_id, secret).start()`; `issuer` is its URL; `stop()` at the end."""

    def __init__(self, client_id: str, client_secret: str, redirect_uris=(), id_claim: str = "so_dinh_danh"):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        self.clients = {client_id: Client(client_id, client_secret, list(redirect_uris))}
        self.codes: dict[str, Code] = {}
        self.id_claim = id_claim
        self.user = {"sub": "vneid-0001", "name": "Nguyễn Thị Lan", id_claim: "001203004567"}
        self.issued: list[dict] = []  # what the token endpoint answered, for the tests to look at
        self.app = self._make_app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="oidc-provider", daemon=True)

    def start(self) -> OpenIdProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(10)

    def _make_app(self) -> Flask:
        provider = self
        app = Flask("test_oidc_provider")

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                nonce = req.payload.data.get("nonce")
                provider.codes[code] = Code(
                    code, req.client.client_id, req.payload.redirect_uri, req.scope, dict(req.user), nonce
                )

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item is not None and item.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce, req):
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client):
                return provider.key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": "test-key-1"}

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def generate_user_info(self, user, scope):
                return UserInfo(**user)

        server = AuthorizationServer(
            app, query_client=lambda cid: provider.clients.get(cid), save_token=lambda token, req: None
        )
        server.register_grant(CodeGrant, [IdToken(require_nonce=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(
                {
                    "issuer": provider.issuer,
                    "authorization_endpoint": f"{provider.issuer}/authorize",
                    "token_endpoint": f"{provider.issuer}/token",
                    "jwks_uri": f"{provider.issuer}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                    "scopes_supported": ["openid", "profile"],
                }
            )

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize():
            grant = server.get_consent_grant(end_user=provider.user)
            return server.create_authorization_response(grant_user=provider.user, grant=grant)

        @app.post("/token")
        def token():
            resp = server.create_token_response()
            provider.issued.append(resp.get_json() or {})
            return resp

        @app.errorhandler(Exception)
        def oops(exc):  # pragma: no cover - shown in the test's output when the provider itself fails
            app.logger.exception("provider error")
            return jsonify({"error": "server_error", "error_description": str(exc)}), 500

        _ = request
        return app
