"""A province's volumes for the browser tests: 1,500 procedures and 5,000 open tasks, loaded in seconds.

Real rows, not look-alikes: two template dossiers are driven through the service layer (a building permit
waiting at the desk's intake step, a birth registration waiting at the civil-status appraisal step); every
other procedure is a copy of its template's deployed version under a code, name, agency and level of its
own, and every other dossier a copy of its template's dossier, workflow state included (its task ids
renamed), so any row of any list can be opened, claimed and completed like a dossier received at the desk.
Inserted with Core `executemany` in one transaction.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam, func, insert, select, update

from engine.calendar import VN_TZ
from engine.dossiers import Applicant, agency_code
from engine.models import (
    Dossier,
    Event,
    Procedure,
    ProcedureRole,
    ProcedureVersion,
    Task,
    TaskRole,
    WorkflowState,
    utcnow,
)
from tests.helpers import ALL_ROLES, fill_form, staff

PROCEDURES = 1500
OPEN_TASKS = 5000
HOME = "000.31.14.H56"  # the demo accounts' agency
OTHER_AGENCIES = [f"000.{i:02d}.{20 + i}.H56" for i in range(1, 10)]
LEVELS = ["2", "3", "4", "toan_trinh", "mot_phan"]
WORDS = [
    ("Cấp", "giấy phép kinh doanh"),
    ("Đăng ký", "hộ kinh doanh"),
    ("Cấp đổi", "giấy chứng nhận quyền sử dụng đất"),
    ("Chứng thực", "bản sao từ bản chính"),
    ("Đăng ký", "kết hôn"),
    ("Cấp", "giấy phép xây dựng nhà ở riêng lẻ"),
    ("Thẩm định", "hồ sơ môi trường"),
    ("Cấp", "chứng chỉ hành nghề"),
    ("Gia hạn", "giấy phép lao động"),
    ("Xác nhận", "tình trạng hôn nhân"),
]
FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ"]
GIVEN = ["Văn An", "Thị Bình", "Minh Châu", "Quốc Dũng", "Thu Hà", "Đức Huy", "Ngọc Lan", "Thanh Sơn"]
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Province:
    """What was loaded, for the tests' assertions."""

    procedures: int = 0
    open_tasks: int = 0  # every ready task, the two templates' included
    home_tasks: dict = field(default_factory=dict)  # role -> ready tasks of that role in the demo agency
    codes: list = field(default_factory=list)  # the copied procedures' codes, in catalogue order
    sample_procedure: dict = field(default_factory=dict)  # a copied province-wide one: code, name, agency, level
    overdue_home_tasks: int = 0
    seconds: float = 0.0  # how long the load took


def _template(service, db, code: str, complete: tuple[str, ...] = ()) -> int:
    """A dossier of `code` received at the demo agency, driven through the steps named in `complete`."""
    view = service.start_dossier(
        staff({"receiver"}, name="tiepnhan"),
        code,
        Applicant("Nguyễn Văn Mẫu", "001203004567", "0912345678"),
        data={},
    )
    for step in complete:
        with db.read() as s:
            task_id, spec_name = s.execute(
                select(Task.id, Task.spec_name).where(Task.dossier_code == view["code"], Task.state == "ready")
            ).one()
        assert spec_name == step, (spec_name, step)
        form = service.task_form(ALL_ROLES, task_id)
        service.complete_task(ALL_ROLES, task_id, fill_form(form, {"decision": "accept", "complete": True}))
    with db.read() as s:
        return s.scalar(select(Dossier.id).where(Dossier.code == view["code"]))


def load_province(db, service, procedures: int = PROCEDURES, open_tasks: int = OPEN_TASKS) -> Province:
    started = time.perf_counter()
    rnd = random.Random(13)
    now = utcnow()
    out = Province()
    templates = [_template(service, db, "1.009994"), _template(service, db, "1.001193", ("Task_Intake",))]
    with db.uow() as s:
        conn = s.connection()
        tpl = []
        for dossier_id in templates:
            d = s.get(Dossier, dossier_id)
            v = s.get(ProcedureVersion, d.procedure_version_id)
            tasks = s.scalars(select(Task).where(Task.dossier_id == dossier_id, Task.state == "ready")).all()
            roles = {t.id: s.scalars(select(TaskRole.role).where(TaskRole.task_id == t.id)).all() for t in tasks}
            state = json.loads(zlib.decompress(s.get(WorkflowState, dossier_id).state))
            tpl.append((d, v, tasks, roles, json.dumps(state, separators=(",", ":"))))

        # -- procedures: a copy of a template's version per code, spread over agencies and levels
        proc_rows, picks = [], []
        for i in range(procedures):
            verb, obj = WORDS[i % len(WORDS)]
            agency = None if i % 3 == 0 else ([HOME] + OTHER_AGENCIES)[i % 10]
            code = f"2.{100001 + i:06d}"
            name = f"{verb} {obj} – mẫu {i + 1:04d}"
            proc_rows.append(
                dict(code=code, scope=agency or "", name=name, agency=agency, current_version=1, created_at=now)
            )
            picks.append(i % 2)
        ids = (
            conn.execute(insert(Procedure).returning(Procedure.id, sort_by_parameter_order=True), proc_rows)
            .scalars()
            .all()
        )
        version_rows, role_rows = [], []
        for pid, row, t in zip(ids, proc_rows, picks, strict=True):
            v = tpl[t][1]
            meta = dict(v.meta, procedure_code=row["code"], procedure_name=row["name"], level=LEVELS[pid % 5])
            if row["agency"]:
                meta["agency"] = row["agency"]
            else:
                meta.pop("agency", None)
            version_rows.append(
                dict(
                    procedure_id=pid,
                    version=1,
                    content_hash=v.content_hash,
                    process_id=v.process_id,
                    filename=v.filename,
                    bpmn_xml=v.bpmn_xml,
                    spec_json=v.spec_json,
                    meta=meta,
                    user_tasks=v.user_tasks,
                    forms=v.forms,
                    deployed_at=now - timedelta(days=pid % 400),
                    deployed_by="province",
                )
            )
            for role in sorted({r for ut in v.user_tasks for r in ut.get("roles") or ()}):
                role_rows.append(dict(role=role, procedure_id=pid))
        vids = (
            conn.execute(
                insert(ProcedureVersion).returning(ProcedureVersion.id, sort_by_parameter_order=True), version_rows
            )
            .scalars()
            .all()
        )
        conn.execute(insert(ProcedureRole), role_rows)
        # the current version's level, as a deploy keeps it (engine/procedures.py)
        conn.execute(
            update(Procedure).where(Procedure.id == bindparam("pid")).values(level=bindparam("lvl")),
            [{"pid": r["procedure_id"], "lvl": r["meta"]["level"]} for r in version_rows],
        )
        out.procedures = procedures
        out.codes = [r["code"] for r in proc_rows]
        sample = proc_rows[1233 % procedures]
        out.sample_procedure = {
            "code": sample["code"],
            "name": sample["name"],
            "agency": sample["agency"],
            "level": version_rows[1233 % procedures]["meta"]["level"],
        }
        # which copied procedures a dossier of template t received by an agency may run
        runs: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for vid, row, t in zip(vids, proc_rows, picks, strict=True):
            for agency in [HOME, *OTHER_AGENCIES] if row["agency"] is None else [row["agency"]]:
                runs.setdefault((t, agency), []).append((vid, row["code"]))

        # -- open dossiers, one ready task each: 3 in 5 at the demo agency, the rest across nine others
        dossier_rows, extra = [], []
        counters: dict[tuple[str, str], int] = {}
        for j in range(open_tasks - len(templates)):  # the templates' tasks count too
            t = j % 2
            d, v, tasks, roles, state = tpl[t]
            agency = HOME if j % 5 < 3 else OTHER_AGENCIES[j % 9]
            vid, pcode = rnd.choice(runs[(t, agency)])
            received = now - timedelta(days=rnd.randint(0, 40), hours=rnd.randint(0, 23), minutes=rnd.randint(0, 59))
            day = received.astimezone(VN_TZ).strftime("%y%m%d")
            n = counters[(agency, day)] = counters.get((agency, day), 4999) + 1
            code = f"{agency_code(agency)}-{day}-{n:04d}"
            dossier_due = received + timedelta(days=rnd.choice([1, 3, 7, 15, 30]))
            task_due = now + timedelta(hours=rnd.randint(-240, 240))
            name = f"{FAMILY[j % len(FAMILY)]} {GIVEN[(j // 10) % len(GIVEN)]}"
            dossier_rows.append(
                dict(
                    code=code,
                    procedure_version_id=vid,
                    procedure_code=pcode,
                    agency=agency,
                    status=d.status,
                    status_code=d.status_code,
                    channel=d.channel,
                    applicant_name=name,
                    applicant_id_number=f"0012030{j:05d}",
                    applicant_phone=f"09{j:08d}",
                    applicant_email=None,
                    data=d.data,
                    received_at=received,
                    due_at=dossier_due,
                    original_due_at=dossier_due,
                    deadline_hours=d.deadline_hours,
                    paused_hours=0.0,
                    supplement_count=0,
                    finished=False,
                    created_by="tiepnhan",
                    updated_at=now,
                    version=d.version,
                )
            )
            extra.append((t, task_due, received))
        dids = (
            conn.execute(insert(Dossier).returning(Dossier.id, sort_by_parameter_order=True), dossier_rows)
            .scalars()
            .all()
        )
        state_rows, task_rows, task_role_rows, event_rows = [], [], [], []
        for did, row, (t, task_due, received) in zip(dids, dossier_rows, extra, strict=True):
            d, v, tasks, roles, state = tpl[t]
            renamed: dict[str, str] = {}
            text = UUID_RE.sub(lambda m: renamed.setdefault(m.group(0), str(uuid.uuid4())), state)
            state_rows.append(dict(dossier_id=did, state=zlib.compress(text.encode(), 1)))
            for task in tasks:
                tid = renamed[task.id]
                task_rows.append(
                    dict(
                        id=tid,
                        dossier_id=did,
                        dossier_code=row["code"],
                        procedure_code=row["procedure_code"],
                        agency=row["agency"],
                        spec_name=task.spec_name,
                        title=task.title,
                        roles=task.roles,
                        assignee=None,
                        form_key=task.form_key,
                        state="ready",
                        created_at=received,
                        due_at=task_due,
                    )
                )
                for role in roles[task.id]:
                    task_role_rows.append(dict(task_id=tid, role=role, agency=row["agency"]))
            event_rows.append(
                dict(
                    dossier_id=did,
                    at=received,
                    actor="tiepnhan",
                    action="dossier.received",
                    to_status=row["status"],
                    details={"procedure_code": row["procedure_code"], "version": 1, "channel": row["channel"]},
                )
            )
        conn.execute(insert(WorkflowState), state_rows)
        conn.execute(insert(Task), task_rows)
        conn.execute(insert(TaskRole), task_role_rows)
        conn.execute(insert(Event), event_rows)
    with db.read() as s:
        ready = select(Task.id).where(Task.state == "ready")
        out.open_tasks = s.scalar(select(func.count()).select_from(ready.subquery()))
        by_role = (
            select(TaskRole.role, func.count())
            .join(Task, Task.id == TaskRole.task_id)
            .where(Task.state == "ready", TaskRole.agency == HOME)
            .group_by(TaskRole.role)
        )
        out.home_tasks = {role: n for role, n in s.execute(by_role)}
        out.overdue_home_tasks = s.scalar(
            select(func.count()).where(Task.state == "ready", Task.agency == HOME, Task.due_at < now)
        )
    out.seconds = time.perf_counter() - started
    return out
