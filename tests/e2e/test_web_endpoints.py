"""The web pages' server side without a browser: every page renders (Vietnamese, phone viewport, no CDN), and
the pages' own endpoints (counts per step, steps of a dossier, validation without deploying) answer as the
OpenAPI document says, with the API's rules on roles and agencies."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "api" / "web"
BIRTH = ROOT / "bpmn" / "birth_registration" / "birth_registration.bpmn"

PAGES = [
    "/",
    "/login",
    "/inbox",
    "/tasks/abc",
    "/dossiers",
    "/dossiers/new",
    "/dossiers/H56-260101-0001",
    "/dossiers/H56-260101-0001/receipt",
    "/dossiers/H56-260101-0001/control-slip",
    "/procedures",
    "/procedures/1.001193",
    "/modeler",
    "/modeler/1.001193",
    "/supervisor",
    "/supervisor/report",
    "/admin/dead-letters",
    "/tra-cuu",
    "/cong-dan",
    "/cong-dan/thu-tuc/1.001193",
    "/cong-dan/dang-nhap",
    "/cong-dan/ho-so",
    "/cong-dan/ho-so/H56-260101-0001",
    "/cong-dan/thanh-toan/ket-qua",
]


@pytest.fixture
def app(settings, db):
    from api import create_app
    from engine.demo import create_demo_accounts
    from engine.procedures import deploy, load_path

    with db.uow() as s:
        deploy(s, load_path(BIRTH), "test")
    create_demo_accounts(db)
    settings.secret_key = "web-endpoint-tests-" + "s" * 32
    return create_app(settings, database=db)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The pages need no data: one app for every page test."""
    from api import create_app
    from engine.config import Settings

    tmp = tmp_path_factory.mktemp("pages")
    settings = Settings(var_dir=tmp, database_url=f"sqlite:///{tmp / 'pages.db'}", secret_key="p" * 40)
    return create_app(settings).test_client()


def token(client, username):
    r = client.post("/api/v1/auth/token", json={"username": username, "password": "motcua-demo"})
    assert r.status_code == 200, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['access_token']}"}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_vietnamese_first_for_phones(pages, path):
    r = pages.get(path)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert '<html lang="vi">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert 'data-page="' in html
    # Everything is served by the app itself: no script or stylesheet from another host.
    for src in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"^(https?:)?//", src), src


def test_pages_load_their_own_bundle(pages):
    client = pages
    html = client.get("/modeler").get_data(as_text=True)
    assert re.search(r'src="/web-static/dist/modeler\.js\?v=\d+"', html)
    assert re.search(r'href="/web-static/dist/bpmn-vendor\.css\?v=\d+"', html)
    assert re.search(r'src="/web-static/dist/app\.js\?v=\d+"', client.get("/inbox").get_data(as_text=True))
    assert client.get("/favicon.ico").status_code == 200
    assert client.get("/lookup").status_code == 302


def test_sources_load_nothing_from_a_cdn():
    for path in list((WEB / "src").rglob("*")) + list((WEB / "templates").rglob("*.html")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"(src|href)=[\"']https?://", text), path
            assert "unpkg.com" not in text and "cdn.jsdelivr" not in text and "cdnjs" not in text, path


def test_counts_per_step(client, app):
    from engine.auth import load_actor

    svc = app.extensions["motcua"]
    with svc.db.read() as s:
        receiver = load_actor(s, "tiepnhan")
    svc.dossiers.start_dossier(receiver, "1.001193", {"name": "Nguyễn Văn A"})
    svc.dossiers.start_dossier(receiver, "1.001193", {"name": "Trần Thị B"})
    r = client.get("/api/v1/procedures/1.001193/counts", headers=token(client, "analyst"))
    assert r.status_code == 200
    body = r.get_json()
    assert body["counts"] == {"Task_Intake": {"ready": 2, "overdue": 0, "claimed": 0, "waiting": 0}}
    assert body["total"] == 2 and body["version"] == 1
    assert client.get("/api/v1/procedures/1.001193/counts").status_code == 401
    r = client.get("/api/v1/procedures/0.000000/counts", headers=token(client, "analyst"))
    assert r.status_code == 404 and r.mimetype == "application/problem+json"


def test_steps_of_a_dossier_for_the_slips(client, app):
    from engine.auth import load_actor

    svc = app.extensions["motcua"]
    with svc.db.read() as s:
        receiver = load_actor(s, "tiepnhan")
    d = svc.dossiers.start_dossier(receiver, "1.001193", {"name": "Nguyễn Văn A", "id_number": "001190012345"})
    task_id = d["tasks"][0]["id"]
    svc.dossiers.claim(receiver, task_id)
    svc.dossiers.complete_task(
        receiver,
        task_id,
        {
            "requester_relationship": "father",
            "decision": "accept",
            "documents_received": ["to_khai", "giay_chung_sinh", "giay_to_tuy_than"],
        },
    )
    r = client.get(f"/api/v1/dossiers/{d['code']}/steps", headers=token(client, "tiepnhan"))
    assert r.status_code == 200
    body = r.get_json()
    assert body["procedure"]["code"] == "1.001193" and body["procedure"]["deadline"] == "0 days"
    assert body["received_by"] == {"username": "tiepnhan", "full_name": "Cán bộ một cửa"}
    first, second = body["steps"]
    assert first["spec_name"] == "Task_Intake" and first["state"] == "completed"
    assert first["completed_by"] == "tiepnhan" and first["completed_by_name"] == "Cán bộ một cửa"
    assert first["on_time"] is True and first["due_at"] and first["completed_at"]
    assert second["spec_name"] == "Task_Appraisal" and second["state"] == "ready"
    docs = {doc["key"]: doc for doc in body["documents"]}
    assert docs["giay_chung_sinh"]["required"] is True and docs["van_ban_uy_quyen"]["required"] is False
    # Another agency's officer does not see it.
    from engine.auth import add_user

    with svc.db.uow() as s:
        add_user(s, "khac", "motcua-demo", ["receiver"], "000.00.00.H99")
    assert client.get(f"/api/v1/dossiers/{d['code']}/steps", headers=token(client, "khac")).status_code == 404
    assert client.get(f"/api/v1/dossiers/{d['code']}/steps", headers=token(client, "supervisor")).status_code == 200


def _upload(content: bytes, forms: dict | None = None):
    data = {"file": (io.BytesIO(content), "procedure.bpmn")}
    for i, (name, text) in enumerate((forms or {}).items()):
        data[f"forms{i}"] = (io.BytesIO(text), name)
    return data


def test_validate_without_deploying(client):
    analyst = token(client, "analyst")
    forms = {p.name: p.read_bytes() for p in BIRTH.parent.glob("*.json")}
    r = client.post(
        "/api/v1/procedures/validate",
        headers=analyst,
        data=_upload(BIRTH.read_bytes(), forms),
        content_type="multipart/form-data",
    )
    assert r.status_code == 200
    assert r.get_json() | {"warnings": []} == {
        "valid": True,
        "code": "1.001193",
        "name": "Đăng ký khai sinh",
        "process_id": "birth_registration",
        "problems": [],
        "warnings": [],
    }
    # A broken step deadline and a missing form: each problem names its element; nothing is deployed.
    bad = BIRTH.read_bytes().replace(b'name="deadline" value="1 working hours"', b'name="deadline" value="ba ngay"', 1)
    assert bad != BIRTH.read_bytes()
    r = client.post(
        "/api/v1/procedures/validate", headers=analyst, data=_upload(bad), content_type="multipart/form-data"
    )
    body = r.get_json()
    assert r.status_code == 200 and body["valid"] is False
    elements = {p["element"] for p in body["problems"]}
    assert "Task_Intake" in elements and all(p["message_vi"] for p in body["problems"])
    assert any("ba ngay" in p["message_en"] for p in body["problems"])
    catalogue = client.get("/api/v1/procedures", headers=analyst).get_json()
    assert [p["version"] for p in catalogue["items"]] == [1]
    # Only analysts (and admins) validate.
    r = client.post(
        "/api/v1/procedures/validate",
        headers=token(client, "tiepnhan"),
        data=_upload(bad),
        content_type="multipart/form-data",
    )
    assert r.status_code == 403
    r = client.post("/api/v1/procedures/validate", headers=analyst, data={}, content_type="multipart/form-data")
    assert r.status_code == 422 and "file" in r.get_json()["fields"]
    r = client.post(
        "/api/v1/procedures/validate", headers=analyst, data=_upload(b"<not-bpmn/>"), content_type="multipart/form-data"
    )
    assert r.status_code == 200 and r.get_json()["valid"] is False


def test_endpoints_are_in_the_openapi_document(pages):
    doc = pages.get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/procedures/{code}/counts", "/api/v1/dossiers/{code}/steps", "/api/v1/procedures/validate"):
        assert path in doc["paths"], path
