"""Who is acting: users, roles, agencies, and the rules of who may see and do what.

These rules live here, once; the API and the CLI only authenticate and pass an `Actor` in:
- what an actor may do (`Actor.require`, `Actor.may_work`);
- which agency's records an actor sees (`Actor.sees_agency`) and which agency a list is limited to
  (`agency_scope`);
- the dossier or task an actor may look at (`visible_dossier`, `visible_task`): another agency's record is
  the same 404 as an unknown one, so its existence is not shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from .errors import Conflict, InvalidInput, NotFound, PermissionDenied
from .models import Dossier, Task, User

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


def agency_scope(actor: Actor, agency: str | None) -> str | None:
    """The agency a list is limited to: the one asked for (or None: every agency) for supervisors; the
    actor's own agency for other staff, who get PermissionDenied when they ask for another one."""
    agency = (agency or "").strip() or None
    if actor.is_supervisor:
        return agency
    if agency is not None and agency != actor.agency:
        raise PermissionDenied(
            f"Bạn chỉ xem được hồ sơ của cơ quan mình ({actor.agency})",
            f"you may only see your own agency's records ({actor.agency})",
            {"fields": {"agency": actor.agency}},
        )
    return actor.agency


def visible_dossier(session, actor: Actor, code: str, lock: bool = False) -> Dossier:
    """The dossier with this code if the actor may see it (their agency, or every agency for supervisors);
    an unknown code and another agency's dossier are the same 404."""
    d = None
    if isinstance(code, str) and 0 < len(code) <= 64:
        stmt = select(Dossier).where(Dossier.code == code)
        d = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if d is None or not actor.sees_agency(d.agency):
        raise NotFound(f"Không tìm thấy hồ sơ '{code}'", f"dossier '{code}' not found")
    return d


def visible_task(session, actor: Actor, task_id: str) -> Task:
    """The task with this id if the actor may see it; else 404, as for `visible_dossier`."""
    task = session.get(Task, task_id) if isinstance(task_id, str) and 0 < len(task_id) <= 36 else None
    if task is None or not actor.sees_agency(task.agency):
        raise task_not_found()
    return task


def task_not_found() -> NotFound:
    return NotFound("Không tìm thấy công việc", "task not found")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def add_user(
    session,
    username: str,
    password: str,
    roles,
    agency: str,
    full_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
) -> User:
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
        username=username,
        password_hash=hash_password(password),
        roles=roles,
        agency=agency,
        full_name=full_name,
        email=(email or "").strip() or None,  # reminders by e-mail / Zalo (docs/channels.md, "Officers")
        phone=(phone or "").strip() or None,
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
