"""Engine benchmark: N dossiers through a 4-step lifecycle via the service layer, persisted on SQLite
(or DATABASE_URL), against the raw SpiffWorkflow engine (its default serializer, spec included, in process)
measured in the same run. Prints both rates, their ratio, and the stored state per finished dossier.

    .venv/bin/python bench/bench_engine.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from engine.auth import Actor  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.dossiers import DossierService  # noqa: E402
from engine.models import Dossier, Event, Task, TaskRole, WorkflowState  # noqa: E402
from engine.procedures import deploy_bytes  # noqa: E402
from engine.workflow_state import full_serializer  # noqa: E402

HERE = Path(__file__).resolve().parent
BPMN = HERE / "four_steps.bpmn"
STEP_DATA = {"decision": "accept"}


def raw_engine(n: int) -> tuple[float, int]:
    """The baseline: what a naive integration does: full (spec-including) serialization at every step."""
    parser = CamundaParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec("simple")
    ser = full_serializer("camunda")
    completions, size = 0, 0
    t0 = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec)
        wf.do_engine_steps()
        blob = ser.serialize_json(wf)
        while True:
            wf = ser.deserialize_json(blob)
            ready = wf.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                break
            ready[0].data.update(STEP_DATA)
            ready[0].run()
            wf.do_engine_steps()
            blob = ser.serialize_json(wf)
            completions += 1
        size = len(blob)
    return completions / (time.perf_counter() - t0), size


def fresh_service(url: str | None) -> tuple[Database, DossierService, Actor]:
    """An empty database (SQLite in a new temporary directory, or `url` emptied) with bench/four_steps.bpmn
    deployed, the service over it, and an actor who may start and work its dossiers."""
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-"))
    url = url or f"sqlite:///{tmp / 'bench.db'}"
    db = Database(url)
    from engine.models import Base

    Base.metadata.drop_all(db.write_engine)
    db.create_all()
    deploy_bytes(db, BPMN.read_bytes(), BPMN.name)
    svc = DossierService(db, Settings(var_dir=tmp / "var", database_url=url))
    return db, svc, Actor("bench", frozenset({"receiver", "specialist"}), "000.31.14.H56")


def service_layer(n: int, url: str | None, warm_cache: bool = True) -> tuple[float, float, dict]:
    db, svc, actor = fresh_service(url)
    if not warm_cache:  # every step restores its workflow from the database, as after a restart or on another worker
        svc.workflows.size = 0
    latencies = []
    completions = 0
    t0 = time.perf_counter()
    for _ in range(n):
        d = svc.start_dossier(actor, "9.000001", {"name": "Nguyễn Văn A"}, 1, {})
        while d["tasks"]:
            t1 = time.perf_counter()
            d = svc.complete_task(actor, d["tasks"][0]["id"], STEP_DATA)
            latencies.append(time.perf_counter() - t1)
            completions += 1
    rate = completions / (time.perf_counter() - t0)
    with db.read() as s:
        state_bytes = s.scalar(select(func.avg(func.length(WorkflowState.state))))
        counts = {
            m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (Dossier, Task, TaskRole, Event)
        }
    db.dispose()
    return rate, statistics.median(latencies) * 1000, {"state_bytes": float(state_bytes), **counts}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    url = os.environ.get("DATABASE_URL")
    raw_engine(20)  # warm-up
    service_layer(20, url)
    raws, ours, ratios, medians, cold_ratios = [], [], [], [], []
    for _ in range(rounds):  # A B A B …: each round's ratio is taken under the same machine load
        raw_rate, raw_size = raw_engine(n)
        rate, median_ms, info = service_layer(n, url)
        cold_rate, _, _ = service_layer(n, url, warm_cache=False)
        raws.append(raw_rate), ours.append(rate), ratios.append(rate / raw_rate), medians.append(median_ms)
        cold_ratios.append(cold_rate / raw_rate)
    med = statistics.median
    print(
        f"dossiers: {n} per round, {rounds} rounds, 4 user-task completions each; store: {url or 'SQLite (file, WAL)'}"
    )
    print(
        f"raw SpiffWorkflow (default serializer, spec in every state, no database): {med(raws):8.0f} completions/s "
        f"(median), {raw_size / 1024:.1f} KB state per finished dossier"
    )
    print(
        f"motcua service layer (persisted, one transaction + audit event per step):  {med(ours):8.0f} completions/s "
        f"(median, start included), median completion {med(medians):.2f} ms"
    )
    print(f"ratio motcua / raw: median {med(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(
        f"ratio without the live-workflow cache (every step restores from the database): median "
        f"{med(cold_ratios):.2f}x (min {min(cold_ratios):.2f}, max {max(cold_ratios):.2f})"
    )
    print(
        f"stored workflow state per finished dossier: {info['state_bytes'] / 1024:.2f} KB "
        f"(zlib JSON, spec stored once per procedure version)"
    )
    print(f"rows: {info}")


if __name__ == "__main__":
    main()
