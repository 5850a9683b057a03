"""`motcua calendar list|set|delete`: the working calendar's special days (engine/calendar_admin.py).

The operator at the server's shell acts as an administrator; `--actor` names them in the override's row.
"""

from __future__ import annotations

from datetime import datetime

import click

from engine import calendar_admin
from engine.auth import Actor
from engine.calendar import VN_TZ
from engine.errors import InvalidInput, NotFound

from .common import fail, migrated_db

INVALIDATE_NOTE = (
    "Áp dụng cho các thời hạn tính từ nay (tiến trình khác: trong 30 giây) / applies to deadlines "
    "computed from now on (other processes: within 30 s)"
)


def _operator(name: str) -> Actor:
    return Actor(name, frozenset({"admin"}), "*", name)


@click.group("calendar")
def calendar_cli():
    """Lịch làm việc / working calendar: ngày nghỉ, ngày làm bù / holidays and make-up working days."""


@calendar_cli.command("list")
@click.option("--year", type=int, default=lambda: datetime.now(VN_TZ).year, show_default="this year")
@click.option("--agency", default=None, help="Lịch của cơ quan này / this agency's calendar, e.g. 000.31.14.H56")
def calendar_list(year, agency):
    """Liệt kê ngày nghỉ và ngày làm bù của năm / list a year's special days."""
    database = migrated_db()
    try:
        with database.read() as s:
            days = calendar_admin.list_days(s, year, agency)
    except InvalidInput as exc:
        fail(exc)
    for d in days:
        kind = "làm việc / working" if d["working"] else "nghỉ / day off "
        click.echo(f"{d['date']}  {d['weekday']:<8}  {kind}  {d['name']}  [{d['source']}]")
    click.echo(f"{len(days)} ngày / days ({year})")


@calendar_cli.command("set")
@click.argument("day")
@click.option(
    "--working/--holiday",
    "working",
    required=True,
    help="--working: ngày làm bù / make-up working day; --holiday: ngày nghỉ thêm / extra day off",
)
@click.option("--name", required=True, help="Tên / name, e.g. 'Nghỉ bù Quốc khánh'")
@click.option("--actor", default="cli", help="Ghi nhận người sửa / recorded as the editor")
def calendar_set(day, working, name, actor):
    """Thêm/sửa một ngày / add or change an override (DATE as YYYY-MM-DD)."""
    try:
        out = calendar_admin.put_day(migrated_db(), _operator(actor), day, working, name)
    except InvalidInput as exc:
        fail(exc)
    kind = "ngày làm việc / working day" if out["working"] else "ngày nghỉ / day off"
    click.echo(f"✓ {out['date']} ({out['weekday']}): {kind} — {out['name']}")
    click.echo(INVALIDATE_NOTE)


@calendar_cli.command("delete")
@click.argument("day")
def calendar_delete(day):
    """Xoá điều chỉnh của một ngày / remove an override (DATE as YYYY-MM-DD)."""
    try:
        out = calendar_admin.remove_day(migrated_db(), _operator("cli"), day)
    except (InvalidInput, NotFound) as exc:
        fail(exc)
    click.echo(f"✓ Đã xoá / removed {out['date']}")
    click.echo(INVALIDATE_NOTE)
