"""Connectors through the API: deploy refuses a service task whose URL is off its connector's allow-list,
naming the element; a failed call to the population register is an incident on the dossier that an officer
of its agency retries (docs/bpmn-conventions.md, "Bước dịch vụ / Connectors")."""

from __future__ import annotations

import io
import json

import pytest

from engine import connectors
from engine.procedures import form_files_beside

from ..fake_register import FakeRegister
from .helpers import ROOT, assert_problem

ID_CHECK = ROOT / "tests" / "data" / "connectors" / "id_check.bpmn"
FORMS = form_files_beside(ROOT / "tests" / "data" / "online" / "online_fee.bpmn")


@pytest.fixture
def register(monkeypatch):
    r = FakeRegister().start()
    config = {"population_register": {"urls": [r.url], "path": "/citizens/verify", "timeout": 1, "retries": 1}}
    monkeypatch.setenv(connectors.CONFIG_ENV, json.dumps(config))
    yield r
    r.stop()


def upload(client, content: bytes):
    data = {"file": (io.BytesIO(content), "id_check.bpmn"), "forms": [(io.BytesIO(v), k) for k, v in FORMS.items()]}
    return client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")


def test_deploy_refuses_a_url_off_the_allow_list_naming_the_element(client, register):
    off_list = ID_CHECK.read_bytes().replace(
        b'<camunda:property name="connector" value="population_register"/>',
        b'<camunda:property name="connector" value="population_register"/>'
        b'<camunda:property name="url" value="http://10.0.0.9:8080"/>',
    )
    body = assert_problem(upload(client, off_list), 422, "procedure_invalid")
    assert [p["element"] for p in body["problems"]] == ["Service_CheckId"]
    assert "http://10.0.0.9:8080" in body["problems"][0]["message_vi"]
    r = upload(client, ID_CHECK.read_bytes())
    assert r.status_code == 201, r.get_json()


def test_an_incident_is_shown_and_retried_by_an_officer_of_the_agency(app, client, register):
    assert upload(client, ID_CHECK.read_bytes()).status_code == 201
    register.mode = "error"
    body = {
        "procedure_code": "9.000601",
        "applicant": {"name": "Trần Văn Bình", "id_number": "001099001234", "phone": "0987654321"},
        "channel": 1,
        "data": {"purpose": "Xin việc"},
    }
    r = client.post("/api/v1/dossiers", "tiepnhan", json=body)
    assert r.status_code == 201, r.get_json()
    code = r.get_json()["code"]
    service = app.extensions["motcua"].dossiers
    r = client.get(f"/api/v1/dossiers/{code}/incidents", "tiepnhan")
    assert [(i["element"], i["state"]) for i in r.get_json()] == [("Service_CheckId", "pending")]
    assert connectors.run_due(service) == {"done": 0, "incidents": 1}
    (incident,) = client.get(f"/api/v1/dossiers/{code}/incidents", "tiepnhan").get_json()
    assert incident["state"] == "incident" and incident["attempts"] == 1 and "HTTP 500" in incident["error"]
    retry = f"/api/v1/dossiers/{code}/incidents/{incident['id']}/retry"
    assert_problem(client.post(retry), 401)
    assert_problem(client.post(retry, "congdan"), 403)  # not staff: refused before anything is read
    assert_problem(client.post(retry, "khac"), 404)  # another agency's dossier is not there for them
    assert_problem(client.post(f"/api/v1/dossiers/{code}/incidents/{'0' * 36}/retry", "tiepnhan"), 404)
    assert_problem(client.post(f"/api/v1/dossiers/{code}/incidents/x;y/retry", "tiepnhan"), 422)
    register.mode = "ok"
    r = client.post(retry, "tiepnhan")
    assert r.status_code == 200 and r.get_json()["state"] == "pending", r.get_json()
    assert_problem(client.post(retry, "tiepnhan"), 409)
    assert connectors.run_due(service) == {"done": 1, "incidents": 0}
    assert client.get(f"/api/v1/dossiers/{code}/incidents", "tiepnhan").get_json() == []
    d = client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"] and d["data"]["id_verified"] is True
    events = client.get(f"/api/v1/dossiers/{code}/history", "tiepnhan").get_json()["events"]
    assert {"connector_incident", "connector_retry", "connector_called"} <= {e["action"] for e in events}
