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
