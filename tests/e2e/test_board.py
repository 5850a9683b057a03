"""The supervisors' board: Chart.js charts of overdue dossiers by agency and by procedure with drill-down
agency → procedure → dossier (a click on a bar), the on-time rate of the last 12 months (GET
/api/v1/reports/on-time-by-month, the period report's definitions), and the list behind the "due within 24
hours" number (GET /api/v1/monitor/due-soon). The clock is moved with time-machine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from .support import login, shot
from .webforms import WEB_FORMS_CODE, deploy_web_forms, start_web_forms_dossier

pytestmark = pytest.mark.timeout(180)

AGENCY = "000.31.14.H56"
INTAKE = {"applicant_kind": "person"}
REVIEW = {"result": "approve"}


def _token(client, username):
    res = client.post("/api/v1/auth/token", json={"username": username, "password": "motcua-demo"})
    return {"Authorization": f"Bearer {res.get_json()['access_token']}"}


def _history(province_server) -> dict:
    """Two finished dossiers months ago: one on time, one late (completed 30 days after it was received)."""
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(days=200), tick=False):
        on_time = start_web_forms_dossier(province_server, INTAKE, REVIEW)
    with time_machine.travel(now - timedelta(days=170), tick=False):
        late = start_web_forms_dossier(province_server, INTAKE, None)
    with time_machine.travel(now - timedelta(days=140), tick=False):
        svc = province_server.app.extensions["motcua"].dossiers
        from engine.auth import load_actor

        with province_server.db.read() as s:
            receiver = load_actor(s, "tiepnhan")
        task = svc.get_dossier(receiver, late)["tasks"][0]
        svc.complete_task(receiver, task["id"], REVIEW)
    return {"on_time": on_time, "late": late, "now": now}


def _month(dt: datetime) -> str:
    return (dt + timedelta(hours=7)).strftime("%Y-%m")


def test_on_time_rate_by_month_follows_the_report(province_server):
    deploy_web_forms(province_server)
    hist = _history(province_server)
    client = province_server.app.test_client()
    res = client.get(
        f"/api/v1/reports/on-time-by-month?procedure_code={WEB_FORMS_CODE}", headers=_token(client, "supervisor")
    )
    assert res.status_code == 200, res.get_json()
    months = res.get_json()["months"]
    assert len(months) == 12 and months[-1]["month"] == _month(hist["now"])
    assert [m["month"] for m in months] == sorted(m["month"] for m in months)
    by = {m["month"]: m for m in months}
    done_on_time = by[_month(hist["now"] - timedelta(days=200))]
    assert done_on_time["completed"] >= 1 and done_on_time["completed_late"] == 0
    assert done_on_time["on_time_rate"] == 100.0
    done_late = by[_month(hist["now"] - timedelta(days=140))]
    assert done_late["completed_late"] >= 1 and done_late["on_time_rate"] < 100.0
    # the same figures as the period report over that month
    rep = client.get(
        f"/api/v1/reports/summary?from={done_late['from']}&to={done_late['to']}&procedure_code={WEB_FORMS_CODE}",
        headers=_token(client, "supervisor"),
    ).get_json()
    assert rep["totals"]["on_time_rate"] == done_late["on_time_rate"]
    assert rep["totals"]["completed"]["late"] == done_late["completed_late"]
    # receivers do not read reports; a bad month count is a 422 naming it
    assert client.get("/api/v1/reports/on-time-by-month", headers=_token(client, "tiepnhan")).status_code == 403
    bad = client.get("/api/v1/reports/on-time-by-month?months=99", headers=_token(client, "supervisor"))
    assert bad.status_code == 422 and "months" in str(bad.get_json())


def test_board_charts_drill_down_and_due_soon_list(province_server, new_page):
    deploy_web_forms(province_server)
    _history(province_server)
    code = start_web_forms_dossier(province_server)
    with province_server.db.read() as s:
        from engine.models import Dossier

        due = s.query(Dossier.due_at).filter(Dossier.code == code).scalar()
    due = due if due.tzinfo else due.replace(tzinfo=UTC)
    page = new_page(1366, 1000)

    # 12 hours before its due time, the dossier is behind the "due within 24 hours" number.
    with time_machine.travel(due - timedelta(hours=12), tick=True):
        login(page, province_server, "supervisor")
        page.wait_for_selector("#kpi-due-soon .kpi-value")
        assert int(page.inner_text("#kpi-due-soon .kpi-value")) >= 1
        page.click("#show-due-soon")
        page.wait_for_selector("#due-soon tbody tr")
        assert page.evaluate("() => document.activeElement.closest('#due-soon') !== null")
        # the on-time rate chart: 12 months drawn by Chart.js, the same figures as its table
        page.wait_for_function("() => window.motcuaCharts && window.motcuaCharts['chart-ontime']")
        labels = page.evaluate("() => window.motcuaCharts['chart-ontime'].data.labels")
        assert len(labels) == 12 and all(re.fullmatch(r"\d{2}/\d{4}", x) for x in labels)
        assert page.locator("#chart-ontime .chart-table tbody tr").count() == 12
        shot(page, "60-board-due-soon")
        # narrowed to its procedure, the list has it (one page at a time, 25 rows)
        page.goto(province_server(f"/supervisor?procedure_code={WEB_FORMS_CODE}"))
        row = page.locator(f"#due-soon tr[data-code='{code}']")
        row.wait_for()
        assert "giờ" in row.inner_text()
        assert page.locator("#due-soon tbody tr").count() <= 25

    # Two days after it, overdue: drill down from the agency's bar to a procedure's bar to a dossier.
    with time_machine.travel(due + timedelta(days=2), tick=True):
        login(page, province_server, "supervisor")  # the token of three days ago has expired
        page.wait_for_function("() => window.motcuaCharts && window.motcuaCharts['chart-agency']")
        assert page.evaluate("() => window.motcuaCharts['chart-agency'].config.type") == "bar"
        assert AGENCY in page.evaluate("() => window.motcuaCharts['chart-agency'].data.labels")
        assert page.evaluate("() => window.motcuaCharts['chart-agency'].data.labels.length") <= 15
        shot(page, "61-board-charts")
        click_bar(page, "chart-agency", AGENCY)
        page.wait_for_url(re.compile(r"agency=000\.31\.14\.H56"))
        page.wait_for_selector("#chart-procedure figcaption:has-text('000.31.14.H56')")
        assert "000.31.14.H56" in page.inner_text("#drill")
        page.wait_for_function("() => window.motcuaCharts['chart-procedure'].data.labels.length > 0")
        proc = page.evaluate("() => window.motcuaCharts['chart-procedure'].data.labels[0]")
        click_bar(page, "chart-procedure", proc)
        page.wait_for_url(re.compile(rf"procedure_code={re.escape(proc)}"))
        page.wait_for_function(
            """(p) => { const rows = [...document.querySelectorAll('#overdue-dossiers tbody tr[data-code]')];
                        return rows.length > 0 && rows.every((r) => r.innerText.includes(p)); }""",
            arg=proc,
        )
        shot(page, "62-board-drilled")
        # back up one level with the trail, then to a dossier itself
        page.click(f"#drill a:has-text('{AGENCY}')")
        page.wait_for_url(lambda u: "procedure_code" not in u)
        page.goto(province_server(f"/supervisor?agency={AGENCY}&procedure_code={WEB_FORMS_CODE}"))
        page.locator(f"#overdue-dossiers tr[data-code='{code}'] a").click()
        page.wait_for_url(re.compile(rf"/dossiers/{re.escape(code)}$"))


def click_bar(page, chart_id: str, label: str):
    """Click the middle of the first non-empty segment of `label`'s bar on the canvas."""
    point = page.evaluate(
        """([id, label]) => {
          const c = window.motcuaCharts[id];
          const i = c.data.labels.indexOf(label);
          for (let d = 0; d < c.data.datasets.length; d++) {
            if (!c.data.datasets[d].data[i]) continue;
            const el = c.getDatasetMeta(d).data[i];
            const r = c.canvas.getBoundingClientRect();
            return { x: r.left + (el.base + el.x) / 2, y: r.top + el.y };
          }
          return null;
        }""",
        [chart_id, label],
    )
    assert point, f"no bar for {label} in {chart_id}"
    page.mouse.click(point["x"], point["y"])
