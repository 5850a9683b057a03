"""`motcua calendar list|set|delete`: the operator's side of the working calendar (cli/calendar.py over
engine/calendar_admin.py), on the real database."""

from __future__ import annotations

import os

from click.testing import CliRunner

from cli.main import main as cli


def test_calendar_set_list_delete(tmp_path, empty_database):
    env = {**os.environ, "DATABASE_URL": empty_database, "MOTCUA_VAR": str(tmp_path / "var")}
    runner = CliRunner()

    r = runner.invoke(cli, ["calendar", "set", "2026-10-10", "--working", "--name", "Làm bù thứ Bảy"], env=env)
    assert r.exit_code == 0, r.output
    assert "2026-10-10 (Thứ Bảy): ngày làm việc / working day — Làm bù thứ Bảy" in r.output

    r = runner.invoke(cli, ["calendar", "list", "--year", "2026"], env=env)
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("2026-10-10"))
    assert "làm việc / working" in line and "[override]" in line
    assert "Quốc khánh" in r.output  # the seeded national holidays are listed too

    r = runner.invoke(cli, ["calendar", "delete", "2026-10-10"], env=env)
    assert r.exit_code == 0 and "2026-10-10" in r.output
    r = runner.invoke(cli, ["calendar", "list", "--year", "2026"], env=env)
    assert "\n2026-10-10" not in "\n" + r.output

    # a second delete, a bad date and a bad year are refused, naming the problem, with status 2
    r = runner.invoke(cli, ["calendar", "delete", "2026-10-10"], env=env)
    assert r.exit_code == 2 and "no administrator's override on 2026-10-10" in r.output
    r = runner.invoke(cli, ["calendar", "set", "2026-02-30", "--holiday", "--name", "x"], env=env)
    assert r.exit_code == 2 and "invalid date '2026-02-30'" in r.output
    r = runner.invoke(cli, ["calendar", "list", "--year", "1800"], env=env)
    assert r.exit_code == 2 and "the year must be 2000-2100" in r.output


def test_agencies_import(tmp_path, empty_database):
    """`motcua agencies import FILE`: every row checked first (a bad one names its line, nothing written),
    then all of them in one transaction behind a progress bar."""
    env = {**os.environ, "DATABASE_URL": empty_database, "MOTCUA_VAR": str(tmp_path / "var")}
    runner = CliRunner()
    good = tmp_path / "co_quan.csv"
    good.write_text(
        "code;name;office_hours\n"
        "000.00.00.H56;UBND tỉnh Khánh Hòa;07:30-11:30 13:30-17:30\n"
        "000.00.14.H56;UBND huyện Diên Khánh;\n"
        "000.31.14.H56;UBND xã Diên An;\n",
        encoding="utf-8",
    )
    bad = tmp_path / "sai.csv"
    bad.write_text("code,name\n000.00.14.H56,Huyện\n000.31.00.H56,Xã không có huyện\n", encoding="utf-8")

    r = runner.invoke(cli, ["agencies", "import", str(bad)], env=env)
    assert r.exit_code == 2 and "line 3" in r.output and "000.31.00.H56" in r.output

    r = runner.invoke(cli, ["agencies", "import", str(good)], env=env)
    assert r.exit_code == 0, r.output
    assert "3 cơ quan / agencies: 3 mới / created, 0 cập nhật / updated" in r.output

    r = runner.invoke(cli, ["agencies", "import", str(good)], env=env)
    assert "0 mới / created, 3 cập nhật / updated" in r.output

    from engine import agencies, calendar_admin
    from engine.auth import Actor
    from engine.db import Database

    # the commune's calendar, listed with the days it inherits
    admin = Actor("cli", frozenset({"admin"}), "*", "cli")
    body = {"name": "UBND huyện Diên Khánh", "days": [{"date": "2026-03-03", "working": False, "name": "Lễ hội"}]}
    agencies.put_agency(Database(empty_database), admin, "000.00.14.H56", body)
    r = runner.invoke(cli, ["calendar", "list", "--year", "2026", "--agency", "000.31.14.H56"], env=env)
    line = next(x for x in r.output.splitlines() if x.startswith("2026-03-03"))
    assert "Lễ hội" in line and "[agency:000.00.14.H56]" in line

    # the commune works by its province's hours: the calendar's due time says so
    with Database(empty_database).read() as s:
        due = calendar_admin.compute_due(s, "2026-03-02T16:30:00+07:00", "1 working hour", agency="000.31.14.H56")
    assert due["due_at"] == "2026-03-02T17:30:00+07:00"
