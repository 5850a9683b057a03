"""Two people completing the same task: one success, one clear conflict; codes stay unique under load."""

from __future__ import annotations

import multiprocessing as mp
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from engine.config import Settings
from engine.db import Database
from engine.dossiers import DossierService
from engine.errors import Conflict
from engine.models import CodeCounter, Dossier, Event, Task
from engine.procedures import deploy, load_path
from tests.conftest import BPMN_DIR, PG_URL
from tests.helpers import fill_form, staff

receiver = staff({"receiver"}, name="tiepnhan")
APPLICANT = {"name": "Trần Văn B"}


@pytest.fixture
def service(db, settings):
    with db.uow() as s:
        deploy(s, load_path(BPMN_DIR / "birth_registration" / "birth_registration.bpmn"), "test")
    return DossierService(db, settings)


def _race(fns):
    barrier = threading.Barrier(len(fns))
    results = [None] * len(fns)

    def run(i):
        barrier.wait()
        try:
            results[i] = ("ok", fns[i]())
        except Conflict as exc:
            results[i] = ("conflict", exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_threads_complete_the_same_task(service, db, settings):
    for _ in range(5):
        d = service.start_dossier(receiver, "1.001193", APPLICANT)
        tid = d["tasks"][0]["id"]
        data = fill_form(service.task_form(receiver, tid), {"decision": "accept"})
        other = DossierService(db, settings)  # a second worker with its own caches
        a, b = staff({"receiver"}, name="a"), staff({"receiver"}, name="b")
        results = _race([lambda: service.complete_task(a, tid, data), lambda: other.complete_task(b, tid, data)])
        kinds = sorted(r[0] for r in results)
        assert kinds == ["conflict", "ok"], results
        with db.read() as s:
            dossier = s.scalars(select(Dossier).where(Dossier.code == d["code"])).one()
            completed = s.scalar(
                select(func.count())
                .select_from(Event)
                .where(Event.dossier_id == dossier.id, Event.action == "task.completed")
            )
            ready = s.scalars(select(Task.spec_name).where(Task.dossier_id == dossier.id, Task.state == "ready")).all()
            status = dossier.status
        assert completed == 1 and ready == ["Task_Appraisal"] and status == "in_process"


def test_fifty_dossiers_started_concurrently_get_fifty_codes(service, db):
    with ThreadPoolExecutor(max_workers=10) as pool:
        views = list(pool.map(lambda _: service.start_dossier(receiver, "1.001193", APPLICANT), range(50)))
    codes = [v["code"] for v in views]
    assert len(set(codes)) == 50
    assert sorted(int(c.rsplit("-", 1)[1]) for c in codes) == list(range(1, 51))
    with db.read() as s:
        assert s.scalar(select(func.sum(CodeCounter.value))) == 50


def _complete_in_process(url, tid, data, name, barrier, out):
    db = Database(url)
    svc = DossierService(db, Settings(database_url=url))
    barrier.wait()
    try:
        svc.complete_task(staff({"receiver"}, name=name), tid, data)
        out.put("ok")
    except Conflict:
        out.put("conflict")
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(f"error: {type(exc).__name__}: {exc}")
    finally:
        db.dispose()


@pytest.mark.skipif(not PG_URL, reason="NOTICE: two-process race runs on PostgreSQL only (set DATABASE_URL)")
def test_two_processes_complete_the_same_task_on_postgresql(service, settings):
    d = service.start_dossier(receiver, "1.001193", APPLICANT)
    tid = d["tasks"][0]["id"]
    data = fill_form(service.task_form(receiver, tid), {"decision": "accept"})
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_complete_in_process, args=(settings.database_url, tid, data, n, barrier, out))
        for n in ("p1", "p2")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    results = sorted(out.get(timeout=5) for _ in procs)
    assert results == ["conflict", "ok"], results
    again = service.get_dossier(receiver, d["code"])
    assert [t["spec_name"] for t in again["tasks"]] == ["Task_Appraisal"]
