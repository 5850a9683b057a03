"""Citizens' access tokens: short-lived HS256 JWTs with the role `citizen`.

Claims: `sub` (`citizen:phone:<phone>` or `citizen:id:<ID number>`: never a staff username, which cannot
hold `:`), `typ` = `citizen`, `roles` = `["citizen"]`, `phone` or `id_number`, `name` (from the identity
provider), `iat`, `exp` (`MOTCUA_CITIZEN_TOKEN_TTL`, 1800 s by default). Staff endpoints refuse them
(api/auth.py); the citizens' endpoints (api/citizens.py) accept only them.
"""

from __future__ import annotations

import time

import jwt
from flask import g, request

from engine.citizens import Citizen
from engine.errors import MotcuaError

from .context import services

ALGORITHM = "HS256"
CITIZEN = "citizen"


class CitizenUnauthenticated(MotcuaError):
    status = 401
    code = "unauthenticated"


def issue_citizen_token(citizen: Citizen, secret: str, ttl: int) -> str:
    now = int(time.time())
    claims = {"sub": citizen.subject, "typ": CITIZEN, "roles": [CITIZEN], "iat": now, "exp": now + int(ttl)}
    if citizen.phone:
        claims["phone"] = citizen.phone
    if citizen.id_number:
        claims["id_number"] = citizen.id_number
    if citizen.name:
        claims["name"] = citizen.name
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def token_answer(citizen: Citizen) -> dict:
    settings = services().settings
    ttl = settings.online.citizen_token_ttl_seconds
    return {
        "access_token": issue_citizen_token(citizen, settings.secret_key, ttl),
        "token_type": "Bearer",
        "expires_in": ttl,
        "role": CITIZEN,
        "phone": citizen.phone,
        "id_number": citizen.id_number,
        "name": citizen.name,
    }


def _decode(token: str) -> Citizen:
    try:
        claims = jwt.decode(
            token,
            services().settings.secret_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "iat"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise CitizenUnauthenticated(
            "Phiên đăng nhập đã hết hạn; vui lòng đăng nhập lại", "the token has expired; sign in again"
        ) from None
    except jwt.PyJWTError:
        raise CitizenUnauthenticated("Token không hợp lệ", "invalid token") from None
    if claims.get("typ") != CITIZEN or not (claims.get("phone") or claims.get("id_number")):
        raise CitizenUnauthenticated(
            "Cần đăng nhập bằng tài khoản công dân", "a citizen's sign-in is required for this endpoint"
        )
    return Citizen(phone=claims.get("phone"), id_number=claims.get("id_number"), name=claims.get("name"))


def bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def citizen_required() -> None:
    """`before_request` of the citizens' own endpoints: a valid citizen token, else 401."""
    if request.method == "OPTIONS":
        return
    token = bearer()
    if token is None:
        raise CitizenUnauthenticated(
            "Cần đăng nhập (mã xác thực qua SMS hoặc định danh điện tử)",
            "sign-in required (a code by SMS or the national identity)",
        )
    g.citizen = _decode(token)


def optional_citizen() -> Citizen | None:
    """The citizen of this request if a citizen token is sent; a bad token is still a 401."""
    token = bearer()
    return _decode(token) if token else None


def current_citizen() -> Citizen:
    return g.citizen


def client_ip() -> str:
    return request.remote_addr or "-"
