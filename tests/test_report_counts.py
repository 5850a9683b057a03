"""The period report's aggregates (engine/report_counts.py) against a recomputation from the dossiers.

Every change goes through the layer that writes dossiers (the use cases, or `DossierRepository` for random
column histories); then the report read from the aggregates must equal the same report recomputed from the
dossier rows (`summary(..., from_dossiers=True)`, whose own test is tests/test_reports.py), row by row, for
several periods and filters, and the table must equal a rebuild from scratch. Runs on SQLite and, with
DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from datetime import date, datetime, timedelta

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import delete, func, select, update

from engine import report_counts
from engine.actions import LegalActions
from engine.calendar import VN_TZ, WorkCalendar
from engine.db import Database
from engine.dossiers import DossierService
from engine.migrate import upgrade
from engine.models import Dossier, ProcedureVersion, ReportDay
from engine.procedures import deploy_bytes
from engine.reports import on_time_by_month, summary
from engine.repository import DossierRepository
from engine.statuses import Status
from tests.conftest import ROOT
from tests.helpers import ALL_ROLES, drive, staff
from tests.test_reports import add_dossier, add_procedures

AGENCY = "000.31.14.H56"
FOUR_STEPS = (ROOT / "bench" / "four_steps.bpmn").read_bytes()  # 9.000001, 3 working days
receiver = staff({"receiver"}, AGENCY, "tiepnhan")
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
PERIODS = [
    (date(2026, 3, 1), date(2026, 3, 31)),
    (date(2026, 3, 2), date(2026, 3, 8)),
    (date(2026, 3, 9), date(2026, 3, 9)),
    (date(2026, 3, 16), date(2026, 4, 30)),
    (date(2026, 4, 1), date(2026, 4, 30)),
    (date(2026, 1, 1), date(2026, 12, 31)),
]


def vn(*args) -> datetime:
    return datetime(*args, tzinfo=VN_TZ)


def at(*args):
    return time_machine.travel(vn(*args), tick=False)


def table(db) -> dict:
    with db.read() as s:
        out = {}
        for r in s.scalars(select(ReportDay)):
            values = {c: getattr(r, c) for c in report_counts.COUNTS}
            if any(values.values()):
                out[(r.day, r.agency, r.procedure_code)] = values
        return out


def assert_same_tables(kept: dict, rebuilt: dict) -> None:
    keys = {k for k, v in kept.items() if any(abs(x) > 1e-6 for x in v.values())}
    assert keys == set(rebuilt)
    for k in keys:
        a, b = kept[k], rebuilt[k]
        assert abs(a.pop("working_hours") - b.pop("working_hours")) < 1e-6, k
        assert a == b, k


def assert_reports_agree(db, filters=((None, None),), periods=PERIODS) -> int:
    """Aggregates = recomputation for each period and filter; the number of figures compared that are not 0."""
    cal = WorkCalendar()
    nonzero = 0
    with db.read() as s:
        for agency, proc in filters:
            for first, last in periods:
                got = summary(s, first, last, agency, proc, calendar=cal)
                want = summary(s, first, last, agency, proc, calendar=cal, from_dossiers=True)
                for a, b in zip(got["rows"] + [got["totals"]], want["rows"] + [want["totals"]], strict=True):
                    ha, hb = a.pop("avg_processing_hours"), b.pop("avg_processing_hours")
                    assert (ha is None) == (hb is None) and (ha is None or abs(ha - hb) <= 0.011), (first, last)
                    assert a == b, (agency, proc, first, last)
                assert len(got["rows"]) == len(want["rows"])
                nonzero += sum(1 for v in _numbers(got["totals"]) if v)
    return nonzero


def _numbers(d):
    for v in d.values():
        if isinstance(v, dict):
            yield from _numbers(v)
        elif isinstance(v, int | float) and not isinstance(v, bool):
            yield v


# --------------------------------------------------------------------------------------------------
# Through the use cases: received, refused, supplement, late, paused, extended, withdrawn, stopped


@pytest.fixture
def service(db, settings):
    deploy_bytes(db, FOUR_STEPS, "four_steps.bpmn")
    return DossierService(db, settings)


def start(service, *when) -> str:
    with at(*when):
        return service.start_dossier(receiver, "9.000001", APPLICANT)["code"]


def finish(service, code, *when) -> None:
    with at(*when):
        drive(service, service.get_dossier(ALL_ROLES, code), {"intake": {"decision": "accept"}})


def test_histories_through_the_use_cases_agree_with_the_dossiers(service, db):
    actions = LegalActions(service)
    # completed early (same day); completed late (after the 3 working days)
    finish(service, start(service, 2026, 3, 2, 9), 2026, 3, 2, 15)
    finish(service, start(service, 2026, 3, 2, 10), 2026, 3, 9, 10)
    # refused at intake; withdrawn; stopped
    code = start(service, 2026, 3, 3, 9)
    with at(2026, 3, 3, 10):
        actions.refuse(receiver, code, "Không đủ điều kiện")
    code = start(service, 2026, 3, 3, 11)
    with at(2026, 3, 10, 9):
        actions.withdraw(receiver, code, "Công dân rút hồ sơ")
    code = start(service, 2026, 3, 4, 9)
    with at(2026, 4, 2, 9):
        actions.stop(receiver, code, "Dừng xử lý")
    # a supplement requested and answered (the due time moves), then completed
    code = start(service, 2026, 3, 4, 10)
    with at(2026, 3, 5, 9):
        actions.request_supplement(receiver, code, "Thiếu giấy tờ")
    with at(2026, 3, 12, 9):
        actions.supplement_received(receiver, code)
    finish(service, code, 2026, 3, 13, 9)
    # paused across the month's end, answered in April, still open
    code = start(service, 2026, 3, 20, 9)
    with at(2026, 3, 30, 9):
        actions.request_supplement(receiver, code, "Thiếu ảnh")
    with at(2026, 4, 6, 9):
        actions.supplement_received(receiver, code)
    # a second supplement request (counts as late), open
    code = start(service, 2026, 3, 6, 9)
    for day in (9, 11):
        with at(2026, 3, day, 9):
            actions.request_supplement(receiver, code, "Lần nữa")
        with at(2026, 3, day + 1, 9):
            actions.supplement_received(receiver, code)
    # extended with an apology letter shortly before its due time, completed in April
    code = start(service, 2026, 3, 10, 9)
    with at(2026, 3, 13, 8):
        actions.extend(receiver, code, "Chờ ý kiến cơ quan phối hợp", extra_working_days=5)
    finish(service, code, 2026, 4, 1, 9)
    # open and overdue; open and within; received on a weekend night
    start(service, 2026, 3, 16, 9)
    start(service, 2026, 3, 31, 16)
    start(service, 2026, 3, 28, 23)

    nonzero = assert_reports_agree(db, [(None, None), (AGENCY, None), (AGENCY, "9.000001"), ("000.00.00.X", None)])
    assert nonzero > 40  # the comparison is not between empty reports
    with db.read() as s:
        march = summary(s, "2026-03-01", "2026-03-31")["totals"]
    assert march["received"]["total"] == 12
    assert march["completed"] == {"total": 3, "early": 2, "on_time": 0, "late": 1}
    assert (march["refused"], march["withdrawn"], march["stopped"]) == (1, 1, 0)
    assert march["in_process"]["overdue"] >= 2 and march["supplement_requested"] == 3

    kept = table(db)
    with db.uow() as s:
        report_counts.rebuild(s)
    assert_same_tables(kept, table(db))


def test_on_time_by_month_reads_the_same_figures_as_the_report(service, db):
    finish(service, start(service, 2026, 3, 2, 9), 2026, 3, 2, 15)
    finish(service, start(service, 2026, 3, 2, 10), 2026, 4, 9, 10)
    start(service, 2026, 3, 16, 9)
    with db.read() as s:
        months = on_time_by_month(s, 3, today=date(2026, 4, 20))["months"]
        for m in months:
            rep = summary(s, m["from"], m["to"], from_dossiers=True)["totals"]
            assert m["completed"] == rep["completed"]["total"]
            assert m["completed_late"] == rep["completed"]["late"]
            assert m["in_process"] == rep["in_process"]["total"]
            assert m["in_process_overdue"] == rep["in_process"]["overdue"]
            assert m["on_time_rate"] == rep["on_time_rate"]
    assert [m["in_process"] for m in months] == [0, 2, 1]


# --------------------------------------------------------------------------------------------------
# Random column histories through the repository's save


def _random_changes(rng, cal, r: datetime, due):
    """A plausible history of one dossier after its receipt: a list of (column values) changes in time order."""
    t, changes, state = r, [], {"due_at": due, "paused_at": None, "supplement_count": 0, "paused_hours": 0.0}
    for _ in range(rng.randrange(5)):
        t += timedelta(hours=rng.uniform(1, 200))
        u = rng.random()
        if state["paused_at"] is None and u < 0.35:
            state["supplement_count"] += 1
            state["paused_at"] = t
            changes.append({"paused_at": t, "supplement_count": state["supplement_count"], "status_code": 5})
        elif state["paused_at"] is not None and u < 0.7:
            paused = cal.working_hours_between(state["paused_at"], t)
            state["paused_hours"] += paused
            if state["due_at"] is not None:
                state["due_at"] = cal.add_working_hours(state["due_at"], paused)
            state["paused_at"] = None
            changes.append(
                {"paused_at": None, "due_at": state["due_at"], "paused_hours": state["paused_hours"], "status_code": 4}
            )
        elif state["due_at"] is not None and u < 0.85:
            state["due_at"] = state["due_at"] + timedelta(days=rng.randrange(1, 6))
            changes.append({"extended_at": t, "due_at": state["due_at"]})
        elif u < 0.9:
            changes.append({"procedure_code": "P2" if rng.random() < 0.5 else "P1", "agency": rng.choice("AB")})
    t += timedelta(hours=rng.uniform(1, 400))
    u = rng.random()
    if u < 0.2:
        code = rng.choice((Status.REFUSED.code, Status.WITHDRAWN.code, Status.STOPPED.code))
        changes.append({"finished": True, "finished_at": t, "status_code": code, "paused_at": None})
    elif u < 0.8:
        changes.append({"processed_at": t, "status_code": 9, "paused_at": None})
        if rng.random() < 0.6:
            t2 = t + timedelta(hours=rng.uniform(0, 100))
            changes.append({"returned_at": t2, "finished_at": t2, "finished": True, "status_code": 10})
    return changes


@pytest.mark.parametrize("seed", [3, 4])
def test_random_histories_through_the_repository_agree_with_the_dossiers(db, seed):
    rng = random.Random(seed)
    cal = WorkCalendar()
    with db.uow() as s:
        versions = add_procedures(s, ("P1", "P2"))
    histories = []
    with db.uow() as s:
        repo = DossierRepository(s)
        for i in range(150):
            r = vn(2026, 2, 20) + timedelta(minutes=rng.randrange(70 * 24 * 60))
            due = None if rng.random() < 0.1 else cal.add_working_hours(r, rng.choice((8, 24, 40, 80)))
            proc = rng.choice(("P1", "P2"))
            values = dict(
                code=f"x{seed}-{i}",
                procedure_version_id=versions[proc],
                procedure_code=proc,
                agency=rng.choice("AB"),
                status="in_process",
                status_code=4,
                channel=rng.choice((1, 2, 3)),
                applicant_name="Trần Văn B",
                data={},
                received_at=r,
                due_at=due,
                original_due_at=due,
                finished=False,
                paused_hours=0.0,
                supplement_count=0,
                version=1,
                created_at=r,
            )
            d = repo.add(values)
            histories.append((d.id, r, _random_changes(rng, cal, r, due)))
    # the changes of all dossiers interleaved, each in its own transaction, as the service would
    steps = [(when_i, did, ch) for did, r, chs in histories for when_i, ch in enumerate(chs)]
    rng.shuffle(steps)
    steps.sort(key=lambda x: x[0])  # each dossier's changes stay in order
    for _, did, change in steps:
        with db.uow() as s:
            repo = DossierRepository(s)
            d = repo.get_for_update(dossier_id=did)
            repo.save_fields(d, vn(2026, 6, 1), **change)
    filters = [(None, None), ("A", None), ("B", "P2"), (None, "P1")]
    assert assert_reports_agree(db, filters) > 40
    kept = table(db)
    with db.uow() as s:
        report_counts.rebuild(s)
    assert_same_tables(kept, table(db))


def test_a_wrong_aggregate_is_caught(db):
    """The comparison above can fail: one count changed behind the rule's back shows."""
    with db.uow() as s:
        v = add_procedures(s, ("P1",))
        add_dossier(s, v, "w1", "A", "P1", Status.IN_PROCESS, vn(2026, 3, 3, 9), 2, vn(2026, 3, 6, 9))
        s.flush()
        report_counts.rebuild(s)
    assert_reports_agree(db)
    with db.uow() as s:
        s.execute(update(ReportDay).where(ReportDay.received > 0).values(received_online=0))
    with pytest.raises(AssertionError):
        assert_reports_agree(db)


# --------------------------------------------------------------------------------------------------
# Concurrency, the migration's backfill, the command


def test_concurrent_changes_add_up(db, settings):
    """Upserts from parallel transactions on the same row add up (INSERT … ON CONFLICT DO UPDATE n = n + excluded.n)."""
    day = date(2026, 3, 3)
    errors = []

    def work():
        other = Database.from_settings(settings)
        try:
            for _ in range(25):
                for attempt in range(50):
                    try:
                        with other.uow() as s:
                            report_counts.apply(s, {(day, "A", "P1", "received"): 1, (day, "A", "P2", "open_delta"): 1})
                        break
                    except Exception as exc:  # SQLite: database is locked under contention; retry
                        if attempt == 49:
                            errors.append(exc)
        finally:
            other.dispose()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with db.read() as s:
        rows = dict(s.execute(select(ReportDay.procedure_code, ReportDay.received + ReportDay.open_delta)).all())
    assert rows == {"P1": 100, "P2": 100}


def _insert_as_then(conn, name: str, values: dict) -> int:
    """Insert a row into table `name` as it is in the database now (reflected: an older schema than the
    models), NOT NULL columns not given filled with a plain value of their type."""
    from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Integer, MetaData, Table

    table = Table(name, MetaData(), autoload_with=conn)
    row = dict(values)
    for c in table.columns:
        if c.name in row or c.nullable or c.primary_key or c.server_default is not None:
            continue
        t = c.type
        row[c.name] = (
            vn(2026, 1, 1)
            if isinstance(t, DateTime)
            else date(2026, 1, 1)
            if isinstance(t, Date)
            else False
            if isinstance(t, Boolean)
            else 0
            if isinstance(t, Integer | Float)
            else {}
            if isinstance(t, JSON)
            else "x"
        )
    return conn.execute(table.insert().values(**row)).inserted_primary_key[0]


def test_upgrade_backfills_the_aggregates_from_existing_dossiers(empty_database):
    url = empty_database
    upgrade(url, "7d6ca5c8bd29")  # the schema before the aggregates
    database = Database(url)
    try:
        with database.engine.begin() as conn:
            pid = _insert_as_then(conn, "procedures", {"code": "P1", "name": "Thủ tục P1", "current_version": 1})
            vid = _insert_as_then(
                conn, "procedure_versions", {"procedure_id": pid, "version": 1, "content_hash": "P1", "meta": {}}
            )
            common = {"procedure_version_id": vid, "procedure_code": "P1", "agency": "A", "applicant_name": "A"}
            rows = [
                ("m1", Status.RETURNED, vn(2026, 3, 2, 9), 2, vn(2026, 3, 5, 9), vn(2026, 3, 4, 9), vn(2026, 3, 5, 8)),
                ("m2", Status.IN_PROCESS, vn(2026, 3, 2, 9), 1, vn(2026, 3, 5, 9), None, None),
                ("m3", Status.REFUSED, vn(2026, 3, 20, 9), 3, None, None, None),
            ]
            for code, st, received, channel, due, processed, returned in rows:
                finished_at = returned or (vn(2026, 3, 21, 9) if st == Status.REFUSED else None)
                values = dict(common, code=code, status=st.value, status_code=st.code, channel=channel)
                values.update(received_at=received, due_at=due, processed_at=processed, returned_at=returned)
                values.update(finished_at=finished_at, finished=finished_at is not None, version=1)
                _insert_as_then(conn, "dossiers", values)
        upgrade(url)
        assert assert_reports_agree(database) > 10
        with database.read() as s:
            totals = summary(s, "2026-03-01", "2026-03-31")["totals"]
        assert totals["received"]["total"] == 3 and totals["refused"] == 1 and totals["returned"] == 1
    finally:
        database.dispose()


def test_reports_rebuild_command(empty_database, settings, monkeypatch):
    from cli.main import main as cli

    upgrade(empty_database)
    db = Database(empty_database)
    try:
        with db.uow() as s:
            v = add_procedures(s, ("P1",))
            add_dossier(s, v, "c1", "A", "P1", Status.IN_PROCESS, vn(2026, 3, 2, 9), 2, vn(2026, 3, 5, 9))
        assert table(db) == {}  # written behind the repository's back
        monkeypatch.setenv("DATABASE_URL", empty_database)
        monkeypatch.setenv("MOTCUA_VAR", str(settings.var_dir))
        r = CliRunner().invoke(cli, ["reports", "rebuild"])
        assert r.exit_code == 0, r.output
        assert "rebuilt from 1 dossiers" in r.output
        assert assert_reports_agree(db) > 5
        with db.uow() as s:
            s.execute(delete(Dossier))
        r = CliRunner().invoke(cli, ["reports", "rebuild"])
        assert r.exit_code == 0 and table(db) == {}
    finally:
        db.dispose()


def test_a_version_id_means_a_version_only_in_its_own_database(db, tmp_path):
    """Version 1 has a fee in one database and none in another, in the same process: each database's
    dossiers are counted with their own version's fee (a cache keyed by the id alone mixed them up)."""
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    upgrade(other.url)
    for database, fee in ((db, 20000), (other, 0), (db, 20000)):
        with database.uow() as s:
            if not s.scalar(select(func.count()).select_from(ProcedureVersion)):
                versions = add_procedures(s, ("P1",))
                s.execute(update(ProcedureVersion).values(meta={"fee": fee}))
            else:
                versions = {"P1": s.scalar(select(ProcedureVersion.id))}
            n = s.scalar(select(func.count()).select_from(Dossier))
            add = DossierRepository(s).add
            add(dict(code=f"f{n}", procedure_version_id=versions["P1"], procedure_code="P1", agency="A",
                     status="in_process", status_code=4, channel=2, applicant_name="Trần Văn B", data={},
                     received_at=vn(2026, 3, 3, 9), due_at=vn(2026, 3, 6, 9), original_due_at=vn(2026, 3, 6, 9),
                     finished=False, paused_hours=0.0, supplement_count=0, version=1,
                     created_at=vn(2026, 3, 3, 9)))  # fmt: skip
    for database, fees in ((db, 2), (other, 0)):
        with database.read() as s:
            assert s.scalar(select(func.sum(ReportDay.fee_due))) == fees
        assert_reports_agree(database)
