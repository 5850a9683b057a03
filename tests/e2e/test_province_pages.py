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


# -- item 2: every list searched, filtered and paged on the server --------------------------------------------
def test_the_catalogue_is_searched_filtered_and_paged_on_the_server(province_server, new_page):
    loaded = province_server.loaded
    page = new_page()
    watch = ApiWatch(page)
    login(page, province_server, "analyst")
    page.goto(province_server("/procedures"))
    page.wait_for_selector("#proc-pager")
    total = loaded.procedures + 3
    assert page.locator("#procedures tbody tr").count() == 25
    assert f"{total:,}".replace(",", ".") in page.inner_text("#proc-count")
    assert "Trang 1/" in page.inner_text("#proc-pager")
    page.click("#proc-pager .pager-next")
    page.wait_for_selector("#proc-pager[data-page='2']")
    assert page.locator("#procedures tbody tr").count() == 25
    shot(page, "p2-catalogue-page-2")

    # by code, by name, by agency and level together: each one request of one page
    sample = loaded.sample_procedure
    page.fill("#proc-filter", sample["code"])
    page.click("#proc-filters button[type=submit]")
    page.wait_for_selector(f"#procedures tr[data-code='{sample['code']}']")
    assert page.locator("#procedures tbody tr").count() == 1
    page.fill("#proc-filter", sample["name"].split(" – ")[1])  # "mẫu 1235": part of the name
    page.click("#proc-filters button[type=submit]")
    page.wait_for_selector(f"#procedures tr[data-code='{sample['code']}']")
    page.fill("#proc-filter", "")
    page.fill("#proc-agency", "000.31.14.H56")
    page.select_option("#proc-level", "toan_trinh")
    page.wait_for_function("() => document.querySelector('#proc-count').textContent !== ''")
    page.click("#proc-filters button[type=submit]")
    page.wait_for_function("() => new URLSearchParams(location.search).get('level') === 'toan_trinh'")
    page.wait_for_load_state("networkidle")
    rows = page.locator("#procedures tbody tr")
    assert 0 < rows.count() <= 25
    assert all("Toàn trình" in t for t in rows.all_inner_texts())
    assert all("000.31.14.H56" in t for t in rows.all_inner_texts())
    last = watch.lists("procedures")[-1]
    assert last["agency"] == "000.31.14.H56" and last["level"] == "toan_trinh"
    watch.assert_paged()


def test_the_new_dossier_picker_searches_the_catalogue_on_the_server(province_server, new_page):
    sample = province_server.loaded.sample_procedure
    page = new_page(390, 844)  # a phone, as at a mobile desk
    watch = ApiWatch(page)
    login(page, province_server, "tiepnhan")
    page.goto(province_server("/dossiers/new"))
    page.wait_for_selector("#procedure_code option[value='1.001193']", state="attached")
    assert page.locator("#procedure_code option").count() <= 21  # one page of 20 and "choose"
    assert "1.503" in page.inner_text("#procedure_matches")
    page.fill("#procedure_search", sample["code"][:7])  # "2.10123": a code prefix, 10 matches
    page.wait_for_selector(f"#procedure_code option[value='{sample['code']}']", state="attached")
    assert "khớp" in page.inner_text("#procedure_matches")
    page.select_option("#procedure_code", sample["code"])
    page.fill("#applicant_name", "Lê Thị Tỉnh")
    page.click("#new-dossier button[type=submit]")
    page.wait_for_url(lambda url: "created=1" in url)
    page.wait_for_selector(f"p.lead:text('{sample['name']}')")  # a dossier of the procedure picked
    searched = [q.get("q") for q in watch.lists("procedures")]
    assert sample["code"][:7] in searched and None in searched
    watch.assert_paged()


def test_the_inbox_is_searched_and_paged_on_the_server(province_server, new_page):
    loaded = province_server.loaded
    page = new_page()
    watch = ApiWatch(page)
    login(page, province_server, "tiepnhan", next_path="/inbox")
    page.goto(province_server("/inbox"))
    page.wait_for_selector("#inbox-pager")
    shown = int(page.inner_text("#inbox-count").split()[0].replace(".", ""))
    assert shown >= loaded.home_tasks["receiver"] > 1000  # other tests may have received a few more
    assert page.locator("#inbox tbody tr").count() == 25
    first = page.locator("#inbox tbody tr").first.get_attribute("data-task")
    page.click("#inbox-pager .pager-next")
    page.wait_for_selector("#inbox-pager[data-page='2']")
    assert page.locator("#inbox tbody tr").first.get_attribute("data-task") != first
    shot(page, "p2-inbox-page-2")
    # one dossier by its code
    code = page.locator("#inbox tbody tr a[href^='/dossiers/']").first.inner_text()
    page.fill("#inbox-q", code)
    page.wait_for_function(
        "() => document.querySelectorAll('#inbox tbody tr').length === 1 && !document.querySelector('#inbox-pager')"
    )
    assert code in page.inner_text("#inbox")
    page.fill("#inbox-q", "")
    page.check("#only-overdue")
    page.wait_for_selector("#inbox-pager")
    assert "quá hạn" in page.inner_text("#inbox-count")
    assert page.locator("#inbox tbody tr.row-overdue").count() == 25
    assert {q.get("page") for q in watch.lists("tasks")} >= {"1", "2"}
    watch.assert_paged()


def test_the_dossier_list_and_the_board_filter_page_on_the_server(province_server, new_page):
    sample = province_server.loaded.sample_procedure
    page = new_page()
    watch = ApiWatch(page)
    login(page, province_server, "supervisor", next_path="/dossiers")
    page.goto(province_server("/dossiers"))
    page.wait_for_selector("#dossiers-pager")
    assert page.locator("#dossiers tbody tr").count() == 25
    page.click("#dossiers-pager .pager-next")
    page.wait_for_selector("#dossiers-pager[data-page='2']")

    page.goto(province_server("/supervisor"))
    page.wait_for_selector("#f-procedure option[value='1.001193']", state="attached")
    assert page.locator("#f-procedure option").count() <= 21
    page.fill("#f-procedure-search", sample["code"])
    page.wait_for_selector(f"#f-procedure option[value='{sample['code']}']", state="attached")
    page.select_option("#f-procedure", sample["code"])
    page.click("#filters button[type=submit]")
    page.wait_for_function(
        "(code) => new URLSearchParams(location.search).get('procedure_code') === code", arg=sample["code"]
    )
    page.wait_for_load_state("networkidle")
    assert any(q.get("procedure_code") == sample["code"] for q in watch.lists("monitor/overdue"))
    # the report's filter is the same picker
    page.goto(province_server(f"/supervisor/report?procedure_code={sample['code']}"))
    page.wait_for_selector(f"#r-procedure option[value='{sample['code']}']", state="attached")
    assert page.input_value("#r-procedure") == sample["code"]
    watch.assert_paged()
