"""The test procedure of tests/data/web_forms (a JSON Schema form with conditions, amounts, dates and rows, and
a form-js form with a conditional field and a dynamic list), deployed into the browser tests' server."""

from __future__ import annotations

from .conftest import ROOT, LiveServer

WEB_FORMS_CODE = "9.000013"
WEB_FORMS = ROOT / "tests" / "data" / "web_forms" / "web_forms.bpmn"


def deploy_web_forms(server: LiveServer) -> None:
    from engine.procedures import deploy, load_path

    with server.db.uow() as s:
        deploy(s, load_path(WEB_FORMS), "e2e")  # a no-op when already deployed


def web_forms_deployed(server: LiveServer) -> int:
    """1 when a test deployed the web-forms procedure on `server` (the catalogue counts it), else 0."""
    from sqlalchemy import func, select

    from engine.models import Procedure

    with server.db.read() as s:
        return s.scalar(select(func.count()).where(Procedure.code == WEB_FORMS_CODE)) or 0


def start_web_forms_dossier(server: LiveServer, intake: dict | None = None, review: dict | None = None) -> str:
    """A dossier of the test procedure, its steps completed with `intake` and `review` (when given)."""
    from engine.auth import load_actor

    svc = server.app.extensions["motcua"].dossiers
    with server.db.read() as s:
        receiver = load_actor(s, "tiepnhan")
    d = svc.start_dossier(receiver, WEB_FORMS_CODE, {"name": "Trần Văn Hùng", "id_number": "001090001234"})
    for data in (intake, review):
        if data is None:
            break
        task = svc.get_dossier(receiver, d["code"])["tasks"][0]
        svc.complete_task(receiver, task["id"], data)
    return d["code"]
