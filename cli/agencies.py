"""`motcua agencies import FILE`: agencies and their office hours from a CSV (engine/agencies.py).

The file has a header `code,name,office_hours` (office_hours optional, blank: the parent's), UTF-8, comma or
semicolon separated. Every row is checked first: a bad row stops the import naming its line, and nothing is
written. The operator at the server's shell acts as an administrator; `--actor` names them in the audit event.
"""

from __future__ import annotations

import click

from engine import agencies
from engine.auth import Actor
from engine.errors import InvalidInput

from .common import fail, migrated_db


@click.group("agencies")
def agencies_cli():
    """Cơ quan và lịch làm việc / agencies and their calendars."""


@agencies_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--actor", default="cli", help="Ghi nhận người nhập / recorded as the importer")
def agencies_import(file, actor):
    """Nhập cơ quan từ tệp CSV / import agencies from a CSV file (code,name,office_hours)."""
    try:
        with open(file, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise click.BadParameter("tệp không phải UTF-8 / the file is not UTF-8") from None
    try:
        rows = agencies.read_csv(text)
    except InvalidInput as exc:
        fail(exc)
    operator = Actor(actor, frozenset({"admin"}), "*", actor)
    with click.progressbar(length=len(rows), label="Nhập cơ quan / importing agencies") as bar:

        def progress(items):
            for item in items:
                yield item
                bar.update(1)

        out = agencies.import_agencies(migrated_db(), operator, rows, progress)
    click.echo(
        f"✓ {out['total']} cơ quan / agencies: {out['created']} mới / created, {out['updated']} cập nhật / updated"
    )
