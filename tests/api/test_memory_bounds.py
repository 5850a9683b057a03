"""What an API process keeps per dossier or per client stays bounded (docs/performance.md, "Memory"): driven
through the API, the live-workflow cache and the task rights never hold more than their size, and the
metrics' label sets do not grow with dossiers, raw paths or the methods clients invent."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from .helpers import new_dossier

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}  # OTHER: any method invented


def latency_series(client) -> set[tuple[str, str]]:
    r = client.raw.get("/metrics")
    assert r.status_code == 200
    return {
        (s.labels["endpoint"], s.labels["method"])
        for fam in text_string_to_metric_families(r.get_data(as_text=True))
        for s in fam.samples
        if s.name == "motcua_http_request_duration_seconds_count"
    }


def drive(client, n: int) -> list[str]:
    """`n` dossiers through their four steps over HTTP."""
    codes = []
    for _ in range(n):
        d = new_dossier(client, "canbo")
        codes.append(d["code"])
        while d["tasks"]:
            r = client.post(
                f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "canbo", json={"data": {"decision": "accept"}}
            )
            assert r.status_code == 200, r.get_json()
            d = r.get_json()
        assert d["status"] == "returned"
    return codes


def test_live_workflows_and_task_rights_stay_within_their_size(client, app):
    svc = app.extensions["motcua"].dossiers
    svc.workflows.size, svc.task_rights.size = 2, 3  # the defaults (2,000 and 20,000) take too long to fill here
    held = {"workflows": 0, "rights": 0}

    def watch():
        held["workflows"] = max(held["workflows"], len(svc.workflows._items))
        held["rights"] = max(held["rights"], len(svc.task_rights._items))
        assert len(svc.workflows._items) <= 2 and len(svc.task_rights._items) <= 3, held

    opened = []
    for _ in range(4):  # four dossiers waiting at their first step at once
        opened.append(new_dossier(client, "canbo"))
        watch()
    for d in opened:
        while d["tasks"]:
            r = client.post(
                f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "canbo", json={"data": {"decision": "accept"}}
            )
            assert r.status_code == 200, r.get_json()
            d = r.get_json()
            watch()
        assert d["status"] == "returned"
    assert held == {"workflows": 2, "rights": 3}  # both were filled to their bound, never past it
    # Finished dossiers and done steps are not kept: the caches hold what may still be worked on.
    assert len(svc.workflows._items) == 0 and len(svc.task_rights._items) == 0


def test_metrics_label_sets_do_not_grow_with_dossiers_paths_or_methods(client):
    codes = drive(client, 2)
    for code in codes:
        assert client.get(f"/api/v1/dossiers/{code}", "canbo").status_code == 200
        assert client.get(f"/no-such-page/{code}", "canbo").status_code == 404
    latency_series(client)  # /metrics itself is an endpoint
    before = latency_series(client)
    codes += drive(client, 3)
    for i, code in enumerate(codes):
        assert client.get(f"/api/v1/dossiers/{code}", "canbo").status_code == 200
        assert client.get(f"/no-such-page/{code}", "canbo").status_code == 404
        assert client.raw.open(f"/api/v1/dossiers/{code}", method=f"INVENTED{i}").status_code in (400, 401, 405)
    after = latency_series(client)
    assert {e for e, _ in after} == {e for e, _ in before}  # three more dossiers: no new endpoint label
    assert not any(code in e for code in codes for e, _ in after), "a raw path became a label"
    assert {m for _, m in after} <= METHODS
    assert len(after - before) <= 1  # at most the one (endpoint, OTHER) set of the invented methods


def test_sqlite_page_caches_share_one_limit_per_process(client, app):
    """32 MB of page cache per connection, two pools of up to 15 connections: on a database of a province
    (16 KB per dossier) their sum would pass 300 MB; the process-wide soft heap limit holds them together."""
    from engine.db import SQLITE_HEAP_LIMIT

    db = app.extensions["motcua"].db
    if not db.is_sqlite:
        return  # PostgreSQL keeps its pages in its own server
    drive(client, 1)
    assert client.get("/api/v1/monitor/overdue", "supervisor").status_code == 200
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar() == SQLITE_HEAP_LIMIT
    with db.write_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA soft_heap_limit").scalar() == SQLITE_HEAP_LIMIT
