"""User data is data: no shape of JSON in intake or task data is ever restored as an engine object.

SpiffWorkflow's serializer turns any dict with a `typename` key back into the registered class; the state
store escapes such keys (engine/workflow_state.py). Each test restarts the service (a new application over
the same database, so the live-workflow cache is empty) and works the dossier from its stored state.
"""

from __future__ import annotations

import pytest

from api import create_app

from .helpers import new_dossier

ODD_SHAPES = [
    {"ghi_chu": {"typename": "BpmnWorkflow", "x": 1}},
    {"typename": "BpmnWorkflow"},
    {"a": [{"typename": "UUID", "value": "not-a-uuid"}, [{"typename": "datetime", "value": "x"}]]},
    {"deep": {"b": {"c": [{"d": {"typename": "BpmnEvent", "payload": {}}}]}}},
    {"~typename": "x", "~": {"~~typename": {"typename": "timedelta"}}, "~~": ["~typename"]},
    {"typename": {"typename": {"typename": "Task"}}},
    {"k": {"typename": None}, "l": {"typename": 5}, "m": {"typename": ["BpmnWorkflow"]}},
    {"~": [["typename", "BpmnWorkflow"]], "e": {"~": []}, "f": [{"~": [["a", {"typename": "UUID"}]]}]},
]


def restarted(app):
    """A fresh application over the same database and settings: nothing cached in memory."""
    svc = app.extensions["motcua"]
    fresh = create_app(svc.settings, database=svc.db)
    fresh.config["TESTING"] = True
    return fresh


@pytest.mark.parametrize("shape", ODD_SHAPES, ids=range(len(ODD_SHAPES)))
def test_intake_data_of_any_shape_survives_a_restart(client, app, shape):
    d = new_dossier(client, data=shape)
    client.app = restarted(app)
    client.raw = client.app.test_client()
    r = client.get(f"/api/v1/dossiers/{d['code']}", "tiepnhan")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["data"] == shape
    r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "tiepnhan", json={"data": {"decision": "accept"}})
    assert r.status_code == 200, r.get_json()
    # the next step, restored again from the database after another restart, carries the same data
    client.app = restarted(app)
    client.raw = client.app.test_client()
    r = client.get(f"/api/v1/dossiers/{d['code']}", "chuyenvien")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["data"] == {**shape, "decision": "accept"}
    task = next(t for t in r.get_json()["tasks"] if t["state"] == "ready")
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", "chuyenvien", json={"data": shape})
    assert r.status_code == 200, r.get_json()


def test_task_data_with_typename_keys_at_the_step(client, app):
    d = new_dossier(client)
    shape = {"decision": "accept", "y_kien": {"typename": "BpmnWorkflow", "spec": [{"typename": "UUID"}]}}
    r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "tiepnhan", json={"data": shape})
    assert r.status_code == 200, r.get_json()
    client.app = restarted(app)
    client.raw = client.app.test_client()
    r = client.get(f"/api/v1/dossiers/{d['code']}", "chuyenvien")
    assert r.status_code == 200 and r.get_json()["data"]["y_kien"] == shape["y_kien"]
    task = next(t for t in r.get_json()["tasks"] if t["state"] == "ready")
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", "chuyenvien", json={"data": {}})
    assert r.status_code == 200, r.get_json()


def test_a_state_stored_before_the_escape_still_restores(client, app):
    """A state without the `data_escaped` marker is read as it was written: a dict whose only key is `~`
    stays that dict (in an escaped state it would be the escape)."""
    import zlib

    from sqlalchemy import select, update

    from engine.models import Dossier, WorkflowState

    shape = {"x": {"~": [["a", 1]]}}
    d = new_dossier(client, data=shape)
    db = app.extensions["motcua"].db
    with db.uow() as s:
        dossier_id = s.scalar(select(Dossier.id).where(Dossier.code == d["code"]))
        blob = s.scalar(select(WorkflowState.state).where(WorkflowState.dossier_id == dossier_id))
        text = zlib.decompress(blob).decode()
        escaped = '{"~":[["~",[["a",1]]]]}'
        assert escaped in text and ',"data_escaped":1' in text
        legacy = text.replace(escaped, '{"~":[["a",1]]}').replace(',"data_escaped":1', "")  # as stored before
        s.execute(
            update(WorkflowState)
            .where(WorkflowState.dossier_id == dossier_id)
            .values(state=zlib.compress(legacy.encode()))
        )
    client.app = restarted(app)
    client.raw = client.app.test_client()
    r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "tiepnhan", json={"data": {"decision": "accept"}})
    assert r.status_code == 200, r.get_json()
    with db.read() as s:
        blob = s.scalar(select(WorkflowState.state).where(WorkflowState.dossier_id == dossier_id))
    assert escaped in zlib.decompress(blob).decode()  # read as the same dict, stored again escaped
