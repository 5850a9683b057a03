"""The demo accounts the README lists, so a new user can try every role at once after `make run`."""

from __future__ import annotations

from sqlalchemy import select

from .auth import add_user
from .models import User

DEMO_AGENCY = "000.31.14.H56"
DEMO_PASSWORD = "motcua-demo"

# username, roles, full name
DEMO_ACCOUNTS = [
    ("admin", ["admin"], "Quản trị hệ thống"),
    ("analyst", ["analyst"], "Chuyên viên phân tích quy trình"),
    ("supervisor", ["supervisor"], "Văn phòng UBND tỉnh (giám sát)"),
    ("tiepnhan", ["receiver"], "Cán bộ một cửa"),
    ("hotich", ["civil_status"], "Công chức tư pháp – hộ tịch"),
    ("chutich", ["chairman", "leader"], "Chủ tịch UBND xã"),
    ("congan", ["police_officer"], "Cán bộ công an xã"),
    ("truongcongan", ["police_chief"], "Trưởng công an xã"),
    ("chuyenvien", ["specialist"], "Chuyên viên quản lý đô thị"),
]


def create_demo_accounts(db, agency: str = DEMO_AGENCY, password: str = DEMO_PASSWORD) -> list[str]:
    lines = []
    with db.uow() as s:
        existing = set(s.scalars(select(User.username)))
        for username, roles, name in DEMO_ACCOUNTS:
            if username in existing:
                lines.append(f"= {username} đã có / exists")
                continue
            add_user(s, username, password, roles, agency, name)
            lines.append(f"+ {username} / {password}  ({', '.join(roles)}) @ {agency}")
    return lines
