"""GET/POST /procedures, GET /procedures/{code}, GET /procedures/{code}/diagram."""

from __future__ import annotations

import io
import json
import re

from .helpers import BROKEN, FORM_STEPS, FOUR_STEPS, assert_problem


def upload(client, user, content: bytes, name="proc.bpmn", forms: dict | None = None):
    data = {"file": (io.BytesIO(content), name)}
    if forms:
        data["forms"] = [(io.BytesIO(v), k) for k, v in forms.items()]
    return client.post("/api/v1/procedures", user, data=data, content_type="multipart/form-data")


def changed_four_steps() -> bytes:
    return FOUR_STEPS.read_bytes().replace(b'value="3 working days"', b'value="4 working days"')


def test_catalogue(client):
    r = client.get("/api/v1/procedures", "chuyenvien")
    assert r.status_code == 200
    body = r.get_json()
    assert body["total"] == 2 and body["page"] == 1 and body["per_page"] == 100
    codes = [p["code"] for p in body["items"]]
    assert codes == ["9.000001", "9.000002"]
    p2 = body["items"][1]
    assert p2 == {
        **p2,
        "name": "Thủ tục thử có biểu mẫu",
        "version": 1,
        "agency": "000.31.14.H56",
        "deadline": "5 working days",
        "level": "toan_trinh",
        "fee": 20000,
    }
    r = client.get("/api/v1/procedures?q=9.000002", "chuyenvien")
    assert [p["code"] for p in r.get_json()["items"]] == ["9.000002"]
    r = client.get("/api/v1/procedures?q=biểu mẫu", "chuyenvien")
    assert [p["code"] for p in r.get_json()["items"]] == ["9.000002"]
    r = client.get("/api/v1/procedures?per_page=1&page=2", "chuyenvien")
    assert [p["code"] for p in r.get_json()["items"]] == ["9.000002"] and r.get_json()["total"] == 2


def test_catalogue_filters_by_level_and_agency_on_the_server(client):
    r = client.get("/api/v1/procedures?level=toan_trinh", "chuyenvien")
    assert [p["code"] for p in r.get_json()["items"]] == ["9.000002"]
    assert client.get("/api/v1/procedures?level=3", "chuyenvien").get_json()["total"] == 0
    r = client.get("/api/v1/procedures?agency=-", "chuyenvien")  # province-wide
    assert [p["code"] for p in r.get_json()["items"]] == ["9.000001"]
    r = client.get("/api/v1/procedures?agency=000.31.14.H56&level=toan_trinh&q=thử", "chuyenvien")
    assert [p["code"] for p in r.get_json()["items"]] == ["9.000002"]
    assert "level" in assert_problem(client.get("/api/v1/procedures?level=5", "chuyenvien"), 422)["fields"]


def test_catalogue_errors(client):
    assert_problem(client.get("/api/v1/procedures"), 401)
    body = assert_problem(client.get("/api/v1/procedures?per_page=1001", "chuyenvien"), 422)
    assert "per_page" in body["fields"]
    assert "page" in assert_problem(client.get("/api/v1/procedures?page=0", "chuyenvien"), 422)["fields"]


def test_deploy_new_version_then_identical_is_a_no_op(client):
    # four_steps.bpmn names no agency: a province-wide procedure, which only an admin deploys.
    r = upload(client, "admin", changed_four_steps(), "four_steps.bpmn")
    assert r.status_code == 201, r.get_json()
    assert r.get_json() == {"code": "9.000001", "version": 2, "created": True, "name": "Thủ tục thử", "warnings": []}
    r = upload(client, "admin", changed_four_steps(), "four_steps.bpmn")
    assert r.status_code == 200 and r.get_json()["created"] is False and r.get_json()["version"] == 2
    detail = client.get("/api/v1/procedures/9.000001", "analyst").get_json()
    assert [v["version"] for v in detail["versions"]] == [1, 2]
    assert detail["versions"][1]["deployed_by"] == "admin" and detail["versions"][1]["current"] is True
    assert detail["deadline"] == "4 working days"


def test_deploying_it_again_reformatted_answers_200_with_the_existing_version(client):
    """What the modeler sends when an analyst reopens a procedure and deploys it unchanged: the same
    process written out again (other indentation and attribute order, another file name)."""
    content = FORM_STEPS.read_bytes().replace(b"9.000002", b"9.000004")
    forms = {"intake.json": (FORM_STEPS.parent / "intake.json").read_bytes()}
    r = upload(client, "admin", content, "form_steps.bpmn", forms)
    assert r.status_code == 201 and r.get_json()["version"] == 1
    again = re.sub(rb">\s+<", b">\n    <", content).replace(
        'id="form_steps" name="Thủ tục thử có biểu mẫu" isExecutable="true"'.encode(),
        'isExecutable="true"  name="Thủ tục thử có biểu mẫu" id="form_steps"'.encode(),
    )
    assert b'isExecutable="true"  name=' in again and again.count(b">\n    <") > 5
    reformatted = {"intake.json": json.dumps(json.loads(forms["intake.json"]), indent=8).encode()}
    r = upload(client, "admin", again, "9.000004.bpmn", reformatted)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["created"] is False and r.get_json()["version"] == 1
    versions = client.get("/api/v1/procedures/9.000004", "admin").get_json()["versions"]
    assert [v["version"] for v in versions] == [1]


def test_deploy_with_form_files(client):
    content = FORM_STEPS.read_bytes().replace(b"9.000002", b"9.000003")
    forms = {"intake.json": (FORM_STEPS.parent / "intake.json").read_bytes()}
    r = upload(client, "admin", content, "form_steps.bpmn", forms)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["code"] == "9.000003"
    detail = client.get("/api/v1/procedures/9.000003", "tiepnhan").get_json()
    assert [f["key"] for f in detail["forms"]] == ["intake.json"]
    # Without its form file the same procedure is refused, naming the user task.
    r = upload(client, "admin", content.replace(b"9.000003", b"9.000004"), "form_steps.bpmn")
    body = assert_problem(r, 422)
    assert [p["element"] for p in body["problems"]] == ["intake"]


def test_deploy_refusal_lists_every_problem_with_element_ids(client):
    body = assert_problem(upload(client, "analyst", BROKEN.read_bytes(), "broken.bpmn"), 422, "procedure_invalid")
    elements = {p["element"] for p in body["problems"]}
    assert {"bad_flow", "broken"} <= elements
    assert all(p["message_vi"] and p["message_en"] for p in body["problems"])
    body = assert_problem(upload(client, "analyst", b"<not-xml", "x.bpmn"), 422)
    assert body["problems"]
    body = assert_problem(
        client.post("/api/v1/procedures", "analyst", data={}, content_type="multipart/form-data"), 422
    )
    assert "file" in body["fields"]


def test_deploy_needs_analyst_or_admin(client):
    assert_problem(upload(client, None, FOUR_STEPS.read_bytes()), 401)
    assert_problem(upload(client, "tiepnhan", FOUR_STEPS.read_bytes()), 403, "forbidden")
    assert_problem(upload(client, "supervisor", FOUR_STEPS.read_bytes()), 403)


def test_deploy_oversized_is_413(client, app):
    settings = app.extensions["motcua"].settings
    big = b"<x/>" + b" " * (settings.max_bpmn_bytes + 10)
    assert_problem(upload(client, "analyst", big), 413, "too_large")
    app.config["MAX_CONTENT_LENGTH"] = 1000  # the whole request, checked by werkzeug
    assert_problem(upload(client, "analyst", FOUR_STEPS.read_bytes() * 2), 413)


def test_details(client):
    r = client.get("/api/v1/procedures/9.000002", "chuyenvien")
    assert r.status_code == 200
    d = r.get_json()
    assert d["code"] == "9.000002" and d["version"] == 1 and d["process_id"] == "form_steps"
    assert d["user_tasks"] == [
        {
            "id": "intake",
            "name": "Kiểm tra hồ sơ",
            "roles": ["receiver"],
            "assignee": None,
            "form_key": "intake.json",
            "deadline": None,
            "status": None,
        },
        {
            "id": "appraise",
            "name": "Thẩm định",
            "roles": ["specialist"],
            "assignee": None,
            "form_key": None,
            "deadline": "2 working days",
            "status": None,
        },
    ]
    assert d["forms"][0]["schema"]["required"] == ["decision", "so_ban"]
    assert_problem(client.get("/api/v1/procedures/9.999999", "chuyenvien"), 404, "not_found")
    assert_problem(client.get("/api/v1/procedures/9.000002"), 401)


def test_diagram(client):
    r = client.get("/api/v1/procedures/9.000001/diagram", "chuyenvien")
    assert r.status_code == 200 and r.mimetype == "application/xml"
    assert r.data == FOUR_STEPS.read_bytes()
    assert 'filename="four_steps.bpmn"' in r.headers["Content-Disposition"]
    assert_problem(client.get("/api/v1/procedures/nope/diagram", "chuyenvien"), 404)
    assert_problem(client.get("/api/v1/procedures/9.000001/diagram"), 401)


def test_the_level_filter_reads_its_index(client, db):
    """Both catalogues' level filter (staff and public) is served by ix_procedures_level_code, on SQLite and
    PostgreSQL: the statements they run are explained, the planner told to avoid a scan where it can."""
    from sqlalchemy import event

    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, params, context, executemany):
        if "procedures.level" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        assert client.get("/api/v1/procedures?level=toan_trinh", "chuyenvien").get_json()["total"] == 1
        assert client.get("/api/v1/public/procedures?level=toan_trinh").get_json()["total"] == 1
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert len(seen) >= 2  # each catalogue's page (and its count) filters on the column
    postgres = db.engine.dialect.name == "postgresql"
    with db.engine.connect() as conn:
        if postgres:
            conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, params in seen:
            prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(prefix + statement, params))
            assert "ix_procedures_level_code" in plan, plan


def test_a_deploy_keeps_the_procedures_level(client, db):
    from sqlalchemy import select

    from engine.models import Procedure

    with db.read() as s:
        assert dict(s.execute(select(Procedure.code, Procedure.level)).all()) == {
            "9.000001": None,
            "9.000002": "toan_trinh",
        }
    content = FORM_STEPS.read_bytes().replace(b'value="toan_trinh"', b'value="3"')
    assert b'value="3"' in content
    forms = {"intake.json": (FORM_STEPS.parent / "intake.json").read_bytes()}
    assert upload(client, "admin", content, "form_steps.bpmn", forms).status_code == 201
    assert [p["code"] for p in client.get("/api/v1/procedures?level=3", "chuyenvien").get_json()["items"]] == [
        "9.000002"
    ]
    assert client.get("/api/v1/public/procedures?level=toan_trinh").get_json()["total"] == 0
