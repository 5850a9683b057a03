"""Authentication: POST /auth/token issues short-lived JWTs; every protected blueprint checks them.

Tokens are HS256 JWTs signed with `settings.secret_key` (MOTCUA_SECRET_KEY: use 32+ random bytes), valid
`settings.token_ttl_seconds`, with claims `sub` (username), `roles`, `agency`, `name`, `iat`, `exp`. On every
request the user is read again from the database (`engine.auth.load_actor`), at most every
`ACTOR_CACHE_SECONDS` (5 s; app config `MOTCUA_ACTOR_CACHE_SECONDS`) per user and process, and the cache is
emptied within about a second when any process changed a user (engine/caches.py), so a deactivated user or a
changed role takes effect at once, not at token expiry. The role and agency rules
themselves live in `engine.auth.Actor`.

Tokens also carry the user's token generation (`gen`): changing the password (`POST /auth/password`,
`motcua users passwd`) or disabling the account (`motcua users disable`) bumps it in the users row, and a
token of an older generation is refused (401) as soon as the actor cache above (5 s) no longer holds it.

Failed sign-ins are counted in the database, shared by every process (api/ratelimit.py): per account and
client address, per address, and per account, each with growing delays (429 with Retry-After) rather than
a lock; the client address comes from `MOTCUA_TRUSTED_PROXIES` (docs/security.md).
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
from engine.auth import set_password as engine_set_password
from engine.errors import MotcuaError, NotFound, PermissionDenied

from .common import errors
from .context import actor, read_session, services
from .hygiene import check_request
from .ratelimit import TooManyRequests, login_keys

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
        "gen": int(actor.generation),
        "roles": sorted(actor.roles),
        "agency": actor.agency,
        "name": actor.full_name,
        "iat": now,
        "exp": now + int(ttl),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def requires(permission: str | None = "staff", *, roles: tuple[str, ...] = (), task: bool = False):
    """Declare what an operation needs: a name of `engine.auth.PERMISSIONS`, or `roles` (any one of them;
    admins always pass). `authenticate` checks it before flask-smorest parses the body or the query, so a
    caller without it gets 403 whatever the input holds. An operation of a protected blueprint that
    declares nothing needs "staff". `task=True`: the operation acts on the step named by its `task_id`
    path parameter, and the caller must also hold one of that step's roles (checked before the input too)."""

    def decorator(func):
        func._motcua_requires = (permission, tuple(roles))
        func._motcua_task = task
        return func

    return decorator


def required_of(view) -> tuple[str | None, tuple[str, ...]] | None:
    """The declaration of `requires` on a view function (through flask-smorest's wrappers), or None."""
    seen = 0
    while view is not None and seen < 20:
        declared = getattr(view, "_motcua_requires", None)
        if declared is not None:
            return declared
        view, seen = getattr(view, "__wrapped__", None), seen + 1
    return None


def _acts_on_task(view) -> bool:
    seen = 0
    while view is not None and seen < 20:
        if getattr(view, "_motcua_task", False):
            return True
        view, seen = getattr(view, "__wrapped__", None), seen + 1
    return False


_DECLARED: dict = {}  # view function → (permission, roles, acts on a task): read once, not per request


def _declared(view) -> tuple[str | None, tuple[str, ...], bool]:
    hit = _DECLARED.get(view)
    if hit is None:
        permission, roles = required_of(view) or ("staff", ())
        hit = _DECLARED[view] = (permission, roles, _acts_on_task(view))
    return hit


def _authorize(a: Actor) -> None:
    req = request._get_current_object()
    view = current_app.view_functions.get(req.endpoint) if req.endpoint else None
    permission, roles, acts_on_task = _declared(view)
    if roles:
        a.require(*roles)
    if permission:
        a.require_permission(permission)
    task_id = (req.view_args or {}).get("task_id")
    if task_id is not None and acts_on_task:
        services().dossiers.authorize_task(a, str(task_id))


def authenticate() -> None:
    """`before_request` of every protected blueprint: a valid bearer token of an active user, or 401; then
    the operation's declared permission (`requires`), or 403 — both before any input is read."""
    if request.method == "OPTIONS":
        return
    g.actor = _authenticated()
    _authorize(g.actor)
    check_request()  # input hygiene, only once the caller may call this operation at all


def _authenticated() -> Actor:
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
        return _actor(svc, hit["sub"], hit["gen"])  # this exact token's signature was checked before
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
    gen = claims.get("gen", 0)
    if not isinstance(claims.get("sub"), str) or not isinstance(gen, int):
        raise Unauthenticated("Token không hợp lệ", "invalid token")
    if len(verified) > 10_000:
        verified.clear()
    verified[token] = {"sub": claims["sub"], "exp": claims["exp"], "gen": gen}
    return _actor(svc, claims["sub"], gen)


def _actor(svc, username: str, generation: int) -> Actor:
    """The user's current roles and agency, from a short per-process cache keyed by the token's generation
    (see the module docstring): a revoked token passes for at most that cache's lifetime."""
    ttl = current_app.config.get("MOTCUA_ACTOR_CACHE_SECONDS", ACTOR_CACHE_SECONDS)
    cache = current_app.extensions.setdefault("motcua_actors", {})
    now = time.monotonic()
    key = (username, generation)
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    try:
        with read_session() as s:
            a = load_actor(s, username, generation)
    except NotFound:
        cache.pop(key, None)
        raise Unauthenticated(
            "Tài khoản không còn hoạt động hoặc token đã bị thu hồi; vui lòng đăng nhập lại",
            "the account is inactive or the token was revoked; log in again",
        ) from None
    if ttl > 0:
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = (now + ttl, a)
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


def _check_limits(limiter, keys) -> None:
    wait = limiter.retry_after(keys)
    if wait:
        raise TooManyRequests(
            wait,
            f"Đăng nhập sai nhiều lần; vui lòng thử lại sau {wait} giây",
            f"too many failed sign-ins; retry in {wait} s",
        )


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
    keys = login_keys(body["username"], request.remote_addr or "-")
    _check_limits(svc.login_limiter, keys)
    try:
        with read_session() as s:
            a = engine_authenticate(s, body["username"], body["password"])
    except PermissionDenied:
        svc.login_limiter.failed(keys)
        raise
    svc.login_limiter.succeeded(keys["pair"], keys["account"])
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
@requires("signed_in")
@me_blp.doc(summary="Người đang đăng nhập / who am I")
@me_blp.response(200, MeSchema)
@errors(me_blp, 401, 403)
def me():
    return _me(g.actor)


class PasswordChangeSchema(ma.Schema):
    current_password = ma.fields.String(
        required=True, validate=validate.Length(min=1, max=1024), metadata={"format": "password"}
    )
    new_password = ma.fields.String(
        required=True, validate=validate.Length(min=8, max=1024), metadata={"format": "password"}
    )


@me_blp.route("/password", methods=["POST"])
@requires("signed_in")
@me_blp.doc(
    summary="Đổi mật khẩu / change my password",
    description="Every token issued before (this one included) stops working: log in again with the new "
    "password. A wrong current password is a 403 and counts as a failed sign-in.",
)
@me_blp.arguments(PasswordChangeSchema())
@me_blp.response(204)
@errors(me_blp, 401, 403, 422, 429)
def change_password(body):
    a, svc = actor(), services()
    limiter = svc.login_limiter
    keys = login_keys(a.username, request.remote_addr or "-")
    _check_limits(limiter, keys)
    try:
        with svc.db.uow() as s:
            engine_set_password(s, a.username, body["new_password"], current_password=body["current_password"])
    except PermissionDenied:
        limiter.failed(keys)
        raise
    return None
