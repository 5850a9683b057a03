"""Browser tests of the web pages: the real Flask app served in-process (a thread) on a free 127.0.0.1 port,
a temporary SQLite database with the procedures of bpmn/ and the demo accounts, and Debian's headless
Chromium driven by Playwright's sync API (never a browser Playwright downloads itself).

Each page fixture records console errors and uncaught exceptions; `page_errors` must be empty at the end of
a test, apart from the ones a test declares it provokes (`expect_console_error`). Screenshots go to
test-artifacts/e2e/ (git-ignored).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
BUNDLE = ROOT / "api" / "web" / "static" / "dist" / "app.js"
CHROMIUM = os.environ.get("MOTCUA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=vi-VN",
]
DEMO_PASSWORD = "motcua-demo"
LIBRARY = len(list((ROOT / "bpmn").rglob("*.bpmn")))  # the procedures of bpmn/ every server deploys


def _why_skip() -> str | None:
    if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        return "browser tests run once, on the SQLite pass (they test the pages, not the database)"
    if not Path(CHROMIUM).exists():
        return (
            f"NOTICE: Debian's chromium is not installed ({CHROMIUM}); `make test` installs it as root "
            "(apt-get install chromium): browser tests SKIPPED"
        )
    if not BUNDLE.exists():
        return "NOTICE: the web bundle is missing (run `make web`): browser tests SKIPPED"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "NOTICE: the playwright package is not installed: browser tests SKIPPED"
    return None


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "province: browser tests over a province's volumes (1,500 procedures, 5,000 open tasks)"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "province_server" in item.fixturenames:
            item.add_marker(pytest.mark.province)
    reason = _why_skip()
    if not reason:
        return
    marker = pytest.mark.skip(reason=reason)
    for item in items:
        if "e2e" in item.nodeid.split("::")[0] and "browser" in item.fixturenames:
            item.add_marker(marker)


def pytest_terminal_summary(terminalreporter):
    reason = _why_skip()
    if reason and reason.startswith("NOTICE"):
        terminalreporter.write_line(reason, yellow=True, bold=True)


class LiveServer:
    def __init__(self, url: str, app, db, settings):
        self.url = url
        self.app = app
        self.db = db
        self.settings = settings
        self.loaded = None

    def __call__(self, path: str = "/") -> str:
        return self.url + path


def _serve(tmp, load=None):
    """The app over a new SQLite database with the procedures of bpmn/ and the demo accounts, served in a
    thread; `load(db, service)` adds data before the first request."""
    from werkzeug.serving import make_server

    from api import create_app
    from engine.config import Settings
    from engine.db import Database
    from engine.demo import create_demo_accounts
    from engine.procedures import deploy, load_path

    settings = Settings(
        var_dir=tmp / "var",
        database_url=f"sqlite:///{tmp / 'motcua.db'}",
        secret_key="e2e-secret-key-for-tests-only-0123456789",
    )
    db = Database.from_settings(settings)
    db.create_all()
    create_demo_accounts(db, ROOT / "bpmn" / "agencies.csv")  # first: the inter-agency sample names them
    for path in sorted((ROOT / "bpmn").rglob("*.bpmn")):
        with db.uow() as s:
            deploy(s, load_path(path), "e2e")
    app = create_app(settings, database=db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    live = LiveServer(f"http://127.0.0.1:{server.server_port}", app, db, settings)
    if load is not None:
        live.loaded = load(db, app.extensions["motcua"].dossiers)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    yield live
    server.shutdown()
    thread.join(10)
    db.dispose()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("e2e-server"))


@pytest.fixture(scope="session")
def province_server(tmp_path_factory):
    """A second server loaded with a province's volumes (tests/e2e/province.py): 1,500 procedures beside the
    four of bpmn/, 5,000 open tasks (3 in 5 at the demo accounts' agency), built once per session in a few
    seconds. `province_server.loaded` is the `Province` summary (counts, a sample procedure). Tests that
    use it are marked `province` (`pytest -m province`)."""
    from .province import load_province

    yield from _serve(tmp_path_factory.mktemp("e2e-province"), load_province)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageErrors(list):
    """Console errors and uncaught exceptions of every page of a test, minus the expected ones."""

    def __init__(self):
        super().__init__()
        self.expected: list[re.Pattern] = []

    def add(self, where: str, text: str):
        if any(p.search(text) for p in self.expected):
            return
        self.append(f"{where}: {text}")


@pytest.fixture
def page_errors():
    return PageErrors()


@pytest.fixture
def expect_console_error(page_errors):
    """Declare a console error the test provokes on purpose (e.g. the 422 of a rejected form)."""

    def expect(pattern: str):
        page_errors.expected.append(re.compile(pattern))

    return expect


@pytest.fixture
def new_page(browser, page_errors, request):
    """new_page(width=1280, height=900) → a Playwright page in its own context, errors collected."""
    contexts = []

    def make(width=1280, height=900, **kw):
        ctx = browser.new_context(
            viewport={"width": width, "height": height}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", **kw
        )
        ctx.set_default_timeout(15000)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on(
            "console", lambda msg: page_errors.add(f"console[{page.url}]", msg.text) if msg.type == "error" else None
        )
        page.on("pageerror", lambda exc: page_errors.add(f"pageerror[{page.url}]", str(exc)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    # After the test: no console error on any page it opened.
    call = getattr(request.node, "rep_call", None)
    if call is None or call.passed:
        assert list(page_errors) == [], "console errors on the pages:\n" + "\n".join(page_errors)
    elif page_errors:
        print("console errors on the pages:\n" + "\n".join(page_errors))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
