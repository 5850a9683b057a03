"""Decision tables through the API: a .dmn file uploaded with the .bpmn, a bad table refused with a 422
naming the element, the decided fee on the receipt (GET /dossiers/{code}/steps) and in the online payment
order (docs/bpmn-conventions.md, "Bảng quyết định / Decision tables")."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from engine.models import Payment
from engine.procedures import form_files_beside

from ..conftest import BPMN_DIR
from .helpers import PAY_SECRET, ROOT, assert_problem, new_dossier

ONLINE = ROOT / "tests" / "data" / "online" / "online_fee.bpmn"
FEE_DMN = (BPMN_DIR / "permanent_residence" / "fee.dmn").read_bytes()
CODE = "9.000310"


def with_fee_table(decision="permanent_residence_fee") -> bytes:
    """The online test procedure with a business rule task deciding its fee before the intake."""
    content = ONLINE.read_bytes().decode()
    content = content.replace('value="9.000301"', f'value="{CODE}"').replace('id="online_fee"', 'id="online_dmn"')
    flow = '<bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_Submitted" targetRef="Task_Intake"/>'
    assert flow in content
    content = content.replace(
        flow,
        '<bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_Submitted" targetRef="Task_Fee"/>'
        f'<bpmn:businessRuleTask id="Task_Fee" name="Tính lệ phí" camunda:decisionRef="{decision}"/>'
        '<bpmn:sequenceFlow id="Flow_Fee" sourceRef="Task_Fee" targetRef="Task_Intake"/>',
    )
    return content.encode()


def upload(client, user, bpmn: bytes, files: dict[str, bytes]):
    data = {"file": (io.BytesIO(bpmn), "online_dmn.bpmn"), "forms": [(io.BytesIO(v), k) for k, v in files.items()]}
    return client.post("/api/v1/procedures", user, data=data, content_type="multipart/form-data")


@pytest.fixture
def c(client, settings, gateway):
    settings.online.pay_secret = PAY_SECRET
    settings.online.pay_url = gateway.url + "/pay"
    settings.online.public_url = "http://motcua.test"
    r = upload(client, "analyst", with_fee_table(), {**form_files_beside(ONLINE), "fee.dmn": FEE_DMN})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["version"] == 1 and r.get_json()["warnings"] == []
    return client


def test_deploy_with_a_table_and_the_receipt_shows_the_desk_fee(c):
    d = new_dossier(c, procedure=CODE, data={"purpose": "Xin việc"})
    assert [t["spec_name"] for t in d["tasks"]] == ["Task_Intake"]
    steps = c.get(f"/api/v1/dossiers/{d['code']}/steps", "tiepnhan").get_json()
    assert steps["fee"] == 20000 and steps["procedure"]["fee"] == 15000


def test_an_online_dossier_pays_the_online_fee_the_table_decided(c, gateway):
    body = {
        "procedure_code": CODE,
        "applicant": {"name": "Trần Văn Bình", "id_number": "001099001234", "phone": "0987654321"},
        "data": {"purpose": "Xin việc"},
    }
    r = c.post("/api/v1/public/dossiers", json=body)
    assert r.status_code == 201, r.get_json()
    code = r.get_json()["code"]
    task = next(
        t for t in c.get("/api/v1/tasks?per_page=100", "tiepnhan").get_json()["items"] if t["dossier_code"] == code
    )
    r = c.post(
        f"/api/v1/tasks/{task['id']}/complete",
        "tiepnhan",
        json={"data": {"purpose": "Xin việc", "decision": "accept", "documents_received": ["to_khai"]}},
    )
    assert r.status_code == 200 and r.get_json()["status"] == "payment_required", r.get_json()
    with c.app.extensions["motcua"].db.read() as s:
        assert s.scalars(select(Payment.amount)).all() == [10000]
    assert c.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()["fee"] == 10000


def test_a_unique_table_with_overlapping_rules_is_refused_naming_the_rules(client):
    overlapping = FEE_DMN.replace(b"<text>? in (1, 3)</text>", b"<text>? in (1, 2, 3)</text>")
    r = upload(client, "analyst", with_fee_table(), {**form_files_beside(ONLINE), "fee.dmn": overlapping})
    body = assert_problem(r, 422)
    problems = body["problems"]
    assert [p["element"] for p in problems] == ["Rule_Desk"]
    assert "'Rule_Desk' and 'Rule_Online' overlap" in problems[0]["message_en"]
    assert "cùng khớp" in problems[0]["message_vi"]
    assert client.get(f"/api/v1/procedures/{CODE}", "analyst").status_code == 404  # nothing deployed


def test_a_missing_table_is_refused_naming_the_task(client):
    r = upload(client, "analyst", with_fee_table("no_such_table"), {**form_files_beside(ONLINE), "fee.dmn": FEE_DMN})
    problems = assert_problem(r, 422)["problems"]
    assert [p["element"] for p in problems] == ["Task_Fee"] and "no_such_table" in problems[0]["message_en"]
