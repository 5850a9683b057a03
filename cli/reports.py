"""`motcua reports rebuild`: recompute the period report's aggregates from the dossiers (engine/report_counts.py;
docs/reports.md, "Aggregates"), with a progress bar. One transaction: on PostgreSQL the changes made meanwhile
wait for it and then add their own difference, so nothing is lost."""

from __future__ import annotations

import click

from engine import report_counts

from .common import migrated_db


@click.group("reports")
def reports_cli():
    """Báo cáo định kỳ / the period report."""


@reports_cli.command("rebuild")
def reports_rebuild():
    """Tính lại số liệu tổng hợp từ hồ sơ / recompute the report's aggregates from the dossiers."""
    db = migrated_db()
    with click.progressbar(length=1, label="Tổng hợp hồ sơ / reading dossiers") as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        with db.uow() as s:
            n = report_counts.rebuild(s, progress=progress)
    click.echo(f"Đã tính lại từ {n:,} hồ sơ / rebuilt from {n:,} dossiers")
