"""Over HTTP: POST/GET /dossiers/{code}/attachments, downloads, limits, and the checklist at intake."""

from __future__ import annotations

import io
from urllib.parse import quote

import pytest

from engine.procedures import deploy_bytes, form_files_beside
from tests.conftest import BPMN_DIR

from .helpers import assert_problem, new_dossier

PDF = b"%PDF-1.4\n" + b"1" * 300 + b"\n%%EOF\n"
BIRTH = BPMN_DIR / "birth_registration" / "birth_registration.bpmn"


@pytest.fixture
def code(app, client, db):
    deploy_bytes(db, BIRTH.read_bytes(), BIRTH.name, form_files_beside(BIRTH))  # `congdan` is a citizen
    return new_dossier(client, procedure="1.001193")["code"]


def upload(
    client, code, content=PDF, filename="Tờ khai.pdf", content_type="application/pdf", key="to_khai", user="tiepnhan"
):
    data = {"file": (io.BytesIO(content), filename, content_type)}
    if key:
        data["document_key"] = key
    return client.post(f"/api/v1/dossiers/{code}/attachments", user, data=data, content_type="multipart/form-data")


def test_upload_list_and_download(client, code):
    r = upload(client, code)
    assert r.status_code == 201, r.get_json()
    a = r.get_json()
    assert {"id", "document_key", "filename", "content_type", "size", "sha256", "uploaded_at", "uploaded_by"} <= set(a)
    assert a["filename"] == "Tờ khai.pdf" and a["content_type"] == "application/pdf" and a["size"] == len(PDF)
    assert a["uploaded_by"] == "tiepnhan" and a["document_key"] == "to_khai"
    r = client.get(f"/api/v1/dossiers/{code}/attachments", "chuyenvien")
    assert r.status_code == 200 and [x["id"] for x in r.get_json()["items"]] == [a["id"]]
    r = client.get(f"/api/v1/dossiers/{code}/attachments/{a['id']}", "chuyenvien")
    assert r.status_code == 200 and r.data == PDF
    assert r.mimetype == "application/pdf"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"filename*=UTF-8''{quote('Tờ khai.pdf', safe='')}" in disposition
    r = client.get(f"/api/v1/dossiers/{code}/history", "tiepnhan")
    assert "attachment.added" in [e["action"] for e in r.get_json()["events"]]


def test_too_large_is_413(app, client, code):
    app.extensions["motcua"].settings.max_upload_bytes = 50
    assert_problem(upload(client, code, key=None), 413, "too_large")


def test_a_type_that_lies_is_422(client, code):
    body = assert_problem(upload(client, code, content=b"hello, I am text", filename="x.pdf"), 422)
    assert "application/pdf" in body["detail"]


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\x", "/etc/passwd", "a\x00b.pdf"])
def test_path_traversal_is_422(client, code, name, settings):
    assert_problem(upload(client, code, filename=name), 422)
    root = settings.var_dir / "attachments"
    assert not [p for p in root.rglob("*") if p.is_file()] if root.exists() else True


def test_access(client, code):
    a = upload(client, code).get_json()
    url = f"/api/v1/dossiers/{code}/attachments/{a['id']}"
    assert_problem(client.get(url, "khac"), 404)  # another agency
    assert_problem(client.get(f"/api/v1/dossiers/{code}/attachments", "khac"), 404)
    assert_problem(client.get(url, "congdan"), 403)  # of the agency, but no staff role
    assert_problem(client.get(url), 401)
    assert_problem(upload(client, code, user="chuyenvien"), 403)  # staff without the receiver role
    assert_problem(upload(client, code, user="khac"), 404)
    assert_problem(client.get(f"/api/v1/dossiers/{code}/attachments/999999", "tiepnhan"), 404)
    assert client.get(url, "supervisor").status_code == 200


def test_missing_file_is_422(client, code):
    r = client.post(
        f"/api/v1/dossiers/{code}/attachments",
        "tiepnhan",
        data={"document_key": "to_khai"},
        content_type="multipart/form-data",
    )
    assert_problem(r, 422)


def _intake(client, code, data):
    task = client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()["tasks"][0]
    return client.post(
        f"/api/v1/tasks/{task['id']}/complete",
        "tiepnhan",
        json={"data": {"requester_relationship": "mother", "decision": "accept", **data}},
    )


def test_a_missing_document_blocks_intake_until_uploaded(client, code):
    body = assert_problem(_intake(client, code, {"documents_received": ["to_khai", "giay_chung_sinh"]}), 422)
    assert "giay_to_tuy_than" in body["fields"]["documents_received"]
    assert client.get(f"/api/v1/dossiers/{code}", "tiepnhan").get_json()["status"] == "received"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    assert (
        upload(
            client, code, content=png, filename="cccd.png", content_type="image/png", key="giay_to_tuy_than"
        ).status_code
        == 201
    )
    r = _intake(client, code, {"documents_received": ["to_khai", "giay_chung_sinh"]})
    assert r.status_code == 200, r.get_json()


def test_openapi_documents_the_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    post = spec["paths"]["/api/v1/dossiers/{code}/attachments"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"201", "413", "422"} <= set(post["responses"])
    get = spec["paths"]["/api/v1/dossiers/{code}/attachments/{attachment_id}"]["get"]
    assert "application/pdf" in get["responses"]["200"]["content"]


def test_attachment_id_beyond_the_column_range_is_404(client, code):
    r = client.get(f"/api/v1/dossiers/{code}/attachments/{2**40}", "tiepnhan")
    assert r.status_code == 404


def test_the_list_gives_each_checklist_entry_its_state(client, code):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    upload(client, code, content=png, filename="cccd.png", content_type="image/png", key="giay_to_tuy_than")
    body = client.get(f"/api/v1/dossiers/{code}/attachments", "tiepnhan").get_json()
    states = {d["key"]: d["state"] for d in body["documents"]}
    assert states["giay_to_tuy_than"] == "attached" and states["to_khai"] == "missing"
    assert body["uploadable"] is True and body["removable"] is True
    assert client.get(f"/api/v1/dossiers/{code}/attachments", "chuyenvien").get_json()["removable"] is False
    # documents ticked as received on paper at intake are "paper", never "missing": here, on the receipt's
    # source (/steps) and in the list
    assert _intake(client, code, {"documents_received": ["to_khai", "giay_chung_sinh"]}).status_code == 200
    body = client.get(f"/api/v1/dossiers/{code}/attachments", "tiepnhan").get_json()
    states = {d["key"]: d["state"] for d in body["documents"]}
    assert states == {**states, "to_khai": "paper", "giay_chung_sinh": "paper", "giay_to_tuy_than": "attached"}
    assert "missing" not in {d["state"] for d in body["documents"] if d["required"]}
    steps = client.get(f"/api/v1/dossiers/{code}/steps", "tiepnhan").get_json()
    assert {d["key"]: d["state"] for d in steps["documents"]} == states
    assert body["removable"] is False and body["uploadable"] is True


def test_a_document_is_removed_only_before_intake_is_completed(client, code):
    first = upload(client, code).get_json()
    second = upload(client, code, filename="Tờ khai (bản 2).pdf").get_json()
    url = f"/api/v1/dossiers/{code}/attachments/{first['id']}"
    assert_problem(client.delete(url), 401)
    assert_problem(client.delete(url, "chuyenvien"), 403)  # staff, not a receiver
    assert_problem(client.delete(url, "khac"), 404)  # another agency's dossier
    assert_problem(client.delete(f"/api/v1/dossiers/{code}/attachments/999999", "tiepnhan"), 404)
    r = client.delete(url, "tiepnhan")
    assert r.status_code == 204
    items = client.get(f"/api/v1/dossiers/{code}/attachments", "tiepnhan").get_json()["items"]
    assert [a["id"] for a in items] == [second["id"]]
    assert_problem(client.get(url, "tiepnhan"), 404)
    assert client.get(f"/api/v1/dossiers/{code}/attachments/{second['id']}", "tiepnhan").data == PDF  # same bytes
    events = client.get(f"/api/v1/dossiers/{code}/history", "tiepnhan").get_json()["events"]
    removed = [e for e in events if e["action"] == "attachment.removed"]
    assert len(removed) == 1 and removed[0]["details"]["filename"] == "Tờ khai.pdf"
    # once intake is completed the documents are part of the record
    assert _intake(client, code, {"documents_received": ["giay_chung_sinh", "giay_to_tuy_than"]}).status_code == 200
    body = assert_problem(
        client.delete(f"/api/v1/dossiers/{code}/attachments/{second['id']}", "tiepnhan"), 409, "conflict"
    )
    assert "intake" in body["detail"] or "tiếp nhận" in body["detail"]
    assert len(client.get(f"/api/v1/dossiers/{code}/attachments", "tiepnhan").get_json()["items"]) == 1
