"""The procedure library: load a BPMN file (and the form files beside it), validate it, deploy it as a
versioned procedure, and keep each deployed version's parsed spec in process memory.

Deploying the same procedure again is a no-op, judged by meaning, not by bytes (`meaning_hash`: the parsed
process, the metadata, the user tasks and the parsed forms; never the diagram's layout, the whitespace, the
attribute order or the file names); a changed meaning becomes version N+1; running dossiers stay on the
version they started with (they reference a `ProcedureVersion` row, never "the current one").
"""

from __future__ import annotations

import ast
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

import forms as forms_lib

from . import agencies, bpmn_xml, connectors, decisions, messages
from .auth import Actor
from .calendar import parse_cutoff, parse_deadline
from .db import Database
from .errors import Conflict, InvalidInput, MotcuaError, NotFound, ProcedureInvalid, TooLarge
from .expressions import check_expression
from .models import Procedure, ProcedureRole, ProcedureVersion
from .statuses import Status
from .timers import check_timer_expression, normalize_timer_expression
from .workflow_state import spec_from_json, spec_to_json

LEVELS = {"2", "3", "4", "toan_trinh", "mot_phan"}
META_KEYS = ("procedure_code", "procedure_name", "agency", "deadline", "cutoff", "fee", "level")
DEFAULT_MAX_BPMN_BYTES = 5 * 1024 * 1024


@dataclass
class LoadedProcedure:
    """A BPMN file that passed validation, ready to be stored."""

    code: str
    name: str
    agency: str | None
    process_id: str
    dialect: str
    filename: str
    bpmn_xml: str
    spec_json: str
    content_hash: str
    meta: dict
    user_tasks: list
    forms: dict
    warnings: list = field(default_factory=list)
    #: (lane or user task id, agency code or expression, user tasks it gives): what deploy checks is registered
    agency_refs: list = field(default_factory=list)


def _p(element, vi, en):
    return {"element": element, "message_vi": vi, "message_en": en}


def _choose_process(root, problems):
    procs = bpmn_xml.processes(root)
    if not procs:
        problems.append(_p(None, "Tệp không có quy trình (bpmn:process) nào", "the file has no bpmn:process"))
        return None, []
    infos = {p.get("id"): bpmn_xml.describe_process(p) for p in procs}
    called = {target for info in infos.values() for _, target in info.call_activities}
    candidates = [i for i in infos.values() if i.executable] or list(infos.values())
    roots = [i for i in candidates if i.id not in called] or candidates
    if len(roots) > 1:
        # Several independent processes: a participant's process is the one with user tasks, if only one has.
        with_tasks = [i for i in roots if i.user_tasks]
        if len(with_tasks) == 1:
            roots = with_tasks
    if len(roots) > 1:
        ids = ", ".join(i.id for i in roots)
        problems.append(
            _p(
                roots[1].id,
                f"Tệp có nhiều quy trình độc lập ({ids}); mỗi tệp chỉ chứa một thủ tục",
                f"the file holds several independent processes ({ids}); one procedure per file",
            )
        )
        return None, []
    main = roots[0]
    involved = [main] + [infos[t] for t in _called_closure(main.id, infos)]
    return main, involved


def _called_closure(pid, infos, seen=None):
    seen = seen or set()
    for _, target in infos[pid].call_activities:
        if target in infos and target not in seen:
            seen.add(target)
            _called_closure(target, infos, seen)
    return seen


def _condition_names(expr: str) -> set[str]:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return set()
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id not in called} - {"True", "False", "None"}


def _check_expressions(info, problems):
    for flow_id, text in info.conditions:
        if not text:
            continue
        if text.startswith("${") or text.startswith("#{") or text.startswith("="):
            problems.append(
                _p(
                    flow_id,
                    f"Điều kiện '{text}' của '{flow_id}' viết bằng JUEL/FEEL, không được hỗ trợ; "
                    'hãy viết biểu thức kiểu Python, ví dụ decision == "accept"',
                    f"condition '{text}' on '{flow_id}' is JUEL/FEEL, which is not supported; "
                    'write a Python-like expression such as decision == "accept"',
                )
            )
            continue
        for msg in check_expression(text, kind="condition"):
            problems.append(_p(flow_id, f"Điều kiện của '{flow_id}': {msg}", f"condition on '{flow_id}': {msg}"))
    for task_id, script in info.scripts:
        for msg in check_expression(script, kind="script"):
            problems.append(_p(task_id, f"Kịch bản của '{task_id}': {msg}", f"script of '{task_id}': {msg}"))
    for event_id, kind, text in info.timers:
        if not text:
            problems.append(
                _p(
                    event_id,
                    f"Sự kiện hẹn giờ '{event_id}' chưa có giá trị",
                    f"timer event '{event_id}' has an empty {kind}",
                )
            )
            continue
        for msg in check_timer_expression(text, kind):
            problems.append(_p(event_id, f"Hẹn giờ của '{event_id}': {msg}", f"timer of '{event_id}': {msg}"))


def _read_meta(info, problems):
    raw = info.meta
    meta = {k: raw[k] for k in META_KEYS if raw.get(k) not in (None, "")}
    pid = info.id
    if "deadline" in meta:
        try:
            d = parse_deadline(meta["deadline"])
            meta["deadline_unit"], meta["deadline_amount"] = d.unit, d.amount
        except MotcuaError as exc:
            problems.append(
                _p(
                    pid,
                    f"Thời hạn '{meta['deadline']}' không hợp lệ: {exc.message_vi}",
                    f"deadline '{meta['deadline']}' is invalid: {exc.message_en}",
                )
            )
    if "cutoff" in meta:
        try:
            parse_cutoff(meta["cutoff"])
        except MotcuaError as exc:
            problems.append(
                _p(
                    pid,
                    f"Giờ chốt '{meta['cutoff']}' không hợp lệ: {exc.message_vi}",
                    f"cutoff '{meta['cutoff']}' is invalid: {exc.message_en}",
                )
            )
    if "fee" in meta:
        try:
            meta["fee"] = int(str(meta["fee"]).replace(".", "").replace(",", "").strip())
            if meta["fee"] < 0:
                raise ValueError
        except ValueError:
            problems.append(
                _p(
                    pid,
                    f"Lệ phí '{raw['fee']}' phải là số tiền VND không âm",
                    f"fee '{raw['fee']}' must be a non-negative VND amount",
                )
            )
    if "level" in meta and str(meta["level"]) not in LEVELS:
        problems.append(
            _p(
                pid,
                f"Mức độ '{meta['level']}' không hợp lệ (2, 3, 4, toan_trinh, mot_phan)",
                f"level '{meta['level']}' is invalid (2, 3, 4, toan_trinh, mot_phan)",
            )
        )
    return meta


def _load_forms(info_list, form_files: dict[str, bytes], problems, dialect):
    """Resolve every user task's form reference among the files deployed with the procedure."""
    loaded = {}
    available = forms_lib.Forms()
    if form_files:
        try:
            available = forms_lib.load_forms(form_files)
        except MotcuaError as exc:
            problems.append(_p(None, exc.message_vi, exc.message_en))
    for info in info_list:
        for ut in info.user_tasks:
            key = ut.get("form_key") or (f"{ut['id']}.inline" if ut.get("inline_form") else None)
            if not key:
                continue
            key = key.replace("embedded:deployment:", "").replace("camunda-forms:deployment:", "")
            name = Path(key).name
            form = available.get(name) or available.get(Path(name).stem)
            if form is None and ut.get("inline_form"):
                try:
                    form = forms_lib.Form(key=f"{ut['id']}.inline", schema=ut["inline_form"], title=ut["name"])
                    name = form.key
                except MotcuaError as exc:
                    problems.append(
                        _p(
                            ut["id"],
                            f"Biểu mẫu nội tuyến của '{ut['id']}': {exc.message_vi}",
                            f"inline form of '{ut['id']}': {exc.message_en}",
                        )
                    )
                    continue
            if form is None:
                problems.append(
                    _p(
                        ut["id"],
                        f"Bước '{ut['name']}' ({ut['id']}) dùng biểu mẫu '{key}' nhưng tệp này không được triển khai kèm",
                        f"user task '{ut['name']}' ({ut['id']}) uses form '{key}', which was not deployed with it",
                    )
                )
                continue
            ut["form_key"] = name
            loaded[name] = form.to_dict()
    return loaded


def _validate_task_props(info, problems):
    valid_status = {s.value for s in Status}
    for ut in info.user_tasks:
        if ut.get("deadline"):
            try:
                parse_deadline(ut["deadline"])
            except MotcuaError as exc:
                problems.append(
                    _p(
                        ut["id"],
                        f"Thời hạn bước '{ut['id']}' không hợp lệ: {exc.message_vi}",
                        f"step deadline of '{ut['id']}' is invalid: {exc.message_en}",
                    )
                )
        if ut.get("status") and ut["status"] not in valid_status:
            problems.append(
                _p(
                    ut["id"],
                    f"Trạng thái '{ut['status']}' của '{ut['id']}' không hợp lệ",
                    f"status '{ut['status']}' of '{ut['id']}' is not one of {sorted(valid_status)}",
                )
            )
    for eid, agency, _steps in info.agency_refs:  # named on the lane or the task that writes it
        for vi, en in agencies.performer_problems(agency):
            problems.append(
                _p(
                    eid,
                    f"Cơ quan thực hiện của '{eid}' ({agency}): {vi}",
                    f"performing agency of '{eid}' ({agency}): {en}",
                )
            )
    for eid, status in info.end_events.items():
        if status and status not in valid_status:
            problems.append(
                _p(
                    eid,
                    f"Trạng thái '{status}' của '{eid}' không hợp lệ",
                    f"status '{status}' of end event '{eid}' is not one of {sorted(valid_status)}",
                )
            )


def _check_business_rules(involved, tables: dict, problems) -> set[str]:
    """Each business rule task names a decision deployed with the procedure; the decisions used."""
    used = set()
    for info in involved:
        for eid, ref in info.business_rules:
            if not ref:
                problems.append(
                    _p(
                        eid,
                        f"Bước quy tắc '{eid}' chưa chọn bảng quyết định (camunda:decisionRef)",
                        f"business rule task '{eid}' names no decision (camunda:decisionRef)",
                    )
                )
            elif ref not in tables:
                known = ", ".join(sorted(tables)) or "—"
                problems.append(
                    _p(
                        eid,
                        f"Bước quy tắc '{eid}' dùng bảng quyết định '{ref}' nhưng không tệp .dmn nào được triển khai "
                        f"kèm khai báo nó (có: {known})",
                        f"business rule task '{eid}' uses decision '{ref}', which no .dmn file deployed with it "
                        f"declares (known: {known})",
                    )
                )
            else:
                used.add(ref)
    return used


def _normalize_timers(root):
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for el in root.iter(f"{{{bpmn_xml.BPMN_NS}}}{tag}"):
            if el.text and el.text.strip():
                el.text = normalize_timer_expression(el.text.strip())


def _parse_spec(root, dialect, main_id, filename, problems, decision_files=()):
    parser = SpiffBpmnParser() if dialect == "spiff" else CamundaParser()
    try:
        for df in decision_files:
            parser.add_dmn_xml(df.root, df.filename)
        parser.add_bpmn_xml(etree.ElementTree(root), filename)
        spec = parser.get_spec(main_id)
        # a call activity naming no process of this file calls another deployed procedure by its code: its spec
        # is joined when a dossier starts (RuntimeCache.called_specs)
        subs = parser.get_subprocess_specs(main_id, require_call_activity_specs=False)
        return spec, {name: sp for name, sp in subs.items() if sp is not None}
    except ValidationException as exc:
        el = getattr(exc, "id", None) or None
        where = f"{getattr(exc, 'tag', '')} '{el}'" if el else filename
        problems.append(_p(el, f"{where}: SpiffWorkflow không đọc được: {exc}", f"{where}: cannot be parsed: {exc}"))
    except Exception as exc:  # the parser raises many kinds on odd files; each becomes a named problem
        problems.append(
            _p(
                None,
                f"{filename}: không đọc được quy trình ({type(exc).__name__}: {exc})",
                f"{filename}: the process cannot be parsed ({type(exc).__name__}: {exc})",
            )
        )
    return None, None


def content_hash(bpmn: bytes, forms: dict[str, bytes]) -> str:
    """The bytes of a BPMN file and its form files (not what decides a no-op deploy: `meaning_hash` does)."""
    h = hashlib.sha256(bpmn)
    for name in sorted(forms):
        h.update(b"\0" + name.encode() + b"\0" + forms[name])
    return h.hexdigest()


def _without_file_names(value):
    """The parsed spec without the `file` each process spec records (the uploaded file's name)."""
    if isinstance(value, dict):
        return {k: _without_file_names(v) for k, v in value.items() if k != "file"}
    if isinstance(value, list):
        return [_without_file_names(v) for v in value]
    return value


def meaning_hash(spec_json: str, meta: dict, user_tasks: list, forms: dict) -> str:
    """What a deployed version means, as a SHA-256 of a canonical JSON form (sorted keys, no spaces) of the
    parsed process spec (no file name), the metadata, the user tasks and each form's key, title, schema
    and UI schema. The diagram's layout (bpmndi), whitespace, attribute order, namespace prefixes and the
    file names do not count: a procedure reopened in the modeler and deployed unchanged is the same
    procedure (docs/bpmn-conventions.md, section 11). Computed from the columns a `ProcedureVersion` stores, so a version
    deployed before this rule is compared the same way."""
    canonical = {
        "spec": _without_file_names(json.loads(spec_json)),
        "meta": meta,
        "user_tasks": user_tasks,
        "forms": {
            k: {"title": f.get("title"), "schema": f.get("schema"), "ui_schema": f.get("ui_schema")}
            for k, f in (forms or {}).items()
        },
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def load_procedure(
    content: bytes,
    filename: str = "procedure.bpmn",
    form_files: dict[str, bytes] | None = None,
    max_bytes: int = DEFAULT_MAX_BPMN_BYTES,
) -> LoadedProcedure:
    """Read and validate one procedure. Raises ProcedureInvalid listing every problem, each naming its element."""
    form_files = dict(form_files or {})
    dmn_files = {n: form_files.pop(n) for n in list(form_files) if decisions.is_decision_file(n)}
    problems: list[dict] = []
    dmn_warnings: list[dict] = []
    try:
        root = bpmn_xml.parse_xml(content, max_bytes)
    except bpmn_xml.XmlRefused as exc:
        raise ProcedureInvalid(
            f"{filename}: {exc.message_vi}", f"{filename}: {exc.message_en}", [_p(None, exc.message_vi, exc.message_en)]
        ) from None
    dialect = bpmn_xml.dialect(root)
    main, involved = _choose_process(root, problems)
    if main is None:
        raise ProcedureInvalid(f"{filename}: không triển khai được", f"{filename}: cannot be deployed", problems)
    for info in involved:
        problems.extend(info.problems)
        _check_expressions(info, problems)
        _validate_task_props(info, problems)
    meta = _read_meta(main, problems)
    for info in involved:
        for eid, target in info.call_activities:
            if not target.strip():
                problems.append(
                    _p(
                        eid,
                        f"Hoạt động gọi '{eid}' chưa nêu thủ tục được gọi (calledElement: mã thủ tục)",
                        f"call activity '{eid}' names no procedure to call (calledElement: a procedure code)",
                    )
                )
    service_problems, service_tasks = connectors.check_service_tasks(root, involved, dialect)
    problems.extend(service_problems)
    forms = _load_forms(involved, form_files, problems, dialect)
    tables = decisions.load_decisions(dmn_files, max_bytes, problems, dmn_warnings)
    used = _check_business_rules(involved, tables, problems)
    spec = subs = None
    if not problems:
        _normalize_timers(root)
        spec, subs = _parse_spec(root, dialect, main.id, filename, problems, [tables[d] for d in sorted(used)])
    if problems:
        raise ProcedureInvalid(
            f"{filename}: {len(problems)} lỗi; " + "; ".join(p["message_vi"] for p in problems[:5]),
            f"{filename}: {len(problems)} problem(s); " + "; ".join(p["message_en"] for p in problems[:5]),
            problems,
        )
    user_tasks = [ut for info in involved for ut in info.user_tasks]
    produced = set()
    for f in forms.values():
        produced |= forms_lib.Form.from_dict(f).fields()
    warnings = [w for info in involved for w in info.warnings] + dmn_warnings
    for info in involved:
        for flow_id, text in info.conditions:
            missing = sorted(_condition_names(text) - produced)
            if missing and forms:
                warnings.append(
                    _p(
                        flow_id,
                        f"Điều kiện của '{flow_id}' đọc trường {missing} mà không biểu mẫu nào tạo ra",
                        f"condition on '{flow_id}' reads {missing}, which no form produces",
                    )
                )
    local = {p.get("id") for p in bpmn_xml.processes(root)}
    calls = {eid: target for info in involved for eid, target in info.call_activities if target not in local}
    end_status = {eid: s for info in involved for eid, s in info.end_events.items()}
    task_status = {tid: s for info in involved for tid, s in info.task_status.items()}
    meta.update({"dialect": dialect, "end_status": end_status, "task_status": task_status})
    if used:
        meta["decisions"] = {d: tables[d].summary() for d in sorted(used)}
    if calls:
        meta["calls"] = calls  # call activity id → the code of the procedure it calls
    waits = messages.wait_events(root, involved)
    if waits:
        meta["waits"] = waits  # message catch event id → `payment` / `supplement` (engine/messages.py)
    if service_tasks:
        meta["service_tasks"] = service_tasks  # service task id → its connector call (engine/connectors.py)
    code = str(meta.get("procedure_code") or main.id)
    spec_json = spec_to_json(dialect, spec, subs or {})
    return LoadedProcedure(
        code=code,
        name=str(meta.get("procedure_name") or main.name or main.id),
        agency=meta.get("agency"),
        process_id=main.id,
        dialect=dialect,
        filename=filename,
        bpmn_xml=content.decode("utf-8", errors="replace"),
        spec_json=spec_json,
        content_hash=meaning_hash(spec_json, meta, user_tasks, forms),
        meta=meta,
        user_tasks=user_tasks,
        forms=forms,
        warnings=warnings,
        agency_refs=[ref for info in involved for ref in info.agency_refs],
    )


def form_files_beside(path: Path) -> dict[str, bytes]:
    """The files deployed with a .bpmn file: the forms (.json, .form for form-js) and decision tables (.dmn)
    in its folder."""
    return {
        p.name: p.read_bytes()
        for p in sorted(path.parent.iterdir())
        if p.suffix in (".json", ".form", ".dmn") and p.is_file()
    }


def load_path(path: str | Path) -> LoadedProcedure:
    path = Path(path)
    return load_procedure(path.read_bytes(), path.name, form_files_beside(path))


@dataclass
class DeployResult:
    code: str
    version: int
    created: bool
    warnings: list


def deploy(session, loaded: LoadedProcedure, actor=None) -> DeployResult:
    """Store a validated procedure: a no-op when a version of its variant already means the same
    (`meaning_hash`), returning that version; else the next version of its variant — the (code, agency)
    pair; another agency's variant of the same code is never touched.

    `actor` is an `Actor` (the owner rule applies: an analyst deploys only their own agency's variant, an
    admin any) or, for the operator's CLI and tests, a plain name."""
    if isinstance(actor, Actor):
        actor.require_owner(loaded.agency)
        actor = actor.username
    check_references(session, loaded)  # the callees deployed, the agencies named registered
    scope = loaded.agency or ""
    proc = session.scalars(
        select(Procedure).where(Procedure.code == loaded.code, Procedure.scope == scope).with_for_update()
    ).first()
    if proc is None:
        proc = Procedure(code=loaded.code, scope=scope, name=loaded.name, agency=loaded.agency, current_version=0)
        session.add(proc)
        try:
            session.flush()
        except IntegrityError as exc:
            raise Conflict(
                "Thủ tục đang được triển khai đồng thời; vui lòng thử lại",
                "the procedure is being deployed concurrently; try again",
            ) from exc
    else:
        same = session.scalars(
            select(ProcedureVersion).where(
                ProcedureVersion.procedure_id == proc.id, ProcedureVersion.content_hash == loaded.content_hash
            )
        ).first()
        if same is None:
            same = _same_meaning_as_current(session, proc, loaded)
        if same is not None:
            return DeployResult(loaded.code, same.version, False, loaded.warnings)
    proc.current_version += 1
    proc.name = loaded.name
    proc.level = str(loaded.meta["level"]) if loaded.meta.get("level") not in (None, "") else None
    known = set(session.scalars(select(ProcedureRole.role).where(ProcedureRole.procedure_id == proc.id)))
    for role in sorted(procedure_roles(loaded.user_tasks) - known):
        session.add(ProcedureRole(role=role, procedure_id=proc.id))
    session.add(
        ProcedureVersion(
            procedure_id=proc.id,
            version=proc.current_version,
            content_hash=loaded.content_hash,
            process_id=loaded.process_id,
            filename=loaded.filename,
            bpmn_xml=loaded.bpmn_xml,
            spec_json=loaded.spec_json,
            meta=loaded.meta,
            user_tasks=loaded.user_tasks,
            forms=loaded.forms,
            deployed_by=actor,
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "Thủ tục đang được triển khai đồng thời; vui lòng thử lại",
            "the procedure is being deployed concurrently; try again",
        ) from exc
    return DeployResult(loaded.code, proc.current_version, True, loaded.warnings)


def _same_meaning_as_current(session, proc: Procedure, loaded: LoadedProcedure) -> ProcedureVersion | None:
    """The current version when it means the same as `loaded` though its stored hash differs (a version
    whose `content_hash` was computed from its bytes, before `meaning_hash`)."""
    current = session.scalars(
        select(ProcedureVersion).where(
            ProcedureVersion.procedure_id == proc.id, ProcedureVersion.version == proc.current_version
        )
    ).first()
    if current is None:
        return None
    theirs = meaning_hash(current.spec_json, current.meta or {}, current.user_tasks or [], current.forms or {})
    return current if theirs == loaded.content_hash else None


def reference_problems(session, loaded: LoadedProcedure, lenient: bool = False) -> tuple[list, list]:
    """What a procedure names in the database, checked: `(problems, warnings)`, each naming its element.

    * every procedure a call activity calls by code is deployed (the receiving agency's variant or the
      province-wide one) and is not this procedure itself;
    * every fixed agency code a lane or a user task names is registered (engine/agencies.py); an expression
      can only be judged when a dossier reaches the step.

    Deploy is strict. Validation (`motcua validate`, the modeler's check) is `lenient`: a database that holds
    no agency at all (a fresh install before `motcua agencies import`), or no procedure at all, cannot judge
    a code, so each such reference is a warning, not a problem; `session` None (no database to read) is
    that case for both (docs/bpmn-conventions.md, "Kiểm tra với cơ sở dữ liệu / Checks against the database")."""
    problems: list[dict] = []
    warnings: list[dict] = []
    calls = sorted((loaded.meta.get("calls") or {}).items())
    any_procedure = session is not None and session.scalar(select(Procedure.id).limit(1)) is not None
    for eid, code in calls:
        if code == loaded.code:
            problems.append(
                _p(
                    eid,
                    f"Hoạt động gọi '{eid}' gọi chính thủ tục '{code}'",
                    f"call activity '{eid}' calls its own procedure '{code}'",
                )
            )
            continue
        scopes = [loaded.agency or "", ""]
        if any_procedure and session.scalar(
            select(Procedure.id).where(Procedure.code == code, Procedure.scope.in_(scopes)).limit(1)
        ):
            continue
        if lenient and not any_procedure:
            warnings.append(
                _p(
                    eid,
                    f"Hoạt động gọi '{eid}' gọi thủ tục '{code}': chưa thủ tục nào được triển khai nên chưa kiểm tra "
                    "được; triển khai thủ tục được gọi trước",
                    f"call activity '{eid}' calls procedure '{code}': no procedure is deployed yet, so it cannot "
                    "be checked; deploy the callee first",
                )
            )
            continue
        problems.append(
            _p(
                eid,
                f"Hoạt động gọi '{eid}' gọi thủ tục '{code}', thủ tục này chưa được triển khai "
                "(calledElement là mã thủ tục hoặc id một quy trình trong cùng tệp)",
                f"call activity '{eid}' calls procedure '{code}', which is not deployed "
                "(calledElement is a procedure code or the id of a process in the same file)",
            )
        )
    fixed = [(eid, code, steps) for eid, code, steps in loaded.agency_refs if agencies.CODE_RE.match(code)]
    if fixed:
        any_agency = session is not None and agencies.any_registered(session)
        unknown = set(agencies.unknown_agencies(session, [c for _, c, _ in fixed])) if any_agency else set()
        for eid, code, steps in fixed:
            given = f" ({', '.join(steps)})" if steps and steps != [eid] else ""
            if not any_agency and lenient:
                warnings.append(
                    _p(
                        eid,
                        f"'{eid}' giao việc{given} cho cơ quan '{code}': chưa cơ quan nào được đăng ký nên chưa kiểm "
                        "tra được; triển khai sẽ bị từ chối nếu cơ quan chưa được đăng ký (motcua agencies import)",
                        f"'{eid}' gives its steps{given} to agency '{code}': no agency is registered yet, so it "
                        "cannot be checked; deploy refuses it until the agency is registered (motcua agencies import)",
                    )
                )
            elif not any_agency or code in unknown:
                problems.append(
                    _p(
                        eid,
                        f"'{eid}' giao việc{given} cho cơ quan '{code}', cơ quan này chưa được đăng ký "
                        "(motcua agencies import)",
                        f"'{eid}' gives its steps{given} to agency '{code}', which is not registered "
                        "(motcua agencies import)",
                    )
                )
    return problems, warnings


def check_references(session, loaded: LoadedProcedure) -> None:
    """Deploy's strict `reference_problems`: ProcedureInvalid naming each element."""
    problems, _ = reference_problems(session, loaded)
    if problems:
        raise ProcedureInvalid(
            f"{loaded.filename}: " + "; ".join(p["message_vi"] for p in problems),
            f"{loaded.filename}: " + "; ".join(p["message_en"] for p in problems),
            problems,
        )


def procedure_roles(user_tasks) -> set[str]:
    """The roles a procedure names (lanes, candidate groups): holders of any of them are staff."""
    return {
        r.strip()[:100] for ut in user_tasks or () for r in (ut.get("roles") or ()) if isinstance(r, str) and r.strip()
    }


def deploy_bytes(
    db,
    content: bytes,
    filename: str,
    form_files: dict[str, bytes] | None = None,
    actor=None,
    max_bytes: int = DEFAULT_MAX_BPMN_BYTES,
) -> DeployResult:
    loaded = load_procedure(content, filename, form_files, max_bytes)
    with db.uow() as s:
        return deploy(s, loaded, actor)


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Upload:
    """One uploaded file as the HTTP shell received it: the name the client gave it and its content."""

    filename: str | None
    stream: Readable


def _base_name(name: str) -> str:
    """The last path component of a client-given file name (either slash)."""
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def deploy_upload(
    db: Database, actor: Actor, bpmn: Upload | None, forms: Iterable[Upload], max_bytes: int = DEFAULT_MAX_BPMN_BYTES
) -> dict:
    """Deploy an uploaded BPMN file with its form files (each named by its file name): analysts and
    administrators only; a missing file is a 422 naming the field `file`, a BPMN larger than `max_bytes` a
    413 (read no further than that), an invalid procedure a 422 listing every problem. Returns the outcome;
    `created` is false when a version meaning the same is already deployed (`meaning_hash`)."""
    actor.require("analyst")
    if bpmn is None or not bpmn.filename:
        raise InvalidInput(
            "Cần tệp BPMN trong trường 'file' (multipart/form-data)",
            "a BPMN file is required in the 'file' field (multipart/form-data)",
            {"fields": {"file": "Thiếu tệp / Missing file"}},
        )
    content = bpmn.stream.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise TooLarge(
            f"Tệp BPMN quá lớn (tối đa {max_bytes} byte)", f"the BPMN file is too large (at most {max_bytes} bytes)"
        )
    form_files = {_base_name(f.filename or ""): f.stream.read() for f in forms}
    loaded = load_procedure(content, _base_name(bpmn.filename) or "procedure.bpmn", form_files, max_bytes)
    with db.uow() as s:
        result = deploy(s, loaded, actor)  # the owner rule: an analyst deploys only their own agency's variant
    return {
        "code": result.code,
        "version": result.version,
        "created": result.created,
        "name": loaded.name,
        "warnings": result.warnings or [],
    }


# ---------------------------------------------------------------------------------------------------
# Run-time view of a deployed version, cached per process.


@dataclass
class Runtime:
    version_id: int
    code: str
    version: int
    dialect: str
    spec: object
    subprocess_specs: dict
    meta: dict
    user_tasks: dict  # by element id
    forms: dict  # form key -> forms.Form

    def form_for(self, spec_name: str):
        ut = self.user_tasks.get(spec_name) or {}
        return self.forms.get(ut.get("form_key")) if ut.get("form_key") else None

    def user_task(self, task) -> dict:
        """What the BPMN says of a ready SpiffWorkflow task (roles, form, deadline, status): from the version
        that owns its process - this one, or a procedure it calls (`RuntimeCache.called_specs`). A called
        procedure's form key is qualified with its version id (`form_key@version_id`, `RuntimeCache.form_of`)."""
        owner = getattr(getattr(task.task_spec, "_wf_spec", None), OWNER, None) or self
        ut = owner.user_tasks.get(task.task_spec.name, {})
        if owner is not self and ut.get("form_key"):
            ut = {**ut, "form_key": f"{ut['form_key']}@{owner.version_id}"}
        return ut

    def service_task(self, task) -> tuple[str, dict] | None:
        """`(call key, connector call)` of a waiting service task, from the version that owns its process: this
        one (key: the element id) or a procedure it calls (key `element@version_id`, as `user_task` qualifies a
        form key); None when its version declares no connector for it."""
        owner = getattr(getattr(task.task_spec, "_wf_spec", None), OWNER, None) or self
        bpmn_id = task.task_spec.bpmn_id
        spec = (owner.meta.get("service_tasks") or {}).get(bpmn_id)
        if spec is None:
            return None
        return (bpmn_id if owner is self else f"{bpmn_id}@{owner.version_id}"), spec

    def forms_in_order(self) -> list:
        """The forms of the user tasks in the diagram's order, then any other form of the version."""
        keys = [ut.get("form_key") for ut in self.user_tasks.values() if ut.get("form_key") in self.forms]
        keys += list(self.forms)
        return [self.forms[k] for k in dict.fromkeys(keys)]


class RuntimeCache:
    """Deserialized specs by procedure version id; a bounded LRU shared by every request and worker thread."""

    def __init__(self, size: int = 2000):
        self.size = size
        self._items: OrderedDict[int, Runtime] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session, version_id: int) -> Runtime:
        with self._lock:
            rt = self._items.get(version_id)
            if rt is not None:
                self._items.move_to_end(version_id)
                return rt
        row = session.get(ProcedureVersion, version_id)
        if row is None:
            raise NotFound("Không tìm thấy phiên bản thủ tục", "procedure version not found")
        code = session.scalar(select(Procedure.code).where(Procedure.id == row.procedure_id))
        dialect = row.meta.get("dialect", "camunda")
        spec, subs = spec_from_json(dialect, row.spec_json)
        rt = Runtime(
            version_id=row.id,
            code=code,
            version=row.version,
            dialect=dialect,
            spec=spec,
            subprocess_specs=subs,
            meta=row.meta,
            user_tasks={ut["id"]: ut for ut in row.user_tasks},
            forms={k: forms_lib.Form.from_dict(v) for k, v in (row.forms or {}).items()},
        )
        for owned in (spec, *subs.values()):
            setattr(owned, OWNER, rt)  # the version a called process's tasks belong to (Runtime.user_task)
        with self._lock:
            self._items[version_id] = rt
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return rt

    def called_specs(
        self, session, rt: Runtime, agency: str | None, pinned: dict | None = None
    ) -> tuple[dict, dict[str, int]]:
        """The subprocess specs a dossier of `rt` runs with, and the version id of each procedure it calls by
        code. The versions are chosen when the dossier starts - the current version of the variant the
        receiving agency runs - and `pinned` (stored in the dossier's state) keeps them for its whole life."""
        if not rt.meta.get("calls"):
            return rt.subprocess_specs, {}
        pinned = dict(pinned or {})
        specs = dict(rt.subprocess_specs)
        todo = [rt]
        seen = {rt.version_id}
        while todo:
            caller = todo.pop()
            for code in sorted(set((caller.meta.get("calls") or {}).values())):
                vid = pinned.get(code)
                if vid is None:
                    vid = pinned[code] = current_version_id(session, code, agency)
                callee = self.get(session, vid)
                specs[code] = callee.spec
                specs.update(callee.subprocess_specs)
                if vid not in seen:
                    seen.add(vid)
                    todo.append(callee)
        return specs, pinned

    def service_task_of(self, session, version_id: int, key: str) -> dict:
        """The connector call of a `connector_calls` row's element key (`Runtime.service_task`)."""
        name, _, vid = key.rpartition("@")
        if name and vid.isdigit():
            return (self.get(session, int(vid)).meta.get("service_tasks") or {}).get(name, {})
        return (self.get(session, version_id).meta.get("service_tasks") or {}).get(key, {})

    def form_of(self, session, version_id: int, task):
        """The form of a task row: its version's, or a called procedure's (`form_key@version_id`)."""
        key = task.form_key or ""
        if "@" in key:
            name, _, vid = key.rpartition("@")
            if vid.isdigit():
                return self.get(session, int(vid)).forms.get(name)
        return self.get(session, version_id).form_for(task.spec_name)


OWNER = "motcua_runtime"  # attribute set on each deployed process spec: the Runtime that owns it
CALLED_VERSIONS = "motcua_called_versions"  # key of a dossier's workflow data: {called code: version id}

_P = Procedure.__table__
_V = ProcedureVersion.__table__
_CURRENT_VERSION = (
    select(_V.c.id)
    .join(_P, _P.c.id == _V.c.procedure_id)
    .where(
        _P.c.code == bindparam("code"), _P.c.scope.in_([bindparam("scope"), ""]), _V.c.version == _P.c.current_version
    )
    .order_by(_P.c.scope.desc())  # the agency's own variant ('H56…') before the province-wide one ('')
    .limit(1)
)


def current_version_id(session, code: str, agency: str | None = None) -> int:
    """The id of the current version of the variant a dossier received by `agency` runs: that agency's own
    variant, else the province-wide one (docs/security.md). One lookup on the (code, scope) unique index."""
    vid = session.connection().execute(_CURRENT_VERSION, {"code": code, "scope": agency or ""}).scalar_one_or_none()
    if vid is None:
        raise NotFound(f"Không có thủ tục mã '{code}'", f"no procedure with code '{code}'")
    return vid


def variant_for(session, code: str, agency: str | None) -> tuple[int, str | None]:
    """(current version id, owning agency or None) of the variant a dossier of `code` received by `agency`
    runs (`current_version_id`). Without an agency: the code's only variant, else its province-wide one;
    several agencies' variants and no province-wide one is a 422 asking for the agency."""
    if agency:
        vid = current_version_id(session, code, agency)
        scope = session.scalar(select(Procedure.scope).join(ProcedureVersion).where(ProcedureVersion.id == vid))
        return vid, scope or None
    scopes = session.scalars(select(Procedure.scope).where(Procedure.code == code).limit(50)).all()
    if not scopes:
        raise NotFound(f"Không có thủ tục mã '{code}'", f"no procedure with code '{code}'")
    if len(scopes) == 1 or "" in scopes:
        scope = scopes[0] if len(scopes) == 1 else ""
        return current_version_id(session, code, scope), scope or None
    raise InvalidInput(
        f"Thủ tục '{code}' do nhiều cơ quan giải quyết; hãy chọn cơ quan ({', '.join(sorted(scopes))})",
        f"procedure '{code}' is offered by several agencies; choose one ({', '.join(sorted(scopes))})",
        {"fields": {"agency": ", ".join(sorted(scopes))}},
    )


def current_version(session, code: str, agency: str | None = None) -> ProcedureVersion:
    return session.get(ProcedureVersion, current_version_id(session, code, agency))


__all__ = [
    "LoadedProcedure",
    "load_procedure",
    "load_path",
    "deploy",
    "deploy_bytes",
    "deploy_upload",
    "Upload",
    "DeployResult",
    "Runtime",
    "RuntimeCache",
    "current_version",
    "current_version_id",
    "content_hash",
    "meaning_hash",
    "form_files_beside",
]
