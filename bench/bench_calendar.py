"""Speed of due-date computation: 100,000 `WorkCalendar.due_at` calls over 2025-2027.

Run: .venv/bin/python bench/bench_calendar.py [count]
Receipt times are random instants (office hours, nights, weekends, holidays), deadlines a mix of
working days, working hours and calendar days, half of them with a 15:00 cut-off. The calendar is
warmed once (holidays.VN for the years used) before timing, as it is in a running server.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.calendar import VN_TZ, WorkCalendar, parse_deadline  # noqa: E402

DEADLINES = [
    "1 working day",
    "3 working days",
    "7 working days",
    "15 ngày làm việc",
    "8 giờ làm việc",
    "4 working hours",
    "0.5 working days",
    "30 days",
    "10 ngày",
    "0 days",
    "45 working days",
]


def main(count: int = 100_000) -> None:
    rng = random.Random(2026)
    first = datetime(2025, 1, 1, tzinfo=VN_TZ)
    span_minutes = 3 * 365 * 24 * 60
    cases = [
        (first + timedelta(minutes=rng.randrange(span_minutes)), rng.choice(DEADLINES), rng.choice((None, "15:00")))
        for _ in range(count)
    ]
    cal = WorkCalendar()
    cal.due_at(first, "1 working day")
    cal.due_at(first + timedelta(days=3 * 365), "45 working days")

    t0 = time.perf_counter()
    for start, deadline, cutoff in cases:
        cal.due_at(start, deadline, cutoff)
    elapsed = time.perf_counter() - t0

    parsed = [(s, parse_deadline(d), c) for s, d, c in cases]
    t1 = time.perf_counter()
    for start, deadline, cutoff in parsed:
        cal.due_at(start, deadline, cutoff)
    elapsed_parsed = time.perf_counter() - t1

    cold = WorkCalendar({})
    t2 = time.perf_counter()
    cold.due_at(first, "3 working days")
    elapsed_cold = time.perf_counter() - t2

    print(f"{count:,} due_at (deadline as text):   {elapsed:.3f} s, {count / elapsed:,.0f}/s")
    print(f"{count:,} due_at (Deadline objects): {elapsed_parsed:.3f} s, {count / elapsed_parsed:,.0f}/s")
    print(f"first computation on a new calendar (years built, holidays cached): {elapsed_cold * 1000:.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
