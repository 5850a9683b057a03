"""Decision tables (DMN) through the service layer: deployed beside a .bpmn, checked at deploy (each problem
naming its element), evaluated by business rule tasks in the expression sandbox, the decided fee on the
dossier and its receipt (docs/bpmn-conventions.md, "Bảng quyết định / Decision tables")."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from sqlalchemy import select

from engine import queries
from engine.dossiers import DossierService
from engine.errors import ProcedureInvalid, WorkflowDataError
from engine.models import Dossier
from engine.procedures import deploy, form_files_beside, load_path, load_procedure
from tests.conftest import BPMN_DIR
from tests.helpers import ALL_ROLES, drive, staff

PR = BPMN_DIR / "permanent_residence" / "permanent_residence.bpmn"
APPLICANT = {"name": "Nguyễn Thị Lan", "id_number": "001203004567", "phone": "0912345678"}
receiver = staff({"receiver"}, name="tiepnhan")

DMN_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def table(rules: list[tuple[str, str]], hit="UNIQUE", input_expr="age", decision="d_test", extra="") -> bytes:
    """A one-input, one-output DMN file; `rules` are (input entry, output entry)."""
    rows = "".join(
        f'<rule id="R{i}"><inputEntry id="I{i}"><text>{escape(e)}</text></inputEntry>'
        f'<outputEntry id="O{i}"><text>{escape(o)}</text></outputEntry></rule>'
        for i, (e, o) in enumerate(rules, 1)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><definitions xmlns="{DMN_NS}" id="defs" name="t" namespace="x">'
        f'<decision id="{decision}" name="Thử"><decisionTable id="T1" hitPolicy="{hit}" {extra}>'
        f'<input id="In1" label="x"><inputExpression id="IE1" typeRef="integer"><text>{escape(input_expr)}</text>'
        f'</inputExpression></input><output id="Out1" label="y" name="fee" typeRef="integer"/>{rows}'
        "</decisionTable></decision></definitions>"
    ).encode()


def pr_files(**replace: bytes) -> dict[str, bytes]:
    files = form_files_beside(PR)
    files.update(replace)
    return files


def load_pr(dmn: bytes, ref: str = "d_test") -> object:
    bpmn = PR.read_bytes().replace(
        b'camunda:decisionRef="permanent_residence_fee"', f'camunda:decisionRef="{ref}"'.encode()
    )
    return load_procedure(bpmn, PR.name, pr_files(**{"fee.dmn": dmn}))


def problems_of(exc) -> list[tuple[str, str]]:
    return [(p["element"], p["message_en"]) for p in exc.value.details]


@pytest.fixture
def service(db, settings):
    svc = DossierService(db, settings)
    with db.uow() as s:
        deploy(s, load_path(PR), "test")
    return svc


def test_the_table_decides_the_fee_by_channel_and_the_receipt_shows_it(service, db):
    desk = service.start_dossier(receiver, "1.004222", APPLICANT, channel=1)
    online = service.start_dossier(receiver, "1.004222", APPLICANT, channel=2)
    post = service.start_dossier(receiver, "1.004222", APPLICANT, channel=3)
    with db.read() as s:
        fees = {
            code: data["fee"] for code, data in s.execute(select(Dossier.code, Dossier.data).order_by(Dossier.id)).all()
        }
        assert fees == {desk["code"]: 20000, online["code"]: 10000, post["code"]: 20000}
        assert queries.dossier_steps(s, ALL_ROLES, desk["code"], service.runtimes)["fee"] == 20000
        assert queries.dossier_steps(s, ALL_ROLES, online["code"], service.runtimes)["fee"] == 10000
        # the procedure's own fee (the catalogue's "from") is unchanged
        assert queries.dossier_steps(s, ALL_ROLES, online["code"], service.runtimes)["procedure"]["fee"] == 20000
    # the business rule task is no step of anybody's: the first task is still the intake
    assert [t["spec_name"] for t in online["tasks"]] == ["Task_Intake"]
    d, taken = drive(
        service,
        online,
        {
            "Task_Intake": {"decision": "accept"},
            "Task_Appraisal": {"proposal": "approve"},
            "Task_Approval": {"approval": "approve"},
        },
    )
    assert d["status"] == "returned" and taken[0] == "Task_Intake"


def test_library_procedure_deploys_its_table_and_records_it():
    loaded = load_path(PR)
    assert loaded.meta["decisions"] == {
        "permanent_residence_fee": {
            "file": "fee.dmn",
            "name": "Lệ phí đăng ký thường trú",
            "hit_policy": "UNIQUE",
            "outputs": ["fee"],
        }
    }
    assert loaded.warnings == []


def test_changing_the_table_is_a_new_version(db):
    first = load_path(PR)
    changed = load_pr(
        form_files_beside(PR)["fee.dmn"].replace(b"<text>10000</text>", b"<text>12000</text>"),
        ref="permanent_residence_fee",
    )
    assert first.content_hash != changed.content_hash
    with db.uow() as s:
        assert deploy(s, first, "test").version == 1
        assert deploy(s, changed, "test").version == 2


@pytest.mark.parametrize(
    "rules",
    [
        [(">= 18", "0"), ("< 20", "1")],  # 18 and 19 match both
        [("-", "0"), ("5", "1")],  # "any" overlaps everything
        [("? in (1, 2, 3)", "0"), ("3", "1")],
        [("10 <= ? <= 20", "0"), ("20 <= ? < 30", "1")],  # 20
        [("!= 5", "0"), ("> 4", "1")],  # 6
    ],
)
def test_overlapping_rules_under_unique_are_refused_naming_the_rules(rules):
    with pytest.raises(ProcedureInvalid) as exc:
        load_pr(table(rules))
    (element, message), *_ = problems_of(exc)
    assert element == "R1" and "'R1' and 'R2' overlap" in message and "UNIQUE" in message


@pytest.mark.parametrize(
    "rules",
    [
        [("< 18", "0"), (">= 18", "1")],
        [("10 <= ? < 20", "0"), ("20 <= ? < 30", "1"), ("< 10", "2"), (">= 30", "3")],
        [('"desk"', "0"), ('"online"', "1")],
        [("? in (1, 3)", "0"), ("2", "1"), ("? not in (1, 2, 3)", "2")],
        [("True", "0"), ("False", "1")],
    ],
)
def test_disjoint_rules_under_unique_are_accepted(rules):
    loaded = load_pr(table(rules))
    assert loaded.meta["decisions"]["d_test"]["hit_policy"] == "UNIQUE" and loaded.warnings == []


def test_overlaps_are_fine_under_first_and_collect_and_undecidable_ones_warn():
    assert load_pr(table([("-", "0"), ("5", "1")], hit="FIRST")).meta["decisions"]["d_test"]["hit_policy"] == "FIRST"
    load_pr(table([("-", "0"), ("5", "1")], hit="COLLECT"))
    loaded = load_pr(table([("> limit", "0"), ("5", "1")]))
    assert [w["element"] for w in loaded.warnings] == ["R1"] and "cannot tell" in loaded.warnings[0]["message_en"]


def test_bad_tables_are_refused_naming_the_element():
    cases = [
        (table([("1", "0")], hit="PRIORITY"), "T1", "hit policy 'PRIORITY' is not supported"),
        (table([("1", "0")], hit="COLLECT", extra='aggregation="SUM"'), "T1", "COLLECT SUM"),
        (table([("[1..5]", "0")]), "R1", "FEEL range"),
        (table([("in (1, 2)", "0")]), "R1", "write it with ? for the input value"),
        (table([("1", "__import__('os')")]), "R1", "rule 'R1'"),
        (table([("1", "0")], input_expr="open('/etc/passwd')"), "In1", "input 'In1'"),
        (b"<definitions/>", "fee.dmn", "not a DMN file"),
        (b'<!DOCTYPE x [<!ENTITY a "b">]><definitions/>', "fee.dmn", "entities"),
    ]
    for dmn, element, text in cases:
        with pytest.raises(ProcedureInvalid) as exc:
            load_pr(dmn)
        found = problems_of(exc)
        assert any(e == element and text in m for e, m in found), (text, found)


def test_a_business_rule_task_naming_an_unknown_decision_is_refused():
    with pytest.raises(ProcedureInvalid) as exc:
        load_pr(table([("1", "0")]), ref="no_such_table")
    assert problems_of(exc) == [
        (
            "Task_Fee",
            "business rule task 'Task_Fee' uses decision 'no_such_table', which no .dmn file deployed with it "
            "declares (known: d_test)",
        )
    ]
    with pytest.raises(ProcedureInvalid) as exc:
        load_procedure(PR.read_bytes(), PR.name, {k: v for k, v in pr_files().items() if k != "fee.dmn"})
    assert problems_of(exc)[0][0] == "Task_Fee"


def test_table_expressions_run_in_the_sandbox_and_a_failure_changes_nothing(db, settings):
    """An output building a 10-million-character string is stopped by the sandbox's size budget: the dossier
    is not started, the error names the business rule task."""
    svc = DossierService(db, settings)
    with db.uow() as s:
        deploy(s, load_pr(table([("-", "'x' * 10000000")]), ref="d_test"), "test")
    with pytest.raises(WorkflowDataError) as exc:
        svc.start_dossier(receiver, "1.004222", APPLICANT, channel=1)
    assert exc.value.details["element"] == "Task_Fee"
    with db.read() as s:
        assert s.scalars(select(Dossier)).all() == []
