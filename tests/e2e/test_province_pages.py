"""The pages at a province's volumes (tests/e2e/province.py: 1,500 procedures, 5,000 open tasks) in headless
Chromium: every list searched, filtered and paged on the server, never more than one page fetched; the
modeler's unchanged deploy; documents at the desk."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import LIBRARY
from .support import login, shot
from .webforms import web_forms_deployed

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
    total = loaded.procedures + LIBRARY + web_forms_deployed(province_server)
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
    total = f"{province_server.loaded.procedures + LIBRARY + web_forms_deployed(province_server):,}".replace(",", ".")
    assert total in page.inner_text("#procedure_matches")
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


# -- item 1: documents at the desk ----------------------------------------------------------------------------
def _pdf() -> bytes:
    """A small real PDF (one page saying hello), so the browser's viewer has something to show."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    stream = b"BT /F1 18 Tf 20 40 Td (To khai) Tj ET"
    objs[3] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def _png(width=4, height=3) -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x60\xc0" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


DROP = """([selector, name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], name, { type }));
  const zone = document.querySelector(selector);
  zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
}"""


def test_the_desk_uploads_previews_downloads_and_removes_documents(province_server, new_page, tmp_path):
    import base64

    client = province_server.app.test_client()

    def auth(user):
        r = client.post("/api/v1/auth/token", json={"username": user, "password": "motcua-demo"})
        return {"Authorization": f"Bearer {r.get_json()['access_token']}"}

    desk = auth("tiepnhan")
    r = client.post(
        "/api/v1/dossiers",
        headers=desk,
        json={"procedure_code": "1.001193", "applicant": {"name": "Phạm Thị Giấy"}, "channel": 1, "data": {}},
    )
    assert r.status_code == 201, r.get_json()
    code = r.get_json()["code"]
    pdf, png = _pdf(), _png()
    (tmp_path / "to-khai.pdf").write_bytes(pdf)

    page = new_page(390, 844)  # the desk's phone or tablet
    page.on("dialog", lambda d: d.accept())
    login(page, province_server, "tiepnhan", next_path=f"/dossiers/{code}")
    page.goto(province_server(f"/dossiers/{code}"))
    entry = "#dossier-documents li.doc-entry[data-key='{}']"
    page.wait_for_selector(entry.format("to_khai") + "[data-state=missing]")
    picker = page.locator("#doc-input-to_khai")
    assert picker.get_attribute("capture") == "environment"  # a phone opens its camera
    assert "application/pdf" in picker.get_attribute("accept") and "image/jpeg" in picker.get_attribute("accept")

    # a file picked for an entry, and a scan dropped on another
    picker.set_input_files(str(tmp_path / "to-khai.pdf"))
    page.wait_for_selector(entry.format("to_khai") + "[data-state=attached] li.doc-file")
    args = [".dropzone[data-key='giay_to_tuy_than']", "cccd.png", "image/png", base64.b64encode(png).decode()]
    page.evaluate(DROP, args)
    page.wait_for_selector(entry.format("giay_to_tuy_than") + "[data-state=attached] li.doc-file")
    page.evaluate(DROP, [args[0], "cccd-mat-sau.png", "image/png", args[3]])
    page.wait_for_function(
        "(sel) => document.querySelectorAll(sel + ' li.doc-file').length === 2",
        arg=entry.format("giay_to_tuy_than"),
    )
    shot(page, "p1-documents-uploaded")

    # download gives the very bytes
    with page.expect_download(timeout=30000) as dl:
        page.locator(entry.format("to_khai") + " .doc-download").click()
    assert open(dl.value.path(), "rb").read() == pdf

    # inline previews: the image drawn, the PDF in a frame
    page.locator(entry.format("giay_to_tuy_than") + " .doc-preview").first.click()
    page.wait_for_function(
        "() => { const i = document.querySelector('#doc-preview img'); return i && i.naturalWidth === 4; }",
        timeout=30000,
    )
    page.locator(entry.format("to_khai") + " .doc-preview").click()
    frame = page.wait_for_selector("#doc-preview iframe.doc-frame[data-attachment]", timeout=30000)
    assert frame.get_attribute("src").startswith("blob:")
    assert page.locator("#doc-preview img").count() == 0
    shot(page, "p1-documents-preview")
    page.click("#doc-preview-close")
    assert page.locator("#doc-preview iframe").count() == 0

    # a wrong scan taken back before intake
    page.locator(entry.format("giay_to_tuy_than") + " .doc-remove").last.click()
    page.wait_for_function(
        "(sel) => document.querySelectorAll(sel + ' li.doc-file').length === 1",
        arg=entry.format("giay_to_tuy_than"),
    )

    # the intake step's page has the same panel beside its checklist
    task = client.get(f"/api/v1/dossiers/{code}", headers=desk).get_json()["tasks"][0]
    page.goto(province_server(f"/tasks/{task['id']}"))
    page.wait_for_selector("#task-documents li.doc-entry[data-key='to_khai'][data-state=attached]")
    assert page.locator("#task-documents .doc-remove").count() == 2

    # intake completed with the birth certificate ticked as received on paper
    form = client.get(f"/api/v1/tasks/{task['id']}", headers=desk).get_json()["form"]
    from tests.helpers import fill_form

    data = fill_form(form, {"decision": "accept", "documents_received": ["giay_chung_sinh"]})
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=desk, json={"data": data})
    assert r.status_code == 200, r.get_json()
    page.goto(province_server(f"/dossiers/{code}"))
    page.wait_for_selector(entry.format("giay_chung_sinh") + "[data-state=paper]")
    assert page.locator("#dossier-documents .doc-remove").count() == 0  # part of the record now
    assert page.locator("#dossier-documents .dropzone").count() > 0  # still open to additions

    # the receipt and the control slip: nothing received is "missing"
    for path, table in (
        (f"/dossiers/{code}/receipt", "#slip"),
        (f"/dossiers/{code}/control-slip", "#control-documents"),
    ):
        page.goto(province_server(path))
        page.wait_for_selector(f"{table} .slip-docs td[data-key='giay_chung_sinh']")
        assert page.inner_text(f"{table} td[data-key='giay_chung_sinh']") == "Đã nộp (bản giấy)"
        assert page.inner_text(f"{table} td[data-key='to_khai']") == "Đã nộp (bản điện tử)"
        assert page.inner_text(f"{table} td[data-key='giay_to_tuy_than']") == "Đã nộp (bản điện tử)"
        assert "Chưa nộp" not in page.inner_text(table)
    shot(page, "p1-control-slip-documents")


def test_the_board_pages_overdue_dossiers_steps_and_the_due_soon_list_apart(province_server, new_page):
    page = new_page(1440, 960)
    watch = ApiWatch(page)
    login(page, province_server, "supervisor", next_path="/supervisor")
    page.goto(province_server("/supervisor"))
    for pager_id in ("overdue-dossiers-pager", "overdue-tasks-pager", "due-soon-pager"):
        page.wait_for_selector(f"#{pager_id}")
    assert page.locator("#overdue-dossiers tbody tr").count() == 25
    assert page.locator("#due-soon tbody tr").count() == 25
    soon = int(page.inner_text("#due-soon h2").rsplit("(", 1)[1].rstrip(")"))
    assert soon == int(page.inner_text("#kpi-due-soon .kpi-value"))  # the list is what the number counts
    first_step = page.locator("#overdue-tasks tbody tr").first.inner_text()
    page.click("#overdue-tasks-pager .pager-next")
    page.wait_for_selector("#overdue-tasks-pager[data-page='2']")
    assert page.locator("#overdue-tasks tbody tr").first.inner_text() != first_step
    assert page.locator("#overdue-dossiers-pager[data-page='1']").count() == 1  # the dossiers stay put
    page.click("#due-soon-pager .pager-next")
    page.wait_for_selector("#due-soon-pager[data-page='2']")
    shot(page, "p2-board-paged", full_page=False)
    last = watch.lists("monitor/overdue")[-1]
    assert last["page"] == "1" and last["tasks_page"] == "2"
    assert watch.lists("monitor/due-soon")[-1]["page"] == "2"
    watch.assert_paged()
