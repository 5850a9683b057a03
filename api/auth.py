"""Authentication: POST /auth/token issues short-lived JWTs; every protected blueprint checks them.

Tokens are HS256 JWTs signed with `settings.secret_key` (MOTCUA_SECRET_KEY: use 32+ random bytes), valid
`settings.token_ttl_seconds`, with claims `sub` (username), `roles`, `agency`, `name`, `iat`, `exp`. On every
request the user is read again from the database (`engine.auth.load_actor`), at most every
`ACTOR_CACHE_SECONDS` (5 s; app config `MOTCUA_ACTOR_CACHE_SECONDS`) per user and process, so a deactivated
user or a changed role takes effect within seconds, not at token expiry. The role and agency rules
themselves live in `engine.auth.Actor`.

Failed logins are rate-limited per username + client IP (10 per 5 minutes by default, in process, see
api/ratelimit.py): the 11th attempt answers 429 with Retry-After, even with the right password.
"""

from __future__ import annotations

import time

import jwt
import marshmallow as ma
from flask import current_app, g, request
from flask_smorest import Blueprint
from marshmallow import validate

from engine.auth import Actor, load_actor
from engine.auth import authenticate as engine_authenticate
from engine.errors import MotcuaError, NotFound, PermissionDenied

from .common import errors
from .context import read_session, services
from .ratelimit import TooManyRequests

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Đăng nhập / authentication: short-lived bearer tokens (JWT)",
)

ALGORITHM = "HS256"
ACTOR_CACHE_SECONDS = 5.0


class Unauthenticated(MotcuaError):
    status = 401
    code = "unauthenticated"


def issue_token(actor: Actor, secret: str, ttl: int) -> str:
    now = int(time.time())
    claims = {
        "sub": actor.username,
        "roles": sorted(actor.roles),
        "agency": actor.agency,
        "name": actor.full_name,
        "iat": now,
        "exp": now + int(ttl),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def authenticate() -> None:
    """`before_request` of every protected blueprint: a valid bearer token of an active user, or 401."""
    if request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "Cần đăng nhập (Authorization: Bearer <token>)", "authentication required (Authorization: Bearer <token>)"
        )
    svc = services()
    token = token.strip()
    verified = current_app.extensions.setdefault("motcua_tokens", {})
    hit = verified.get(token)
    if hit is not None and hit["exp"] + 5 > time.time():
        g.actor = _actor(svc, hit["sub"])  # this exact token's signature was checked before
        return
    try:
        claims = jwt.decode(
            token, svc.settings.secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "iat"]}, leeway=5
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated(
            "Phiên đăng nhập đã hết hạn; vui lòng đăng nhập lại", "the token has expired; log in again"
        ) from None
    except jwt.PyJWTError:
        raise Unauthenticated("Token không hợp lệ", "invalid token") from None
    if not isinstance(claims.get("sub"), str):
        raise Unauthenticated("Token không hợp lệ", "invalid token")
    if len(verified) > 10_000:
        verified.clear()
    verified[token] = {"sub": claims["sub"], "exp": claims["exp"]}
    g.actor = _actor(svc, claims["sub"])


def _actor(svc, username: str) -> Actor:
    """The user's current roles and agency, from a short per-process cache (see the module docstring)."""
    ttl = current_app.config.get("MOTCUA_ACTOR_CACHE_SECONDS", ACTOR_CACHE_SECONDS)
    cache = current_app.extensions.setdefault("motcua_actors", {})
    now = time.monotonic()
    hit = cache.get(username)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        with read_session() as s:
            a = load_actor(s, username)
    except NotFound:
        cache.pop(username, None)
        raise Unauthenticated("Tài khoản không còn hoạt động", "the account no longer exists or is inactive") from None
    if ttl > 0:
        if len(cache) > 10_000:
            cache.clear()
        cache[username] = (now + ttl, a)
    return a


class TokenRequestSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=validate.Length(min=1, max=80))
    password = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=1024), metadata={"format": "password"}
    )


class TokenSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "giây / seconds"})
    username = ma.fields.String(required=True)
    roles = ma.fields.List(ma.fields.String(), required=True)
    agency = ma.fields.String(required=True)
    full_name = ma.fields.String(allow_none=True)


class MeSchema(ma.Schema):
    username = ma.fields.String(required=True)
    roles = ma.fields.List(ma.fields.String(), required=True)
    agency = ma.fields.String(required=True)
    full_name = ma.fields.String(allow_none=True)
    is_supervisor = ma.fields.Boolean(required=True)
    is_admin = ma.fields.Boolean(required=True)


def _me(a: Actor) -> dict:
    return {
        "username": a.username,
        "roles": sorted(a.roles),
        "agency": a.agency,
        "full_name": a.full_name,
        "is_supervisor": a.is_supervisor,
        "is_admin": a.is_admin,
    }


@blp.route("/token", methods=["POST"])
@blp.doc(security=[], summary="Đăng nhập, nhận token / log in, get a bearer token")
@blp.arguments(TokenRequestSchema())
@blp.response(200, TokenSchema)
@errors(blp, 401, 422, 429)
def token(body):
    svc = services()
    key = f"{body['username'].lower()}|{request.remote_addr or '-'}"
    wait = svc.login_limiter.retry_after(key)
    if wait:
        raise TooManyRequests(
            wait, f"Đăng nhập sai quá nhiều lần; thử lại sau {wait} giây", f"too many failed logins; retry in {wait} s"
        )
    try:
        with read_session() as s:
            a = engine_authenticate(s, body["username"], body["password"])
    except PermissionDenied:
        svc.login_limiter.hit(key)
        raise
    ttl = svc.settings.token_ttl_seconds
    return {
        "access_token": issue_token(a, svc.settings.secret_key, ttl),
        "token_type": "Bearer",
        "expires_in": ttl,
        **{k: v for k, v in _me(a).items() if k in ("username", "roles", "agency", "full_name")},
    }


me_blp = Blueprint("me", __name__, url_prefix="/api/v1/auth", description="Người dùng hiện tại / current user")
me_blp.before_request(authenticate)


@me_blp.route("/me", methods=["GET"])
@me_blp.doc(summary="Người đang đăng nhập / who am I")
@me_blp.response(200, MeSchema)
@errors(me_blp, 401)
def me():
    return _me(g.actor)
