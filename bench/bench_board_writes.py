"""What the board's counters (engine/boardcounts.py) cost the writers: dossiers received and driven through
their four steps (bench/four_steps.bpmn) in this process, in rounds that alternate with and without the
counters' triggers (the baseline of the same run); prints the time per dossier of each and their ratio.

    .venv/bin/python bench/bench_board_writes.py [--url URL] [--rounds 6] [-n 50]

URL defaults to a new SQLite file; a PostgreSQL URL must name a database of its own (its motcua tables are
dropped and created again).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import boardcounts  # noqa: E402
from engine.auth import Actor  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.db import Database  # noqa: E402
from engine.dossiers import DossierService  # noqa: E402
from engine.models import Base  # noqa: E402
from engine.procedures import deploy_bytes  # noqa: E402

BPMN = Path(__file__).resolve().parent / "four_steps.bpmn"
AGENCY = "000.31.14.H56"
ACTOR = Actor("bench", frozenset({"receiver", "specialist"}), AGENCY)


def lifecycle(service: DossierService, n: int) -> tuple[float, float]:
    """Seconds per dossier, wall-clock and this process's CPU (on SQLite that includes the database's work,
    triggers included, and depends much less on the machine's load): received, then each ready step completed
    until none is left."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        d = service.start_dossier(ACTOR, "9.000001", {"name": "Nguyễn Văn An"})
        while d["tasks"]:
            d = service.complete_task(ACTOR, d["tasks"][0]["id"], {"decision": "accept"})
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=None)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("-n", type=int, default=50, help="dossiers per round")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="motcua-bench-board-"))
    url = args.url or f"sqlite:///{tmp / 'bench.db'}"
    db = Database(url)
    Base.metadata.drop_all(db.write_engine)
    db.create_all()
    deploy_bytes(db, BPMN.read_bytes(), BPMN.name)
    service = DossierService(db, Settings(var_dir=tmp / "var", database_url=url))
    lifecycle(service, 5)  # warm: caches, the spec
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for r in range(args.rounds):
        for on in (True, False) if r % 2 == 0 else (False, True):
            with db.write_engine.begin() as conn:
                boardcounts.install(conn) if on else boardcounts.uninstall(conn)
            times[on].append(lifecycle(service, args.n))
    with db.write_engine.begin() as conn:
        boardcounts.install(conn)
    print(
        f"{db.engine.url.render_as_string(hide_password=True)}: {args.rounds} rounds of {args.n} dossiers, 4 steps each"
    )
    for i, what in ((0, "wall-clock"), (1, "CPU of this process")):
        with_ = statistics.median(t[i] for t in times[True])
        without = statistics.median(t[i] for t in times[False])
        print(
            f"  {what:<20} without the board's triggers {without * 1000:7.2f} ms per dossier (median of rounds),"
            f" with them {with_ * 1000:7.2f} ms  = {with_ / without:.3f}x"
        )
    db.dispose()


if __name__ == "__main__":
    main()
