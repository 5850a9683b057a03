"""The hot path's cost in SQL statements: a task completion over the API runs a short, fixed list of
statements (docs/performance.md, "Hot path"), so an extra query per step cannot slip in unnoticed."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from .helpers import new_dossier

STEP = {"data": {"decision": "accept"}}
# per completion of bench/four_steps.bpmn: lock the task and its dossier; the task completed, its roles
# dropped; the next task and its role; the audit event; the workflow state; the dossier (8); when the status
# changes, all the change's outbox rows (the applicant's message and the national portal's row) in one
# INSERT, the portal's last sequence known from the step before (`portal_cursors`, engine/dossiers.py) (9);
# when it is processed or returned, the report's aggregates (engine/report_counts.py) and what they read:
# whether a result file is attached (11)
MOST = 11
# per new dossier: the procedure's current version, the day's code counter, the dossier, the report's
# aggregates, the audit event, the first task and its role, the workflow state, the outbox rows (one INSERT;
# a new dossier has no portal sequence to read)
START = 9


@contextmanager
def statements(db):
    """The statements sent to the database on either engine while the block runs (BEGIN and COMMIT apart)."""
    seen: list[str] = []

    def _on(conn, cursor, statement, *_):
        # the caches' watch (engine/caches.py) looks at most once a second, and the API's actor cache reads the
        # user at most once every 5 s (a slow run on a loaded machine sees it): neither is once a request
        if not statement.startswith(("BEGIN", "SELECT cache_generations", "SELECT users.id, users.username")):
            seen.append(" ".join(statement.split())[:100])

    engines = list({id(e): e for e in (db.engine, db.write_engine)}.values())
    for e in engines:
        event.listen(e, "before_cursor_execute", _on)
    try:
        yield seen
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", _on)


def test_a_completion_runs_a_fixed_short_list_of_statements(client, app, monkeypatch):
    from engine.fastsql import FastStatement

    def fallback(*_a):
        raise AssertionError("a hot statement went through Connection.execute (engine/fastsql.py)")

    monkeypatch.setattr(FastStatement, "_fallback", fallback)  # every planned statement runs on the cursor
    db = app.extensions["motcua"].db
    d = new_dossier(client, "canbo")  # warm: procedure, calendar and template caches
    while d["tasks"]:
        d = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "canbo", json=STEP).get_json()
    with statements(db) as seen:
        d = new_dossier(client, "canbo")
    assert len(seen) <= START, seen
    counts = []
    while d["tasks"]:
        with statements(db) as seen:
            r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "canbo", json=STEP)
        assert r.status_code == 200, r.get_json()
        d = r.get_json()
        counts.append(len(seen))
        # the step was opened by this process: who may work on it is known without a query
        assert seen[0].startswith("SELECT tasks.id AS tasks_id"), seen
        assert len(seen) <= MOST, seen
    assert d["status"] == "returned"
    assert len(counts) == 4, counts


def test_a_step_opened_elsewhere_is_authorized_from_the_database(client, app):
    """Another process opened the step (or this one restarted): the authorization reads the task row, once."""
    svc = app.extensions["motcua"].dossiers
    d = new_dossier(client, "canbo")
    task_id = d["tasks"][0]["id"]
    svc.task_rights = type(svc.task_rights)()  # forget what this process knows
    r = client.post(f"/api/v1/tasks/{task_id}/complete", "khac", json=STEP)  # another agency: not found
    assert r.status_code == 404
    assert svc.task_rights.get(task_id) is None
    r = client.post(f"/api/v1/tasks/{task_id}/claim", "canbo")
    assert r.status_code == 200, r.get_json()
    assert svc.task_rights.get(task_id) is not None  # read once, kept: a step's rights never change
    with statements(svc.db) as seen:
        r = client.post(f"/api/v1/tasks/{task_id}/complete", "canbo", json=STEP)
    assert r.status_code == 200, r.get_json()
    assert seen[0].startswith("SELECT tasks.id AS tasks_id"), seen


def test_what_this_process_knew_never_refuses_wrongly_nor_lets_a_step_moved_away_be_completed(client, app):
    """A step changed hands in another process (a migration rewrites its agency, roles or assignee): an
    allowance remembered here is caught by the check under the lock, and a refusal remembered here is read
    again from the row."""
    from sqlalchemy import update

    from engine.models import Task
    from engine.repository import TaskRow

    svc = app.extensions["motcua"].dossiers
    d = new_dossier(client, "canbo")
    task_id = d["tasks"][0]["id"]
    # this process remembers the step as another agency's: the row says otherwise, and the row decides
    svc.task_rights.remember([TaskRow(id=task_id, agency="000.00.00.H99", roles=["receiver"], assignee=None)])
    r = client.post(f"/api/v1/tasks/{task_id}/claim", "canbo")
    assert r.status_code == 200, r.get_json()
    # another process moves the step to a role canbo lacks; this one still remembers the old roles
    with svc.db.uow() as s:
        s.execute(update(Task).where(Task.id == task_id).values(roles=["chairman"], claimed_by=None, claimed_at=None))
    r = client.post(f"/api/v1/tasks/{task_id}/complete", "canbo", json=STEP)
    assert r.status_code == 403, r.get_json()
    with svc.db.read() as s:
        assert s.get(Task, task_id).state == "ready"
