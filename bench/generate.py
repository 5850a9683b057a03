"""Load a province's year of dossiers (default 1,000,000) for the monitor and report benchmarks.

    .venv/bin/python bench/generate.py [--url URL] [-n 1000000] [--reset] [--replicate-to 10000000]

URL defaults to $DATABASE_URL, else SQLite at var/bench/reports.db. The target must be a database of
its own: with --reset every motcua table in it is dropped and created again; without --reset the
generator refuses to write into a database that already holds dossiers.

The mix (seeded, reproducible for the same --seed and --now):
* ~50 agencies of uneven size and ~200 procedures (deadlines from same-day with a 15:00 cut-off to 30
  working days, some in calendar days); a fifth of the procedures are offered by several agencies
  (commune-level procedures), so there are several hundred (agency, procedure) pairs.
* received_at over the 12 months before --now (default: the current time), fewer on weekends and holidays
  (online only), in office hours for counter and postal dossiers; channels 45 % online, 50 % in person,
  5 % postal. due_at from the procedure's deadline by the working calendar.
* outcomes: 3 % refused at intake, 1.5 % withdrawn, 0.7 % stopped; the rest processed after a share of the
  deadline (most early, some on the due day, ~15 % late, 2.5 % stuck for months); 8 % with one supplement
  request (clock paused days, due_at moved by the paused working hours), 0.5 % with two; 30 % of late
  ones with an apology letter and a new date; results returned within 0-3 working days. Whatever is not
  done by --now is open: in process, received, newly registered, paused for a supplement, or waiting for
  payment; some are overdue.
* tasks: every open dossier has one ready step (with its own due time, claimed or not, candidate roles
  in task_roles); every other dossier has --history-tasks completed steps.

Rows are written in batches of --batch (10,000): SQLAlchemy Core executemany on SQLite, COPY on
PostgreSQL (psycopg); secondary indexes are dropped during the load and built afterwards; the period report's
aggregates are then rebuilt from the dossiers (engine/report_counts.py); then VACUUM ANALYZE on
PostgreSQL (as autovacuum would), and on SQLite only with --analyze (the server never analyzes SQLite).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click  # noqa: E402
from sqlalchemy import create_engine, event, func, insert, select, text  # noqa: E402

from engine import boardcounts, report_counts  # noqa: E402
from engine.calendar import VN_TZ, WorkCalendar, parse_cutoff, parse_deadline  # noqa: E402
from engine.models import Base, Dossier, Procedure, ProcedureVersion, Task, TaskRole  # noqa: E402
from engine.statuses import Status  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
UTC = UTC
DEADLINES = [
    ("0 days", "15:00", 6),
    ("1 working day", None, 6),
    ("3 working days", None, 10),
    ("5 working days", None, 14),
    ("7 working days", None, 14),
    ("10 working days", None, 14),
    ("15 working days", None, 14),
    ("20 working days", None, 8),
    ("30 working days", None, 6),
    ("10 days", None, 5),
    ("30 days", None, 3),
]
ROLES = ["chuyen_vien", "lanh_dao", "tiep_nhan", "tra_ket_qua", "ke_toan"]
STEP_TITLES = {
    "chuyen_vien": "Thẩm định hồ sơ",
    "lanh_dao": "Phê duyệt",
    "tiep_nhan": "Tiếp nhận",
    "tra_ket_qua": "Trả kết quả",
    "ke_toan": "Thu phí",
}
DOSSIER_COLS = [
    "id",
    "code",
    "procedure_version_id",
    "procedure_code",
    "agency",
    "status",
    "status_code",
    "channel",
    "applicant_name",
    "applicant_id_number",
    "applicant_phone",
    "applicant_email",
    "data",
    "received_at",
    "due_at",
    "original_due_at",
    "deadline_hours",
    "paused_at",
    "paused_hours",
    "supplement_count",
    "extended_at",
    "extension_reason",
    "processed_at",
    "returned_at",
    "finished",
    "finished_at",
    "next_timer_at",
    "reminded_at",
    "overdue_flagged_at",
    "created_by",
    "updated_at",
    "version",
]
TASK_COLS = [
    "id",
    "dossier_id",
    "dossier_code",
    "procedure_code",
    "agency",
    "spec_name",
    "title",
    "roles",
    "assignee",
    "form_key",
    "state",
    "claimed_by",
    "claimed_at",
    "created_at",
    "due_at",
    "completed_at",
    "completed_by",
]
ROLE_COLS = ["task_id", "role", "agency"]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"]
GIVEN = [
    "Văn An",
    "Thị Bình",
    "Minh Châu",
    "Quốc Dũng",
    "Thu Hà",
    "Đức Huy",
    "Ngọc Lan",
    "Văn Nam",
    "Thị Oanh",
    "Hữu Phúc",
    "Thanh Tâm",
    "Gia Bảo",
]


def default_url() -> str:
    env = os.environ.get("DATABASE_URL")
    if env:
        return env
    path = ROOT / "var" / "bench" / "reports.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def make_engine(url: str):
    if url.startswith("sqlite"):
        eng = create_engine(url)

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-262144")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        return eng
    return create_engine(url)


# --------------------------------------------------------------------------------------------------
# The world: agencies, procedures, offerings


class World:
    def __init__(self, rng: random.Random, n_agencies: int, n_procedures: int, cal: WorkCalendar):
        self.rng, self.cal = rng, cal
        self.agencies = [f"000.{(i // 20):02d}.{(i % 20) + 1:02d}.H56" for i in range(n_agencies)]
        agency_w = [1.0 / (1 + i) ** 0.6 for i in range(n_agencies)]
        codes = rng.sample(range(1000, 9999), n_procedures)
        dl_w = [w for _, _, w in DEADLINES]
        self.procedures = []  # (code, name, deadline, cutoff, owner agency)
        offerings = []  # (agency index, procedure index, weight)
        for j, c in enumerate(codes):
            dl, cut, _ = rng.choices(DEADLINES, weights=dl_w)[0]
            owner = rng.choices(range(n_agencies), weights=agency_w)[0]
            code = f"{rng.choice((1, 1, 2))}.00{c:04d}"
            self.procedures.append((code, f"Thủ tục hành chính số {j + 1} ({dl})", dl, cut, self.agencies[owner]))
            popularity = 1.0 / (1 + j) ** 0.9
            if rng.random() < 0.2:  # commune-level: offered by several agencies
                for a in rng.sample(range(n_agencies), rng.randint(3, 12)):
                    offerings.append((a, j, popularity * agency_w[a] * 3))
            else:
                offerings.append((owner, j, popularity * agency_w[owner] * 10))
        self.offerings = offerings
        self.offer_cum = list(accumulate(w for _, _, w in offerings))
        self.deadlines = [parse_deadline(p[2]) for p in self.procedures]
        self.cutoffs = [parse_cutoff(p[3]) for p in self.procedures]

    def pick(self):
        r = self.rng.random() * self.offer_cum[-1]
        a, j, _ = self.offerings[bisect.bisect_right(self.offer_cum, r)]
        return a, j


def receipt_times(rng: random.Random, n: int, now: datetime, cal: WorkCalendar) -> list:
    """n receipt instants over the 365 days before `now`, sorted, with the channel of each."""
    today = now.astimezone(VN_TZ).date()
    days = [today - timedelta(days=k) for k in range(365, -1, -1)]
    w = [(1.0 if cal.is_working_day(d) else 0.06) for d in days]
    cum = list(accumulate(w))
    out = []
    while len(out) < n:
        d = days[bisect.bisect_right(cum, rng.random() * cum[-1])]
        u = rng.random()
        channel = 2 if u < 0.45 else (1 if u < 0.95 else 3)
        if channel == 2 or not cal.is_working_day(d):
            channel = 2
            minute = int(rng.triangular(0, 24 * 60, 14 * 60))
        else:
            minute = rng.choice((rng.randint(7 * 60, 11 * 60 + 29), rng.randint(13 * 60 + 30, 16 * 60 + 59)))
        t = datetime(d.year, d.month, d.day, tzinfo=VN_TZ) + timedelta(minutes=minute, seconds=rng.randint(0, 59))
        if t < now:
            out.append((t.astimezone(UTC), channel))
    out.sort()
    return out


# --------------------------------------------------------------------------------------------------
# One dossier's life


def life(rng: random.Random, world: World, cal: WorkCalendar, now: datetime, received: datetime, j: int) -> dict:
    """Dates and status of one dossier as of `now`."""
    deadline, cutoff = world.deadlines[j], world.cutoffs[j]
    start = cal.clock_start(received, cutoff)
    due = cal.due_at(received, deadline, cutoff)
    dl_hours = max(1.0, cal.working_hours_between(start, due))
    f = dict(
        due_at=due,
        original_due_at=due,
        deadline_hours=deadline.hours,
        paused_at=None,
        paused_hours=0.0,
        supplement_count=0,
        extended_at=None,
        processed_at=None,
        returned_at=None,
        finished=False,
        finished_at=None,
        status=Status.IN_PROCESS,
    )
    u = rng.random()
    if u < 0.052:  # closed without a result
        if u < 0.03:
            status, at = Status.REFUSED, cal.add_working_hours(received, rng.uniform(0.05, 6))
        elif u < 0.045:
            status, at = Status.WITHDRAWN, cal.add_working_hours(start, rng.uniform(0.0, 1.3) * dl_hours)
        else:
            status, at = Status.STOPPED, cal.add_working_hours(start, rng.uniform(0.1, 1.5) * dl_hours)
        if at <= now:
            f.update(status=status, finished=True, finished_at=at)
            return f
    v = rng.random()
    if v < 0.55:
        r = rng.uniform(0.15, 0.8)
    elif v < 0.80:
        r = rng.uniform(0.8, 1.0)
    elif v < 0.92:
        r = rng.uniform(1.0, 1.6)
    elif v < 0.975:
        r = rng.uniform(1.6, 3.0)
    else:
        r = rng.uniform(3.0, 12.0)  # stuck
    work = r * dl_hours
    s = rng.random()
    n_supp = 2 if s < 0.005 else (1 if s < 0.085 else 0)
    t, done_work, paused = start, 0.0, 0.0
    for _k in range(n_supp):
        share = rng.uniform(0.1, 0.5) * (work - done_work)
        t_pause = cal.add_working_hours(t, share)
        done_work += share
        if t_pause > now:
            break
        resume = t_pause + timedelta(days=rng.uniform(1, 15))
        f["supplement_count"] += 1
        if resume > now:  # waiting for the applicant now: the clock stands still
            f.update(status=Status.SUPPLEMENT_REQUESTED, paused_at=t_pause, paused_hours=paused)
            return f
        ph = cal.working_hours_between(t_pause, resume)
        paused += ph
        left = cal.working_hours_between(t_pause, f["due_at"])
        if left > 0:
            f["due_at"] = cal.add_working_hours(resume, left)
        t = resume
    f["paused_hours"] = round(paused, 4)
    processed = cal.add_working_hours(t, max(0.0, work - done_work))
    if processed > f["due_at"] and rng.random() < 0.3:  # apology letter, new appointment date
        ext = f["due_at"] - timedelta(hours=rng.uniform(1, 20))
        if ext <= now:
            f["extended_at"] = max(ext, received)
            f["due_at"] = cal.add_working_hours(f["due_at"], rng.choice((8, 16, 24, 40)))
    if processed > now:  # still open
        age = (now - received).total_seconds() / 3600
        if age < 3 and rng.random() < 0.6:
            f["status"] = Status.NEW if rng.random() < 0.5 else Status.RECEIVED
        elif rng.random() < 0.02:
            f["status"] = Status.PAYMENT_REQUIRED
        return f
    f.update(processed_at=processed, status=Status.PROCESSED)
    returned = cal.add_working_hours(processed, rng.choice((0.2, 1, 4, 8, 16, 24)))
    if returned <= now and rng.random() < 0.97:
        f.update(returned_at=returned, status=Status.RETURNED, finished=True, finished_at=returned)
    return f


# --------------------------------------------------------------------------------------------------
# Writing


class Writer:
    def __init__(self, engine):
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"

    def write(self, table, cols, rows: list):
        if not rows:
            return
        if self.pg:
            raw = self.engine.raw_connection()
            try:
                conn = raw.driver_connection
                with conn.cursor() as cur:
                    with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as cp:
                        for r in rows:
                            cp.write_row(
                                [json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else v for v in r]
                            )
                conn.commit()
            finally:
                raw.close()
        else:
            with self.engine.begin() as conn:
                conn.execute(insert(table), [dict(zip(cols, r)) for r in rows])


def build_indexes(engine, tables, drop: bool):
    with engine.begin() as conn:
        for t in tables:
            for ix in sorted(t.indexes, key=lambda i: i.name):
                if drop:
                    ix.drop(conn, checkfirst=True)
                else:
                    ix.create(conn, checkfirst=True)


def aggregates(engine) -> None:
    """The period report's aggregates from the loaded dossiers (engine/report_counts.py, as `motcua reports
    rebuild` does): the rows were written behind the repository's back."""
    t0 = time.perf_counter()
    with click.progressbar(length=1, label="report aggregates", file=sys.stderr, show_pos=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        with engine.begin() as conn:
            n = report_counts.rebuild(conn, progress=progress)
    print(f"report aggregates from {n:,} dossiers: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def settle(engine) -> None:
    """PostgreSQL: VACUUM ANALYZE, as autovacuum does after a load: statistics for the planner, and the
    visibility map that lets the monitor's covering partial indexes answer without reading the table (a table
    never vacuumed reads every row's page even in an index-only scan)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))


def replicate(engine, target: int) -> None:
    """PostgreSQL: copy the generated dossiers (with their steps and roles) in SQL until there are `target`
    of them — `INSERT … SELECT` over `generate_series`, secondary indexes dropped meanwhile and built after.
    Copy k of dossier i is dossier i + k·M (M the generated count), code suffixed `.k`, the same times,
    statuses and agency: each month then holds k times the generated month, with the same mix."""
    heavy = [Dossier.__table__, Task.__table__, TaskRole.__table__]
    t0 = time.perf_counter()
    with engine.connect() as conn:
        m = conn.execute(text("SELECT max(id) FROM dossiers")).scalar() or 0
        have = conn.execute(text("SELECT count(*) FROM dossiers")).scalar() or 0
    if have != m or not m:
        sys.exit("--replicate-to needs a database freshly made by this generator (ids 1..n)")
    copies = -(-target // m) - 1
    if copies < 1:
        return
    print(f"replicating {m:,} dossiers {copies} times up to {target:,} ...", file=sys.stderr, flush=True)
    build_indexes(engine, heavy, drop=True)
    with engine.begin() as conn:
        boardcounts.uninstall(conn)  # counted once at the end (rebuild_board_counts)

    def cols(table, skip):
        return [c.name for c in table.columns if c.name not in skip]

    d_cols = cols(Dossier.__table__, {"id", "code"})
    t_cols = cols(Task.__table__, {"id", "dossier_id", "dossier_code"})
    new_id = "md5(t.id || ':' || k)::uuid::text"
    series = f"generate_series(1, {copies}) AS k"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO dossiers (id, code, {', '.join(d_cols)}) SELECT d.id + k * {m}, d.code || '.' || k, "
                f"{', '.join('d.' + c for c in d_cols)} FROM dossiers d, {series} WHERE d.id + k * {m} <= {target}"
            )
        )
        print(f"  dossiers {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        has_code = "dossier_code" in Task.__table__.columns
        conn.execute(
            text(
                f"INSERT INTO tasks (id, dossier_id, {'dossier_code, ' if has_code else ''}{', '.join(t_cols)}) "
                f"SELECT {new_id}, t.dossier_id + k * {m}, {'t.dossier_code || chr(46) || k, ' if has_code else ''}"
                f"{', '.join('t.' + c for c in t_cols)} FROM tasks t, {series} "
                f"WHERE t.dossier_id <= {m} AND t.dossier_id + k * {m} <= {target}"
            )
        )
        print(f"  tasks {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        conn.execute(
            text(
                f"INSERT INTO task_roles (task_id, role, agency) SELECT {new_id}, r.role, r.agency "
                f"FROM task_roles r JOIN tasks t ON t.id = r.task_id, {series} "
                f"WHERE t.dossier_id <= {m} AND t.dossier_id + k * {m} <= {target}"
            )
        )
    print(f"  rows {time.perf_counter() - t0:.0f} s; indexing ...", file=sys.stderr, flush=True)
    build_indexes(engine, heavy, drop=False)
    with engine.begin() as conn:
        conn.execute(text("SELECT setval(pg_get_serial_sequence('dossiers', 'id'), (SELECT max(id) FROM dossiers))"))
        facts = conn.execute(
            text("SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM attachments)")
        ).scalar()
        whole = target == m * (copies + 1) and not facts
        if whole:
            # Every dossier now has `copies` twins with the same columns, hence the same contribution
            # (engine/report_counts.py): the aggregates are the generated ones times copies + 1, exactly.
            factor = copies + 1
            columns = ", ".join(f"{c} = {c} * {factor}" for c in report_counts.COUNTS)
            conn.execute(text(f"UPDATE report_days SET {columns}"))
            print(f"  report aggregates times {factor}", file=sys.stderr, flush=True)
    if not whole:
        aggregates(engine)
    rebuild_board_counts(engine)
    settle(engine)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM dossiers")).scalar()
    print(f"{n:,} dossiers after replication, {time.perf_counter() - t0:.0f} s with indexes", file=sys.stderr)


def rebuild_board_counts(engine) -> None:
    """The board's counters (engine/boardcounts.py) counted from the rows, and their triggers back."""
    t0 = time.perf_counter()
    Base.metadata.create_all(engine)  # the counters' tables, on a database made before they existed
    with engine.begin() as conn:
        boardcounts.rebuild(conn)
    print(f"board counters rebuilt in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=None, help="SQLAlchemy URL (default $DATABASE_URL or var/bench/reports.db)")
    ap.add_argument("-n", type=int, default=1_000_000, help="dossiers (default 1,000,000)")
    ap.add_argument("--agencies", type=int, default=50)
    ap.add_argument("--procedures", type=int, default=200)
    ap.add_argument("--history-tasks", type=int, default=1, help="completed steps per closed dossier")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--now", default=None, help="ISO instant the data is generated up to (default: now)")
    ap.add_argument("--reset", action="store_true", help="drop and create every motcua table first")
    ap.add_argument(
        "--analyze",
        action="store_true",
        help="also ANALYZE on SQLite (the server never does; PostgreSQL is always analyzed, as its autovacuum would)",
    )
    ap.add_argument(
        "--replicate-to",
        type=int,
        default=None,
        help="PostgreSQL: after generating (or on a database this generator made), copy its dossiers in SQL up to"
        " this many (fast: 10,000,000 from 1,000,000 generated)",
    )
    ap.add_argument(
        "--board-counts",
        action="store_true",
        help="only count the board's counters again from the rows (a database loaded before they existed)",
    )
    args = ap.parse_args(argv)
    url = args.url or default_url()
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=VN_TZ)
    engine = make_engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    if args.board_counts:
        rebuild_board_counts(engine)
        return
    if args.replicate_to and not args.reset:
        if engine.dialect.name != "postgresql":
            sys.exit("--replicate-to needs PostgreSQL")
        replicate(engine, args.replicate_to)
        return
    if args.reset:
        Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(Dossier.__table__)).scalar():
            sys.exit(f"{shown} already holds dossiers; use --reset (drops every motcua table) or another database")
    with engine.begin() as conn:
        boardcounts.uninstall(conn)  # the load writes without the triggers; counted once at the end

    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    cal = WorkCalendar()
    world = World(rng, args.agencies, args.procedures, cal)
    writer = Writer(engine)
    with engine.begin() as conn:
        pv_ids = []
        for code, name, dl, cut, agency in world.procedures:
            pid = conn.execute(
                insert(Procedure).values(code=code, name=name, agency=agency, current_version=1, created_at=now)
            ).inserted_primary_key[0]
            meta = {"procedure_code": code, "procedure_name": name, "agency": agency, "deadline": dl}
            if cut:
                meta["cutoff"] = cut
            vid = conn.execute(
                insert(ProcedureVersion).values(
                    procedure_id=pid,
                    version=1,
                    content_hash=code,
                    process_id=f"p_{code.replace('.', '_')}",
                    filename=f"{code}.bpmn",
                    bpmn_xml="<definitions/>",
                    spec_json="{}",
                    meta=meta,
                    user_tasks=[],
                    forms={},
                    deployed_at=now,
                    deployed_by="bench",
                )
            ).inserted_primary_key[0]
            pv_ids.append(vid)
    heavy = [Dossier.__table__, Task.__table__, TaskRole.__table__]
    build_indexes(engine, heavy, drop=True)

    times = receipt_times(rng, args.n, now, cal)
    counters: dict[tuple, int] = {}
    d_rows, t_rows, r_rows = [], [], []
    stats = {"open": 0, "overdue": 0, "tasks": 0}
    with click.progressbar(
        length=len(times), label=f"dossiers -> {shown}", file=sys.stderr, show_pos=True, show_eta=True
    ) as bar:
        for i, (received, channel) in enumerate(times, start=1):
            a, j = world.pick()
            agency = world.agencies[a]
            code, name, dl, cut, _owner = world.procedures[j]
            f = life(rng, world, cal, now, received, j)
            local = received.astimezone(VN_TZ)
            key = (a, local.date())
            counters[key] = counters.get(key, 0) + 1
            dcode = f"H56.{agency[4:6]}.{agency[7:9]}-{local:%y%m%d}-{counters[key]:04d}"
            st = f["status"]
            last = f["finished_at"] or f["processed_at"] or f["paused_at"] or received
            d_rows.append(
                (
                    i,
                    dcode,
                    pv_ids[j],
                    code,
                    agency,
                    st.value,
                    st.code,
                    channel,
                    f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}",
                    f"{rng.randrange(10**11, 10**12):012d}",
                    f"09{rng.randrange(10**7, 10**8)}",
                    None,
                    {},
                    received,
                    f["due_at"],
                    f["original_due_at"],
                    f["deadline_hours"],
                    f["paused_at"],
                    f["paused_hours"],
                    f["supplement_count"],
                    f["extended_at"],
                    "Xin lỗi vì trễ hạn" if f["extended_at"] else None,
                    f["processed_at"],
                    f["returned_at"],
                    f["finished"],
                    f["finished_at"],
                    None,
                    None,
                    None,
                    "bench",
                    last,
                    1,
                )
            )
            open_ = not f["finished"] and f["processed_at"] is None
            if open_:
                stats["open"] += 1
                if f["paused_at"] is None and f["due_at"] < now:
                    stats["overdue"] += 1
                if st != Status.SUPPLEMENT_REQUESTED:
                    role = rng.choice(ROLES)
                    since = received + (now - received) * rng.uniform(0.3, 0.95)
                    step_due = cal.add_working_hours(
                        since, max(1.0, (f["deadline_hours"] or 8) * rng.uniform(0.2, 0.5))
                    )
                    claimed = rng.random() < 0.6
                    tid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    t_rows.append(
                        (
                            tid,
                            i,
                            dcode,
                            code,
                            agency,
                            f"task_{role}",
                            STEP_TITLES[role],
                            [role],
                            None,
                            None,
                            "ready",
                            f"cb_{a}_{rng.randint(1, 8)}" if claimed else None,
                            since if claimed else None,
                            since,
                            step_due,
                            None,
                            None,
                        )
                    )
                    r_rows.append((tid, role, agency))
                    stats["tasks"] += 1
            else:
                for k in range(args.history_tasks):
                    role = ROLES[k % len(ROLES)]
                    done = f["processed_at"] or f["finished_at"]
                    tid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                    t_rows.append(
                        (
                            tid,
                            i,
                            dcode,
                            code,
                            agency,
                            f"task_{role}",
                            STEP_TITLES[role],
                            [role],
                            None,
                            None,
                            "completed",
                            f"cb_{a}_1",
                            received,
                            received,
                            f["due_at"],
                            done,
                            f"cb_{a}_1",
                        )
                    )
            if len(d_rows) >= args.batch:
                writer.write(Dossier.__table__, DOSSIER_COLS, d_rows)
                writer.write(Task.__table__, TASK_COLS, t_rows)
                writer.write(TaskRole.__table__, ROLE_COLS, r_rows)
                bar.update(len(d_rows))
                if not sys.stderr.isatty() and i % 100_000 < args.batch:
                    print(
                        f"  {i:,} / {len(times):,} dossiers, {time.perf_counter() - t0:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                d_rows, t_rows, r_rows = [], [], []
        writer.write(Dossier.__table__, DOSSIER_COLS, d_rows)
        writer.write(Task.__table__, TASK_COLS, t_rows)
        writer.write(TaskRole.__table__, ROLE_COLS, r_rows)
        bar.update(len(d_rows))
    t_load = time.perf_counter() - t0
    print("indexing ...", file=sys.stderr)
    build_indexes(engine, heavy, drop=False)
    if writer.pg:
        with engine.begin() as conn:
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('dossiers', 'id'), (SELECT max(id) FROM dossiers))")
            )
    aggregates(engine)
    rebuild_board_counts(engine)
    if writer.pg:
        settle(engine)
    elif args.analyze:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    total = time.perf_counter() - t0
    print(
        f"{len(times):,} dossiers ({stats['open']:,} open, {stats['overdue']:,} overdue at {now.isoformat()}), "
        f"{stats['tasks']:,} ready steps, {len(world.offerings)} (agency, procedure) offerings; "
        f"rows {t_load:.0f} s, total with indexes {total:.0f} s -> {shown}"
    )
    if args.replicate_to and writer.pg:
        replicate(engine, args.replicate_to)


if __name__ == "__main__":
    main()
