"""Monitor and report speed on a generated database (bench/generate.py), against the targets:

* overdue page (one page of overdue dossiers and steps, all agencies): p95 < 100 ms over 100 runs;
* overdue counts (by agency and procedure, overdue and due within 24 h): p95 < 200 ms over 100 runs;
* a province's monthly summary (one month, all agencies and procedures): < 1 s, the 12 months < 2 s; each read
  from the aggregates (engine/report_counts.py) and, as the baseline of the same run, recomputed from the
  dossier rows (`summary(..., from_dossiers=True)`, the computation before the aggregates): the ratio is
  printed and the two reports must agree.

    .venv/bin/python bench/bench_reports.py [--url URL] [--runs 100] [--reports-only]

URL defaults to $DATABASE_URL, else var/bench/reports.db. The database is opened through
`engine.db.Database`, as the server does. The month is the last full month before the data's newest
receipt, and an older month is measured too (more dossiers closed after it, so a wider scan).
Each line gives wall-clock p50/p95/max and, in brackets, the CPU time of this process (on SQLite that is
the query's own cost, whatever else the machine is doing; on PostgreSQL the server's share is not in it).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from engine.auth import Actor  # noqa: E402
from engine.calendar import VN_TZ, WorkCalendar  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.models import Dossier, Task  # noqa: E402
from engine.monitor import overdue, overdue_counts, overdue_page  # noqa: E402
from engine.reports import summary, to_csv, to_xlsx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SUPERVISOR = Actor("bench", frozenset({"supervisor"}), "000.00.00.H56")


def p95(xs):
    xs = sorted(xs)
    return xs[max(0, int(round(0.95 * len(xs))) - 1)]


class Timings(list):
    """Wall-clock milliseconds of each run, with this process's CPU milliseconds in `.cpu`."""

    cpu: list


def timed(fn, runs):
    out = Timings()
    out.cpu = []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
        out.cpu.append((time.process_time() - c0) * 1000)
    return out


def line(name, ms, target=None):
    verdict = ""
    if target is not None:
        verdict = f"  target < {target:,.0f} ms: {'OK' if p95(ms) < target else 'MISSED'}"
    print(
        f"  {name:<52} p50 {statistics.median(ms):8.1f} ms  p95 {p95(ms):8.1f} ms  max {max(ms):8.1f} ms"
        f"  (cpu here p50 {statistics.median(ms.cpu):7.1f} ms){verdict}"
    )
    return p95(ms) < target if target is not None else True


def month_before(d: date) -> tuple[date, date]:
    last = d.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--url", default=os.environ.get("DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'bench' / 'reports.db'}"
    )
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--reports-only", action="store_true", help="skip the monitor")
    ap.add_argument(
        "--baseline",
        choices=("all", "months", "none"),
        default="all",
        help="which reports to recompute from the dossiers too (the 12 months' takes minutes at 10,000,000)",
    )
    args = ap.parse_args(argv)
    db = Database(args.url)
    cal = WorkCalendar()
    rng = random.Random(7)
    with db.read() as s:
        n = s.scalar(select(func.count()).select_from(Dossier))
        newest = s.scalar(select(func.max(Dossier.received_at)))
        agencies = [a for (a,) in s.execute(select(Dossier.agency).distinct())]
        ready = s.scalar(select(func.count()).select_from(Task).where(Task.state == "ready"))
        # the monitor's counts only when it is measured (--reports-only: a database without its tables will do)
        c = None if args.reports_only else overdue_counts(s, SUPERVISOR)["totals"]
    if not n:
        sys.exit("no dossiers: run bench/generate.py first")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{db.engine.url.render_as_string(hide_password=True)}: {n:,} dossiers, {ready:,} ready steps, "
        + (f"{c['overdue_dossiers']:,} overdue dossiers, {c['overdue_tasks']:,} overdue steps, " if c else "")
        + f"{len(agencies)} agencies; {os.cpu_count()} CPUs, load average {load:.1f}"
    )
    ok = True

    def run(fn):
        with db.read() as s:
            return fn(s)

    if not args.reports_only:
        ok &= monitor(run, cal, rng, agencies, args.runs)
    ok &= report(run, cal, rng, agencies, newest, args.runs, args.baseline)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at the end {load:.1f}; " + ("all targets met" if ok else "SOME TARGETS MISSED"))
    db.dispose()
    return 0 if ok else 1


def monitor(run, cal, rng, agencies, runs) -> bool:
    ok = True
    print("Monitor")
    run(lambda s: overdue_page(s, SUPERVISOR, cal))  # warm
    ok &= line(
        "overdue page 1 (20 rows, all agencies)",
        timed(lambda: run(lambda s: overdue_page(s, SUPERVISOR, cal, per_page=20)), runs),
        100,
    )
    ok &= line(
        "overdue random page 1-10 (100 rows, all agencies)",
        timed(lambda: run(lambda s: overdue_page(s, SUPERVISOR, cal, page=rng.randint(1, 10), per_page=100)), runs),
        100,
    )
    ok &= line(
        "overdue page 1 (20 rows, one random agency)",
        timed(lambda: run(lambda s: overdue_page(s, SUPERVISOR, cal, agency=rng.choice(agencies))), runs),
        100,
    )
    ok &= line("counts (all agencies)", timed(lambda: run(lambda s: overdue_counts(s, SUPERVISOR)), runs), 200)
    ok &= line(
        "counts (one random agency)",
        timed(lambda: run(lambda s: overdue_counts(s, SUPERVISOR, agency=rng.choice(agencies))), runs),
        200,
    )
    line(
        "page + counts (GET /monitor/overdue, all agencies)",
        timed(lambda: run(lambda s: overdue(s, SUPERVISOR, cal)), runs),
    )

    return ok


def _same(a: dict, b: dict) -> bool:
    """Two reports agree: every figure equal, the processing-time means within 0.011 h (summed in another order)."""
    for x, y in zip(a["rows"] + [a["totals"]], b["rows"] + [b["totals"]], strict=False):
        hx, hy = x.get("avg_processing_hours"), y.get("avg_processing_hours")
        if (hx is None) != (hy is None) or (hx is not None and abs(hx - hy) > 0.011):
            return False
        if dict(x, avg_processing_hours=None) != dict(y, avg_processing_hours=None):
            return False
    return len(a["rows"]) == len(b["rows"])


def report(run, cal, rng, agencies, newest, runs, baseline="all") -> bool:
    ok = True
    print("Report (new: the aggregates; old: recomputed from the dossiers, the same run)")
    last_day = newest.astimezone(VN_TZ).date()
    months = [month_before(last_day)]
    months.append(month_before(months[0][0] - timedelta(days=150)))
    year = (last_day - timedelta(days=365), last_day)
    reps = max(3, min(10, runs // 10))
    periods = [(f"{m[0]:%m/%Y}", m, 1000) for m in months] + [("12 months", year, 2000)]
    for label, (first, last), target in periods:
        new = run(lambda s: summary(s, first, last, calendar=cal))
        t_new = timed(lambda: run(lambda s: summary(s, first, last, calendar=cal)), reps)
        ok &= line(f"summary {label}, all agencies ({len(new['rows'])} rows), new", t_new, target)
        if baseline == "none" or (baseline == "months" and label == "12 months"):
            continue
        old = None

        def recompute(s):
            nonlocal old
            old = summary(s, first, last, calendar=cal, from_dossiers=True)

        t_old = timed(lambda: run(recompute), 1 if label == "12 months" else 2)
        line(f"summary {label}, all agencies, old", t_old)
        agree = _same(new, old)
        ok &= agree
        print(
            f"    old / new = {statistics.median(t_old) / statistics.median(t_new):,.0f}x; "
            f"the two reports {'agree' if agree else 'DIFFER'}"
        )
        t = new["totals"]
        print(
            f"    received {t['received']['total']:,}, carried over {t['carried_over']:,}, completed "
            f"{t['completed']['total']:,}, in process {t['in_process']['total']:,}, on-time rate {t['on_time_rate']} %"
        )
    first, last = months[0]
    line(
        f"summary {first:%m/%Y}, one random agency, new",
        timed(lambda: run(lambda s: summary(s, first, last, agency=rng.choice(agencies), calendar=cal)), reps),
    )
    rep = run(lambda s: summary(s, first, last, calendar=cal))
    line("CSV export of the monthly summary", timed(lambda: to_csv(rep), reps))
    line("XLSX export of the monthly summary", timed(lambda: to_xlsx(rep), reps))
    return ok


if __name__ == "__main__":
    sys.exit(main())
