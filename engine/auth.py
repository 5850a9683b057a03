"""Who is acting: users, roles, agencies, and the rules of who may see and do what.

These rules live here, once; the API and the CLI only authenticate and pass an `Actor` in:
- what an actor may do (`Actor.require`, `Actor.may_work`);
- which agency's records an actor sees (`Actor.sees_agency`) and which agency a list is limited to
  (`agency_scope`);
- the dossier or task an actor may look at (`visible_dossier`, `visible_task`): another agency's record is
  the same 404 as an unknown one, so its existence is not shown; staff of an agency that performs a step
  of a dossier (`performs_for`) read that dossier, and only that one, without changing it;
- staff are the accounts with a duty on dossiers: `receiver`, `supervisor`, `admin`, or a role named by a
  deployed procedure's lanes or candidate groups (`procedure_roles`); `citizen` and `analyst` never make an
  account staff, whatever a diagram names. Only staff read dossiers, tasks, history and personal data
  (`Actor.is_staff`, `Actor.require_staff`, used by all of the above);
- `PERMISSIONS` names what each operation needs; the API checks it before reading any input;
- a procedure belongs to the agency of its `agency` property (`Actor.require_owner`).
docs/security.md lists each rule with the test that proves it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from .errors import Conflict, InvalidInput, NotFound, PermissionDenied
from .models import Dossier, ProcedureRole, Task, User

STAFF_ROLES = {"receiver", "analyst", "supervisor", "admin"}  # the built-in roles (`motcua users add`)
#: Roles that make an account staff without any procedure naming them.
DUTY_ROLES = frozenset({"receiver", "supervisor", "admin"})
#: The states of a task row that is an agency's step (a payment or supplement wait is "waiting"/"waited").
STEP_STATES = ("ready", "completed", "cancelled")
#: Roles that never make an account staff, even when a diagram names them as a lane.
NEVER_STAFF = frozenset({"citizen", "analyst"})
_hasher = PasswordHasher()
#: argon2 computations at once in a process. Each holds the hasher's memory cost (argon2-cffi's default
#: profile, RFC 9106's second recommendation: 64 MiB) while it runs, so sign-ins side by side added 64 MiB each
#: to an API process: its 8 server threads, 512 MiB, and wrong passwords from many addresses pass the limits
#: (each has free failures). Past this bound a sign-in waits its turn, some 50-100 ms of CPU each
#: (docs/security.md, "Sign-in").
HASHES_AT_ONCE = 2
_hashing = threading.BoundedSemaphore(HASHES_AT_ONCE)
USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,80}$")  # also what a BPMN camunda:assignee may name
_ROLE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


@dataclass(frozen=True)
class Actor:
    username: str
    roles: frozenset
    agency: str
    full_name: str | None = None
    #: True when one of the roles is named by a deployed procedure (`load_actor` asks the database);
    #: None: decided by `DUTY_ROLES` alone.
    lane_staff: bool | None = None
    #: The user's token generation when loaded (tokens carry it; see `revoke_tokens`).
    generation: int = 0

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_supervisor(self) -> bool:
        return "supervisor" in self.roles or self.is_admin

    @property
    def is_staff(self) -> bool:
        """An account with a duty on dossiers (see the module docstring)."""
        return bool(self.roles & DUTY_ROLES) or bool(self.lane_staff)

    def sees_agency(self, agency: str) -> bool:
        """May read this agency's dossiers, tasks, history and applicants: staff of it, or a supervisor."""
        return self.is_staff and (self.is_supervisor or agency == self.agency)

    def require_staff(self) -> None:
        if not self.is_staff:
            raise PermissionDenied(
                "Chỉ cán bộ xử lý hồ sơ mới được xem hồ sơ, công việc và thông tin người nộp",
                "only staff with a duty on dossiers may read dossiers, tasks and applicants' data",
            )

    def may(self, permission: str) -> bool:
        """Whether the actor holds a permission of `PERMISSIONS` (an unknown name is never held)."""
        rule = PERMISSIONS.get(permission)
        return bool(rule and rule(self))

    def require_permission(self, permission: str) -> None:
        if not self.may(permission):
            vi, en = PERMISSION_NAMES.get(permission, (permission, permission))
            raise PermissionDenied(f"Thao tác này dành cho {vi}", f"this operation is for {en}")

    def require_owner(self, agency: str | None) -> None:
        """Deploying a procedure: an analyst for their own agency's variant, an admin for any (incl. none)."""
        if self.is_admin:
            return
        self.require("analyst")
        if agency != self.agency:
            where = agency or "toàn tỉnh / province-wide"
            raise PermissionDenied(
                f"Chuyên viên chỉ triển khai thủ tục của cơ quan mình ({self.agency}), không phải của {where}",
                f"an analyst deploys only their own agency's procedures ({self.agency}), not {where}",
            )

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

#: What each operation needs, by name; the API declares one per operation (`api.auth.requires`) and checks
#: it before parsing any input; the engine's services check the same rules again where they act.
PERMISSIONS = {
    "signed_in": lambda a: True,
    "staff": lambda a: a.is_staff,
    "procedures": lambda a: a.is_staff or "analyst" in a.roles,
    "deploy": lambda a: a.is_admin or "analyst" in a.roles,
    "receive": lambda a: a.is_admin or "receiver" in a.roles,
    "supervise": lambda a: a.is_staff,  # supervisors see every agency, other staff their own
    "reports": lambda a: a.is_supervisor,
    "admin": lambda a: a.is_admin,
}
PERMISSION_NAMES = {
    "signed_in": ("người đã đăng nhập", "signed-in users"),
    "staff": ("cán bộ xử lý hồ sơ", "staff with a duty on dossiers"),
    "procedures": ("cán bộ và chuyên viên quy trình", "staff and analysts"),
    "deploy": ("chuyên viên quy trình hoặc quản trị", "analysts and administrators"),
    "receive": ("cán bộ tiếp nhận", "receivers"),
    "supervise": ("cán bộ xử lý hồ sơ", "staff with a duty on dossiers"),
    "reports": ("lãnh đạo giám sát", "supervisors"),
    "admin": ("quản trị viên", "administrators"),
}


def agency_scope(actor: Actor, agency: str | None) -> str | None:
    """The agency a list is limited to: the one asked for (or None: every agency) for supervisors; the
    actor's own agency for other staff, who get PermissionDenied when they ask for another one; nothing for
    an account that is not staff."""
    actor.require_staff()
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


def in_scope(stmt, model, agency: str | None, procedure_code: str | None):
    """`stmt` limited to the scope a list was given (`agency_scope`'s agency, None: every agency) and, when
    asked, one procedure; `model` is the table whose `agency` and `procedure_code` columns decide."""
    if agency is not None:
        stmt = stmt.where(model.agency == agency)
    if procedure_code:
        stmt = stmt.where(model.procedure_code == procedure_code)
    return stmt


def visible_dossier(session, actor: Actor, code: str, lock: bool = False, change: bool = False) -> Dossier:
    """The dossier with this code if the actor may see it: staff of its (receiving) agency, supervisors of
    every agency, and staff of a **performing agency**, one that holds or held a step of it (an
    inter-agency procedure, docs/security.md "Performing agencies"). An unknown code and a dossier the actor
    may not see are the same 404; an account that is not staff gets 403. A performing agency reads the
    dossier only: with `change` (the caller is about to change the dossier itself) its staff get 403."""
    actor.require_staff()
    d = None
    if isinstance(code, str) and 0 < len(code) <= 64:
        stmt = select(Dossier).where(Dossier.code == code)
        d = session.scalars(stmt.with_for_update() if lock else stmt).first()
    if d is not None and actor.sees_agency(d.agency):
        return d
    if d is not None and performs_for(session, actor, d.id):
        if change:
            raise PermissionDenied(
                "Cơ quan thực hiện một bước chỉ được xem hồ sơ; thao tác này dành cho cơ quan tiếp nhận",
                "an agency performing a step may only read the dossier; this is for the receiving agency",
            )
        return d
    raise NotFound(f"Không tìm thấy hồ sơ '{code}'", f"dossier '{code}' not found")


def performs_for(session, actor: Actor, dossier_id: int) -> bool:
    """Whether the actor's agency holds or held a step of this dossier (a task row of that agency, ready,
    completed or cancelled; a payment or supplement wait is nobody's step). One lookup among the dossier's
    few task rows (`ix_tasks_dossier_id`)."""
    if not actor.is_staff:
        return False
    found = session.scalar(
        select(Task.id)
        .where(Task.dossier_id == dossier_id, Task.agency == actor.agency, Task.state.in_(STEP_STATES))
        .limit(1)
    )
    return found is not None


def visible_task(session, actor: Actor, task_id: str) -> Task:
    """The task with this id if the actor may see it; else 404 (403 for an account that is not staff), as for
    `visible_dossier`."""
    actor.require_staff()
    task = session.get(Task, task_id) if isinstance(task_id, str) and 0 < len(task_id) <= 36 else None
    if task is None or not actor.sees_agency(task.agency):
        raise task_not_found()
    return task


def task_not_found() -> NotFound:
    return NotFound("Không tìm thấy công việc", "task not found")


def hash_password(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> None:
    """argon2's check (raises VerificationError or InvalidHashError), at most `HASHES_AT_ONCE` at a time."""
    with _hashing:
        _hasher.verify(password_hash, password)


def _check_password(password) -> None:
    if not isinstance(password, str) or len(password) < 8:
        raise InvalidInput(
            "Mật khẩu phải có ít nhất 8 ký tự",
            "password must have at least 8 characters",
            {"fields": {"password": "≥ 8"}},
        )
    if len(password) > 1024:
        raise InvalidInput("Mật khẩu quá dài", "password is too long", {"fields": {"password": "≤ 1024"}})


def _user(session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username).with_for_update()).first()
    if user is None:
        raise NotFound(f"Không có người dùng '{username}'", f"no user '{username}'")
    return user


def revoke_tokens(user: User) -> None:
    """Every token issued to this user so far stops working (tokens carry the generation they were issued at)."""
    user.token_generation = (user.token_generation or 0) + 1


def set_password(session, username: str, new_password: str, current_password: str | None = None) -> User:
    """Change a password (with `current_password`, it must match: a user changing their own) and revoke
    every token issued before."""
    _check_password(new_password)
    user = _user(session, username)
    if current_password is not None:
        try:
            _verify(user.password_hash, current_password)
        except (VerificationError, InvalidHashError):
            raise PermissionDenied("Mật khẩu hiện tại không đúng", "the current password is wrong") from None
    user.password_hash = hash_password(new_password)
    revoke_tokens(user)
    session.flush()
    return user


def set_active(session, username: str, active: bool) -> User:
    """Disable (or enable again) an account; disabling revokes its tokens."""
    user = _user(session, username)
    if not active:
        revoke_tokens(user)
    user.active = active
    session.flush()
    return user


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
    if not USERNAME.match(username or ""):
        raise InvalidInput(
            "Tên đăng nhập chỉ gồm chữ, số, . _ - (2–80 ký tự)", "username: letters, digits, . _ - (2–80 characters)"
        )
    _check_password(password)
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
        hash_password("timing-equaliser")
        raise bad
    try:
        _verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise bad from None
    return actor_of(user, session)


def lane_staff(session, roles) -> bool:
    """Whether a deployed procedure names one of these roles (one indexed lookup in `procedure_roles`)."""
    candidates = sorted(set(roles or ()) - NEVER_STAFF - DUTY_ROLES)
    if not candidates:
        return False
    return session.scalar(select(ProcedureRole.role).where(ProcedureRole.role.in_(candidates)).limit(1)) is not None


def actor_of(user: User, session=None) -> Actor:
    """The actor of a user row; with a session, whether a procedure's lane makes them staff is looked up."""
    roles = frozenset(user.roles or ())
    staff = lane_staff(session, roles) if session is not None else None
    return Actor(user.username, roles, user.agency, user.full_name, staff, user.token_generation or 0)


def load_actor(session, username: str, generation: int | None = None) -> Actor:
    """The active user's current actor; NotFound if absent, disabled, or (given a token's `generation`)
    their tokens were revoked since (a changed password or a disabled account)."""
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None or not user.active:
        raise NotFound("Không tìm thấy người dùng", "user not found")
    if generation is not None and generation != (user.token_generation or 0):
        raise NotFound("Token đã bị thu hồi", "the token was revoked")
    return actor_of(user, session)
