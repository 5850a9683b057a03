"""The seeded national calendar as reviewed data: engine/data/holidays_vn.csv (docs/deadlines.md, "Holidays
as reviewed data").

For the years the file covers (2024-2030) the working calendar reads its days off and make-up working days
from the file, not from the `holidays` package, so that upgrading the package never moves a due date
silently. The file was generated once from the package (`python -m engine.holiday_seed --write`, which
keeps the government's swaps and every reference already in the file) and checked by hand against the
government's yearly announcements; each compensatory day and each swap names its source in `reference`.

`disagreements()` compares the file with the installed package and names each day on which they differ
(tests/test_holiday_seed.py fails on any): after a package upgrade, read the new days against the
announcements, then correct the file (or regenerate it and review the diff).

Columns: `date` (YYYY-MM-DD), `working` (1: a make-up working day, 0: a day off), `name` (Vietnamese),
`kind` (`holiday` a public holiday of the Labour Code; `observed` a compensatory day off or a Tết day moved
off a weekend; `swap_off` a working day given off in a swap; `makeup` the Saturday worked for it),
`in_package` (1 when the `holidays` package lists the day as a day off), `reference` (the legal basis or
the announcement). Lines starting with `#` are comments.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

import holidays as _holidays

FILE = Path(__file__).parent / "data" / "holidays_vn.csv"
FIRST_YEAR, LAST_YEAR = 2024, 2030
KINDS = ("holiday", "observed", "swap_off", "makeup")
COLUMNS = ("date", "working", "name", "kind", "in_package", "reference")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

LABOUR_CODE = "Bộ luật Lao động 2019, Điều 112"
OBSERVED = "Bộ luật Lao động 2019, Điều 111 khoản 3 (nghỉ bù khi ngày lễ trùng ngày nghỉ hằng tuần)"
# a day of a year whose announcement is not out yet (docs/deadlines.md, "Holidays as reviewed data")
ESTIMATED = (
    "Chưa công bố: chưa thấy thông báo của Chính phủ về lịch nghỉ năm này; ngày này là ước tính theo Bộ luật Lao "
    "động (gói holidays). Khi có thông báo: sửa dòng này và thêm ngày hoán đổi; trong khi chờ, quản trị viên ghi "
    "hoán đổi bằng ngày điều chỉnh (calendar_days)"
)


@dataclass(frozen=True)
class SeedDay:
    day: date
    working: bool
    name: str
    kind: str
    in_package: bool
    reference: str


def parse(text: str, where: str = "holidays_vn.csv") -> dict[date, SeedDay]:
    """The file's rows by day; ValueError naming the line on anything malformed."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"{where}: the header must be {','.join(COLUMNS)}")
    out: dict[date, SeedDay] = {}
    for row in reader:
        try:
            day = date.fromisoformat(row["date"])
            seed = SeedDay(
                day, row["working"] == "1", row["name"].strip(), row["kind"], row["in_package"] == "1", row["reference"]
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: bad row {row}: {exc}") from None
        if seed.kind not in KINDS or not seed.name or day in out or seed.working != (seed.kind == "makeup"):
            raise ValueError(f"{where}: bad row for {row['date']}: {row}")
        if seed.kind != "holiday" and not seed.reference.strip():
            raise ValueError(f"{where}: {row['date']} ({seed.kind}) names no source in 'reference'")
        out[day] = seed
    return out


@cache
def seed_days() -> dict[date, SeedDay]:
    """Every row of engine/data/holidays_vn.csv, read once per process."""
    return parse(FILE.read_text(encoding="utf-8"), FILE.name)


def covers(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR


def file_days_off(year: int) -> dict[date, str]:
    """The file's public holidays and compensatory days of `year` (the swaps are `file_swaps`)."""
    return {d: s.name for d, s in seed_days().items() if d.year == year and s.kind in ("holiday", "observed")}


def file_swaps() -> dict[date, tuple[bool, str]]:
    """The government's swaps in the file: {day: (working, name)} (a day off and the Saturday worked for it)."""
    return {d: (s.working, s.name) for d, s in seed_days().items() if s.kind in ("swap_off", "makeup")}


def package_days(year: int) -> dict[date, str]:
    """The installed `holidays` package's days off in Vietnam for `year`, names in Vietnamese."""
    hs = _holidays.country_holidays("VN", years=year, language="vi")
    return {d: name for d, name in sorted(hs.items()) if d.year == year}


def disagreements(years=range(FIRST_YEAR, LAST_YEAR + 1)) -> list[str]:
    """One sentence per day on which the installed package and the file disagree (empty: they agree)."""
    version = getattr(_holidays, "__version__", "?")
    out = []
    for year in years:
        pkg = package_days(year)
        ours = {d: s for d, s in seed_days().items() if d.year == year and s.in_package}
        for d in sorted(set(pkg) | set(ours)):
            wd = WEEKDAYS[d.weekday()]
            if d not in ours:
                out.append(
                    f"{d} ({wd}): holidays {version} makes it a day off ('{pkg[d]}'), engine/data/holidays_vn.csv "
                    "does not list it as one of the package's days: check the year's announcement, then add the day "
                    "(in_package=1) or leave it out with a reason"
                )
            elif d not in pkg:
                out.append(
                    f"{d} ({wd}): engine/data/holidays_vn.csv has '{ours[d].name}' from the package (in_package=1), "
                    f"holidays {version} no longer makes it a day off: check the year's announcement and correct the row"
                )
    return out


def _kind(name: str) -> str:
    if name.startswith("Ngày nghỉ (thay cho"):
        return "swap_off"
    if "(nghỉ bù" in name or name in ("29 Tết", "Mùng năm Tết Nguyên Đán", "Mùng sáu Tết Nguyên Đán"):
        return "observed"
    return "holiday"


def generate(existing: dict[date, SeedDay] | None = None) -> str:
    """The file's text from the installed package, keeping the rows and references already reviewed."""
    existing = existing or {}
    rows: dict[date, SeedDay] = {d: s for d, s in existing.items() if not s.in_package}  # the government's own
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        for d, name in package_days(year).items():
            old = existing.get(d)
            if old is not None:
                rows[d] = SeedDay(d, False, old.name, old.kind, True, old.reference)
                continue
            kind = _kind(name)
            ref = LABOUR_CODE if kind == "holiday" else OBSERVED
            if year >= 2027 and kind != "holiday":
                ref = ESTIMATED
            rows[d] = SeedDay(d, False, name, kind, True, ref)
    header = FILE.read_text(encoding="utf-8").split("\ndate,", 1)[0] if FILE.exists() else ""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for d in sorted(rows):
        s = rows[d]
        w.writerow([d.isoformat(), int(s.working), s.name, s.kind, int(s.in_package), s.reference])
    return (header + "\n" if header else "") + buf.getvalue()


def main(argv: list[str]) -> int:
    """`python -m engine.holiday_seed [--write]`: list the disagreements; --write regenerates the file."""
    if "--write" in argv:
        FILE.write_text(generate(seed_days() if FILE.exists() else None), encoding="utf-8")
        seed_days.cache_clear()
    problems = disagreements()
    for p in problems:
        print(p)
    print(f"{len(problems)} ngày khác nhau / days differ")
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
