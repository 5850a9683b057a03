"""Who is acting: users, roles, agencies, and the rules of who may see and do what.

These rules live here, once; the API and the CLI only authenticate and pass an `Actor` in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from .errors import Conflict, InvalidInput, NotFound, PermissionDenied
from .models import User

STAFF_ROLES = {"receiver", "analyst", "supervisor", "admin"}
_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,80}$")
_ROLE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset
    agency: str
    full_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_supervisor(self) -> bool:
        return "supervisor" in self.roles or self.is_admin

    def sees_agency(self, agency: str) -> bool:
        return self.is_supervisor or agency == self.agency

    def require(self, *roles: str) -> None:
        if not (self.roles & set(roles)) and not self.is_admin:
            raise PermissionDenied(
                f"Cần vai trò {', '.join(roles)} để thực hiện thao tác này",
                f"this action needs the role {', '.join(roles)}",
            )

    def may_work(self, task_roles, task_agency: str, assignee: str | None = None) -> bool:
        if self.is_admin:
            return True
        if task_agency != self.agency:
            return False
        if assignee and assignee == self.username:
            return True
        return bool(self.roles & set(task_roles or ()))


SYSTEM = Actor("system", frozenset({"admin"}), "*", "Hệ thống")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(session, username: str, password: str, roles, agency: str, full_name: str | None = None) -> User:
    if not _USERNAME.match(username or ""):
        raise InvalidInput(
            "Tên đăng nhập chỉ gồm chữ, số, . _ - (2–80 ký tự)", "username: letters, digits, . _ - (2–80 characters)"
        )
    if not password or len(password) < 8:
        raise InvalidInput("Mật khẩu phải có ít nhất 8 ký tự", "password must have at least 8 characters")
    roles = sorted({r.strip() for r in roles if r and r.strip()})
    if not roles or not all(_ROLE.match(r) for r in roles):
        raise InvalidInput("Cần ít nhất một vai trò hợp lệ", "at least one valid role is needed")
    if not agency:
        raise InvalidInput("Cần mã cơ quan", "an agency is required")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"Người dùng '{username}' đã tồn tại", f"user '{username}' already exists")
    user = User(
        username=username, password_hash=hash_password(password), roles=roles, agency=agency, full_name=full_name
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session, username: str, password: str) -> Actor:
    user = session.scalars(select(User).where(User.username == username)).first()
    bad = PermissionDenied("Sai tên đăng nhập hoặc mật khẩu", "wrong username or password")
    bad.status = 401
    if user is None or not user.active:
        _hasher.hash("timing-equaliser")
        raise bad
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise bad from None
    return actor_of(user)


def actor_of(user: User) -> Actor:
    return Actor(user.username, frozenset(user.roles or ()), user.agency, user.full_name)


def load_actor(session, username: str) -> Actor:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFound("Không tìm thấy người dùng", "user not found")
    return actor_of(user)
