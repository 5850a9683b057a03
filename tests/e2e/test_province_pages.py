"""The pages at a province's volumes (tests/e2e/province.py: 1,500 procedures, 5,000 open tasks) in headless
Chromium: every list searched, filtered and paged on the server, never more than one page fetched; the
modeler's unchanged deploy; documents at the desk."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .support import login, shot

pytestmark = pytest.mark.timeout(240)

PAGE_MAX = 100  # the largest page any page may ask for (engine/paging.py's MAX_PER_PAGE)


class ApiWatch:
    """Every /api/v1 GET a page makes, with its query."""

    def __init__(self, page):
        self.calls: list[tuple[str, dict]] = []
        page.on("request", self._seen)

    def _seen(self, request):
        parts = urlsplit(request.url)
        if request.method == "GET" and parts.path.startswith("/api/v1/"):
            self.calls.append((parts.path[len("/api/v1/") :], {k: v[-1] for k, v in parse_qs(parts.query).items()}))

    def lists(self, path: str) -> list[dict]:
        return [q for p, q in self.calls if p == path]

    def assert_paged(self):
        """Each list asked for one page of at most PAGE_MAX rows: never an unbounded or oversized fetch."""
        for path, query in self.calls:
            if path in ("procedures", "tasks", "dossiers") or path.startswith("monitor/"):
                if path.startswith("monitor/") and "per_page" not in query and "page" not in query:
                    continue  # the board's counts, not a list
                assert "per_page" in query, f"{path} fetched without a page size: {query}"
                assert 1 <= int(query["per_page"]) <= PAGE_MAX, f"{path} asked for {query['per_page']} rows"


# -- item 6: the modeler ------------------------------------------------------------------------------------
def test_deploying_a_reopened_procedure_unchanged_makes_no_new_version(province_server, new_page):
    page = new_page(1440, 960)
    login(page, province_server, "analyst", next_path="/modeler/1.001193")
    page.wait_for_selector("body[data-ready=true]")
    page.wait_for_selector("#form-files code:text('intake.json')")
    assert "v1" in page.inner_text("#version-info")
    page.click("#btn-deploy")
    notice = page.wait_for_selector("#deployed")
    assert notice.get_attribute("data-created") == "false"
    text = page.inner_text("#deployed")
    assert "Không có thay đổi" in text and "1.001193 phiên bản 1" in text
    shot(page, "p6-modeler-unchanged", full_page=False)

    # nothing was written: the catalogue still has version 1 only (a real change makes version 2: see
    # test_pages.py, the analyst's procedure reopened and deployed with another fee)
    client = province_server.app.test_client()
    tok = client.post("/api/v1/auth/token", json={"username": "analyst", "password": "motcua-demo"}).get_json()
    versions = client.get(
        "/api/v1/procedures/1.001193", headers={"Authorization": f"Bearer {tok['access_token']}"}
    ).get_json()["versions"]
    assert [v["version"] for v in versions] == [1]
