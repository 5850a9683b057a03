"""GET /healthz, the OpenAPI document and the self-contained docs page, error bodies of unknown routes."""

from __future__ import annotations

import re

from api import create_app
from engine.config import Settings

from .helpers import assert_problem


def test_healthz(client):
    r = client.raw.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_503_when_the_database_does_not_answer(tmp_path):
    settings = Settings(
        var_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path}/missing/dir/x.db", secret_key="k" * 32
    )
    r = create_app(settings).test_client().get("/healthz")
    assert_problem(r, 503, "unavailable")


def test_openapi_document(client):
    r = client.raw.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.get_json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    expected = {
        ("post", "/api/v1/auth/token"),
        ("get", "/api/v1/procedures"),
        ("post", "/api/v1/procedures"),
        ("get", "/api/v1/procedures/{code}"),
        ("get", "/api/v1/procedures/{code}/diagram"),
        ("post", "/api/v1/dossiers"),
        ("get", "/api/v1/dossiers"),
        ("get", "/api/v1/dossiers/{code}"),
        ("get", "/api/v1/dossiers/{code}/history"),
        ("get", "/api/v1/tasks"),
        ("get", "/api/v1/tasks/{task_id}"),
        ("post", "/api/v1/tasks/{task_id}/claim"),
        ("post", "/api/v1/tasks/{task_id}/unclaim"),
        ("post", "/api/v1/tasks/{task_id}/complete"),
        ("get", "/api/v1/public/dossiers/{code}"),
        ("get", "/healthz"),
    }
    present = {(m, p) for p, item in paths.items() for m in item if m != "parameters"}
    assert expected <= present
    for method, path in expected:
        op = paths[path][method]
        assert "default" not in op["responses"]
        public = op.get("security") == []
        if not public:
            assert "401" in op["responses"], (method, path)
        for code, resp in op["responses"].items():
            if code.startswith(("4", "5")):
                ref = resp.get("$ref")
                if ref:
                    resp = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
                assert list(resp["content"]) == ["application/problem+json"], (method, path, code)


def test_docs_page_is_self_contained_and_lists_every_operation(client):
    r = client.raw.get("/api/v1/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    spec = client.raw.get("/api/v1/openapi.json").get_json()
    for path, item in spec["paths"].items():
        for method in item:
            if method != "parameters":
                assert f'data-method="{method.upper()}" data-path="{path}"' in html, (method, path)
    for name in ("task_id", "code"):  # path parameters get an input in the "try it" forms
        assert f'data-in="path" name="{name}"' in html
    # nothing from another origin: every src/href is local or an in-page anchor
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert refs and all(ref.startswith(("/", "#")) for ref in refs), refs
    for asset in ("/api/v1/docs/docs.js", "/api/v1/docs/docs.css"):
        a = client.raw.get(asset)
        assert a.status_code == 200 and b"http://" not in a.data and b"https://" not in a.data


def test_unknown_route_and_method_are_problems(client):
    assert_problem(client.raw.get("/api/v1/nothing-here"), 404)
    r = client.raw.delete("/api/v1/dossiers")
    assert_problem(r, 405)
    assert "GET" in r.headers["Allow"]


def test_text_no_database_can_store_is_refused_everywhere(client):
    p = assert_problem(client.get("/api/v1/dossiers?q=a%00b", "canbo"), 422)
    assert "q" in p["fields"]
    assert_problem(client.get("/api/v1/dossiers/H56%00", "canbo"), 404)
    p = assert_problem(
        client.post(
            "/api/v1/dossiers",
            "tiepnhan",
            data='{"procedure_code": "9.000001", "applicant": {"name": "A\\u0000"}, "data": {"x": ["\\ud800"]}}',
            content_type="application/json",
        ),
        422,
    )
    assert set(p["fields"]) == {"applicant.name", "data.x.0"}
    assert client.get("/api/v1/dossiers", "canbo").get_json()["total"] == 0
