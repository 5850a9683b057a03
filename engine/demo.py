"""The demo agencies and accounts the README lists, so a new user can try every role at once after `make run`.

The agencies come first: a procedure whose lane names a performing agency deploys only once that agency is
registered (docs/bpmn-conventions.md, "Inter-agency procedures"), and the inter-agency sample in bpmn/ names
the commune police and the social insurance: bpmn/agencies.csv lists the agencies the samples name."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from .agencies import import_agencies, read_csv
from .auth import Actor, add_user
from .models import Agency, User

DEMO_AGENCY = "000.31.14.H56"
DEMO_POLICE = "000.05.14.H56"
DEMO_INSURANCE = "000.00.30.H56"

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

# username, roles, full name, agency: the staff of the other agencies of the inter-agency sample
DEMO_OTHER_AGENCIES = [
    ("conganxa", ["police_officer"], "Cán bộ đăng ký cư trú, Công an xã", DEMO_POLICE),
    ("baohiem", ["insurance_officer"], "Cán bộ cấp thẻ BHYT, Bảo hiểm xã hội", DEMO_INSURANCE),
]


def create_demo_agencies(db, path: Path) -> list[str]:
    """Register the agencies of the CSV `path` that are not registered yet (existing ones are left as they are)."""
    rows = read_csv(path.read_text(encoding="utf-8"))
    with db.read() as s:
        existing = set(s.scalars(select(Agency.code).where(Agency.code.in_([r["code"] for r in rows]))))
    new = [r for r in rows if r["code"] not in existing]
    if new:
        import_agencies(db, Actor("demo", frozenset({"admin"}), "*", "demo"), new)
    return [f"= {r['code']} đã có / exists" if r["code"] in existing else f"+ {r['code']} {r['name']}" for r in rows]


def create_demo_accounts(
    db, agencies_csv: Path | None = None, agency: str = DEMO_AGENCY, password: str = DEMO_PASSWORD
) -> list[str]:
    """The demo accounts, after the agencies of `agencies_csv` (bpmn/agencies.csv) when given."""
    lines = create_demo_agencies(db, agencies_csv) if agencies_csv is not None else []
    accounts = [(u, r, n, agency) for u, r, n in DEMO_ACCOUNTS] + DEMO_OTHER_AGENCIES
    with db.uow() as s:
        existing = set(s.scalars(select(User.username)))
        for username, roles, name, at in accounts:
            if username in existing:
                lines.append(f"= {username} đã có / exists")
                continue
            add_user(s, username, password, roles, at, name)
            lines.append(f"+ {username} / {password}  ({', '.join(roles)}) @ {at}")
    return lines
