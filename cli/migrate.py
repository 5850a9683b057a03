"""`motcua migrate CODE --to VERSION [--dry-run]`: move the running dossiers of a procedure to another of its
versions (engine/migration.py; docs/bpmn-conventions.md, "Migrating running dossiers").

The operator at the server's shell acts as an administrator; `--actor` names them in each audit event.
Page after page of at most 100 dossiers, each in its own transaction, with a progress bar; then one line per
dossier left alone (naming the elements the new version lacks) or changed meanwhile.
"""

from __future__ import annotations

import click

from engine.auth import Actor
from engine.dossiers import DossierService
from engine.errors import MotcuaError
from engine.migration import CONFLICTED, LEFT_ALONE, MIGRATED, WOULD_MIGRATE, migrate_page

from .common import fail, migrated_db, settings


@click.command("migrate")
@click.argument("code")
@click.option("--to", "to_version", type=int, required=True, help="phiên bản đích / the version to move to")
@click.option("--agency", default=None, help="biến thể của cơ quan / the agency's variant (default province-wide)")
@click.option("--dry-run", is_flag=True, help="chỉ kiểm tra, không thay đổi / check only, change nothing")
@click.option("--actor", default="cli", help="Ghi nhận người chuyển / recorded in the audit events")
def migrate_cli(code, to_version, agency, dry_run, actor):
    """Chuyển hồ sơ đang xử lý sang phiên bản khác / move running dossiers to another version."""
    service = DossierService(migrated_db(), settings())
    operator = Actor(actor, frozenset({"admin"}), "*", actor)
    items: list[dict] = []
    try:
        page = migrate_page(service, operator, code, to_version, dry_run=dry_run, agency=agency, limit=1)
        total = page["total"]
        with click.progressbar(length=total, label="Chuyển hồ sơ / migrating dossiers") as bar:
            items += page["items"]
            bar.update(len(page["items"]))
            while page["next_after"] is not None:
                page = migrate_page(
                    service, operator, code, to_version, dry_run=dry_run, agency=agency, after=page["next_after"]
                )
                items += page["items"]
                bar.update(len(page["items"]))
    except MotcuaError as exc:
        fail(exc)
    for item in items:
        if item["outcome"] == LEFT_ALONE and item.get("missing"):
            click.echo(
                f"– {item['code']}: giữ nguyên, phiên bản {to_version} không có {', '.join(item['missing'])}"
                f" / left alone, version {to_version} lacks {', '.join(item['missing'])}"
            )
        elif item["outcome"] == LEFT_ALONE:  # the new diagram cannot go on with this dossier's data
            click.echo(f"– {item['code']}: giữ nguyên / left alone: {item.get('error')}")
        elif item["outcome"] == CONFLICTED:
            click.echo(f"! {item['code']}: vừa thay đổi, chạy lại sau / changed meanwhile, run again")
    n = {k: sum(1 for i in items if i["outcome"] == k) for k in (MIGRATED, WOULD_MIGRATE, LEFT_ALONE, CONFLICTED)}
    moved = (
        f"{n[WOULD_MIGRATE]} sẽ chuyển / would migrate (thử / dry run)"
        if dry_run
        else f"{n[MIGRATED]} đã chuyển / migrated"
    )
    click.echo(
        f"✓ {code} → v{to_version}: {moved}, {n[LEFT_ALONE]} giữ nguyên / left alone,"
        f" {n[CONFLICTED]} xung đột / conflicted"
    )
