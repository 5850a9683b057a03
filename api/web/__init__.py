"""The web pages: analysts model and deploy in the browser, officers work their inbox,
supervisors watch, citizens look up.

Pages are server-rendered shells (Jinja templates, Vietnamese first); their data comes from /api/v1 through
a little JavaScript that keeps the bearer token in sessionStorage. The JavaScript and the diagram editor's
styles are bundled by esbuild from `api/web/src/` into `api/web/static/dist/` (`make web`, run by
`make install`, `make run` and `make test`); nothing is loaded from a CDN.

`bp` is the (plain) blueprint of the pages; `init_app` adds `endpoints.blp`, the few endpoints the pages
need that the core API does not have (counts per step, the steps of a dossier, validation without
deploying), to the OpenAPI-documented API.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, redirect, render_template, request, send_from_directory, url_for

HERE = Path(__file__).resolve().parent
DIST = HERE / "static" / "dist"

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/web-static")


def bundle_missing() -> bool:
    return not (DIST / "app.js").exists()


@bp.app_context_processor
def _assets():
    def asset(name: str) -> str:
        path = DIST / name
        version = int(path.stat().st_mtime) if path.exists() else 0
        return url_for("web.static", filename=f"dist/{name}", v=version)

    return {"asset": asset, "bundle_missing": bundle_missing()}


def _page(template: str, page: str, **kw):
    return render_template(f"web/{template}", page=page, **kw)


@bp.get("/")
def home():
    return _page("home.html", "home")


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(HERE / "static", "favicon.svg", mimetype="image/svg+xml")


@bp.get("/login")
def login():
    return _page("login.html", "login")


# -- officers ----------------------------------------------------------------------------------------
@bp.get("/inbox")
def inbox():
    return _page("inbox.html", "inbox")


@bp.get("/tasks/<task_id>")
def task(task_id: str):
    if len(task_id) > 64:
        abort(404)
    return _page("task.html", "task", task_id=task_id)


@bp.get("/dossiers")
def dossiers():
    return _page("dossiers.html", "dossiers")


@bp.get("/dossiers/new")
def new_dossier():
    return _page("new_dossier.html", "new-dossier")


@bp.get("/dossiers/<code>")
def dossier(code: str):
    return _page("dossier.html", "dossier", code=_code(code))


@bp.get("/dossiers/<code>/receipt")
def receipt(code: str):
    return _page("receipt.html", "receipt", code=_code(code))


@bp.get("/dossiers/<code>/control-slip")
def control_slip(code: str):
    return _page("control_slip.html", "control-slip", code=_code(code))


# -- analysts ----------------------------------------------------------------------------------------
@bp.get("/procedures")
def procedures():
    return _page("procedures.html", "procedures")


@bp.get("/procedures/<code>")
def procedure(code: str):
    return _page("procedure.html", "procedure", code=_code(code))


@bp.get("/modeler")
@bp.get("/modeler/<code>")
def modeler(code: str = ""):
    return _page("modeler.html", "modeler", code=_code(code) if code else "")


# -- supervisors -------------------------------------------------------------------------------------
@bp.get("/supervisor")
def board():
    return _page("board.html", "board")


@bp.get("/supervisor/report")
def report():
    return _page("report.html", "report")


# -- administrators ----------------------------------------------------------------------------------
@bp.get("/admin/dead-letters")
def dead_letters():
    return _page("dead_letters.html", "dead-letters")


# -- citizens ----------------------------------------------------------------------------------------
@bp.get("/tra-cuu")
def lookup():
    return _page("lookup.html", "lookup")


@bp.get("/lookup")
def lookup_en():
    return redirect(url_for("web.lookup"))


# -- citizens online (docs/online.md) ------------------------------------------------------------------
@bp.get("/cong-dan")
def citizen_home():
    return _page("citizen_home.html", "citizen-home")


@bp.get("/cong-dan/thu-tuc/<code>")
def citizen_procedure(code: str):
    return _page("citizen_procedure.html", "citizen-procedure", code=_code(code))


@bp.get("/cong-dan/dang-nhap")
def citizen_signin():
    return _page("citizen_signin.html", "citizen-signin")


@bp.get("/cong-dan/ho-so")
def citizen_dossiers():
    return _page("citizen_dossiers.html", "citizen-dossiers")


@bp.get("/cong-dan/ho-so/<code>")
def citizen_dossier(code: str):
    return _page("citizen_dossier.html", "citizen-dossier", code=_code(code))


@bp.get("/cong-dan/thanh-toan/ket-qua")
def citizen_payment_return():
    """The gateway sends the payer back here with its signed result; the IPN, not this page, pays the order."""
    from engine import online

    from ..context import services

    result = online.payment_return(services().dossiers, request.args.to_dict())
    return _page("citizen_payment_return.html", "citizen-payment-return", result=result)


def _code(code: str) -> str:
    if len(code) > 100:
        abort(404)
    return code


def init_app(app) -> None:
    """Called by `api.create_app` after `bp` is registered: add the pages' endpoints to the documented API."""
    from .endpoints import blp

    app.extensions["motcua_api"].register_blueprint(blp)
    if bundle_missing():
        app.logger.warning("web bundle missing: run `make web` (npm ci && npm run build) to build api/web/static/dist/")


__all__ = ["bp", "init_app", "bundle_missing"]
