"""The interactive API page (/api/v1/docs) in a real browser: it loads nothing from elsewhere, logs in, and its
"try it" forms send requests with the token, path parameters and JSON bodies."""

from __future__ import annotations

from playwright.sync_api import expect


def _section(page, method: str, path: str):
    return page.locator(f'form.try[data-method="{method}"][data-path="{path}"]')


def test_docs_page_logs_in_and_tries_requests(live_server, new_page, expect_console_error):
    expect_console_error(r"status of 422")  # the browser logs the 422 this test provokes on purpose
    page = new_page()
    foreign = []
    page.on("request", lambda req: foreign.append(req.url) if not req.url.startswith(live_server.url) else None)
    page.goto(live_server("/api/v1/docs"))
    assert "motcua API" in page.title()
    assert "chưa đăng nhập" in page.locator("#who").inner_text()
    page.fill("#login input[name=username]", "tiepnhan")
    page.fill("#login input[name=password]", "motcua-demo")
    page.click("#login button[type=submit]")
    expect(page.locator("#who")).to_contain_text("tiepnhan")

    form = _section(page, "GET", "/api/v1/procedures/{code}")
    form.locator('input[name="code"]').fill("1.001193")
    form.locator("button[type=submit]").click()
    out = form.locator(".out")
    expect(out).to_contain_text("HTTP ", timeout=20_000)
    assert out.inner_text().startswith("HTTP 200") and '"code": "1.001193"' in out.inner_text()

    form = _section(page, "POST", "/api/v1/dossiers")
    form.locator('textarea[name="_body"]').fill(
        '{"procedure_code": "1.001193", "applicant": {"name": "Nguyễn Thị Hoa"}, "channel": 1}'
    )
    form.locator("button[type=submit]").click()
    out = form.locator(".out")
    expect(out).to_contain_text("HTTP ", timeout=20_000)
    assert out.inner_text().startswith("HTTP 201"), out.inner_text()[:300]

    form = _section(page, "GET", "/api/v1/tasks")
    form.locator('input[name="per_page"]').fill("500")
    form.locator("button[type=submit]").click()
    out = form.locator(".out")
    expect(out).to_contain_text("HTTP ", timeout=20_000)
    assert out.inner_text().startswith("HTTP 422") and "problem+json" in out.inner_text()
    assert foreign == []
