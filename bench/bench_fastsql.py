"""The hot statements on the driver's cursor (engine/fastsql.py) against the same statements through
`Connection.execute`, in one process: rounds of N dossiers of bench/four_steps.bpmn through the service layer,
alternating between the two (in the other rounds `FastStatement` hands every statement to
`Connection.execute`), each operation's thread CPU time; prints the median over the rounds of each round's
median per completion and per start. On SQLite (a new file) or DATABASE_URL.

    .venv/bin/python bench/bench_fastsql.py [N=100] [ROUNDS=8]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import STEP_DATA, fresh_service  # noqa: E402

from engine.fastsql import FastStatement  # noqa: E402


def one_round(n: int, url: str | None) -> tuple[float, float]:
    """(median CPU per completion, median CPU per start) in ms, over n new dossiers on an empty database."""
    db, svc, actor = fresh_service(url)
    starts, completions = [], []
    for _ in range(n):
        t = time.thread_time()
        d = svc.start_dossier(actor, "9.000001", {"name": "Nguyễn Văn A"}, 1, {})
        starts.append(time.thread_time() - t)
        while d["tasks"]:
            t = time.thread_time()
            d = svc.complete_task(actor, d["tasks"][0]["id"], STEP_DATA)
            completions.append(time.thread_time() - t)
    db.dispose()
    return statistics.median(completions) * 1e3, statistics.median(starts) * 1e3


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    url = os.environ.get("DATABASE_URL")
    on_cursor = FastStatement._execute

    def via_connection(self, conn, params, fetch):
        return self._fallback(conn, params, fetch)

    modes = {"on the cursor": on_cursor, "Connection.execute": via_connection}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
    one_round(20, url)  # warm: imports, the procedure's spec, the plans
    for i in range(rounds):
        for name in list(modes)[:: 1 if i % 2 == 0 else -1]:  # A B, B A, …
            FastStatement._execute = modes[name]  # type: ignore[method-assign]
            results[name].append(one_round(n, url))
    FastStatement._execute = on_cursor  # type: ignore[method-assign]
    print(
        f"{n} dossiers per round, {rounds} rounds each; store: {url or 'SQLite (file, WAL)'}; load {os.getloadavg()[0]:.1f}"
    )
    for name, rs in results.items():
        print(
            f"{name:20s} CPU per completion {statistics.median(r[0] for r in rs):.3f} ms, "
            f"per start {statistics.median(r[1] for r in rs):.3f} ms (thread time, medians)"
        )


if __name__ == "__main__":
    main()
