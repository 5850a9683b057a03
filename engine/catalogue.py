"""The public catalogue of procedures (what the province's portal shows, levels 1–2 included), no sign-in.

Each procedure with its agency, legal deadline, fee, online level, its steps (name and share of the
deadline; no roles), its documents checklist and its forms to fill in, print or download: the applicant's
part of the intake form (`x-applicant-fields`, see forms.Form.applicant_form); officers' forms are never
shown. Search by name or code (`q`), agency and level; paged like every list (engine/queries.py).

Which levels take online submissions (one place): `ONLINE_LEVELS`.
"""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select

from .errors import InvalidInput, NotFound
from .models import Procedure, ProcedureVersion
from .paging import MAX_PER_PAGE, page_of, paging
from .queries import like_escape

#: Online service levels that take online submissions (Decree 43/2011 levels 3 and 4; Decree 42/2022
#: "toàn trình" and "một phần"). Levels 1 and 2 only inform and offer forms to download.
ONLINE_LEVELS = frozenset({"3", "4", "toan_trinh", "mot_phan"})
LEVEL_LABELS = {
    "1": "Mức độ 1 (thông tin)",
    "2": "Mức độ 2 (tải biểu mẫu)",
    "3": "Mức độ 3 (nộp trực tuyến)",
    "4": "Mức độ 4 (nộp và thanh toán trực tuyến)",
    "toan_trinh": "Dịch vụ công trực tuyến toàn trình",
    "mot_phan": "Dịch vụ công trực tuyến một phần",
}
LEVELS = ("1", "2", "3", "4", "toan_trinh", "mot_phan")


def takes_online(level) -> bool:
    return str(level) in ONLINE_LEVELS


def _current():
    return and_(ProcedureVersion.procedure_id == Procedure.id, ProcedureVersion.version == Procedure.current_version)


def _summary(code, name, agency, meta) -> dict:
    meta = meta or {}
    level = str(meta["level"]) if meta.get("level") not in (None, "") else None
    return {
        "code": code,
        "name": name,
        "agency": agency,
        "deadline": meta.get("deadline"),
        "cutoff": meta.get("cutoff"),
        "fee": int(meta.get("fee") or 0),
        "level": level,
        "level_label": LEVEL_LABELS.get(level or ""),
        "online": takes_online(level),
    }


def list_public(
    session, q: str | None = None, agency: str | None = None, level: str | None = None, page=1, per_page=20
) -> dict:
    """A page of the public catalogue, by code."""
    page, per_page = paging(page, per_page, MAX_PER_PAGE)
    stmt = select(Procedure.code, Procedure.name, Procedure.agency, ProcedureVersion.meta).join(
        ProcedureVersion, _current()
    )
    if agency:
        stmt = stmt.where(Procedure.agency == agency.strip())
    if level:
        level = str(level).strip()
        if level not in LEVELS:
            raise InvalidInput(
                f"Mức độ '{level}' không hợp lệ", f"unknown level '{level}'", {"fields": {"level": ", ".join(LEVELS)}}
            )
        stmt = stmt.where(Procedure.level == level)  # ix_procedures_level_code
    q = (q or "").strip()
    if q:
        esc = like_escape(q)
        stmt = stmt.where(
            or_(
                Procedure.code.like(esc + "%", escape="\\"),
                func.lower(Procedure.name).like("%" + esc.lower() + "%", escape="\\"),
                func.lower(Procedure.agency).like("%" + esc.lower() + "%", escape="\\"),
            )
        )
    return page_of(
        session, stmt, (Procedure.code.asc(), Procedure.id.asc()), page, per_page, lambda r: _summary(*r)
    ).to_dict()


def _version(session, code: str, agency: str | None = None) -> tuple[Procedure, ProcedureVersion]:
    row = None
    if isinstance(code, str) and 0 < len(code) <= 64:
        stmt = select(Procedure, ProcedureVersion).join(ProcedureVersion, _current()).where(Procedure.code == code)
        if agency:
            stmt = stmt.where(Procedure.agency == agency)
        row = session.execute(stmt.order_by(Procedure.id).limit(1)).first()
    if row is None:
        raise NotFound(f"Không có thủ tục mã '{code}'", f"no procedure with code '{code}'")
    return row[0], row[1]


def public_procedure(session, runtimes, code: str, agency: str | None = None) -> dict:
    """One procedure as the public sees it (module docstring)."""
    from .attachments import checklist, intake_form

    proc, version = _version(session, code, agency)
    rt = runtimes.get(session, version.id)
    out = _summary(proc.code, proc.name, proc.agency, version.meta)
    out["version"] = version.version
    # a procedure calling others (call activities) shows their steps where it calls them, and their documents,
    # in the versions a dossier received now would run (docs/bpmn-conventions.md 9.3)
    _, called = runtimes.called_specs(session, rt, proc.agency)
    parts = _parts(session, runtimes, rt, proc.code, called)
    out["steps"] = [
        {"name": ut.get("name"), "deadline": ut.get("deadline")} | ({"procedure": owner} if owner != proc.code else {})
        for owner, _, ut in parts
        if ut is not None
    ]
    documents, seen = [], set()
    owners = {r.version_id: r for _, r, _ in parts}  # each version once, in flow order
    for owner in owners.values():
        for d in checklist(owner):
            if d["key"] not in seen:
                seen.add(d["key"])
                doc = {
                    k: d.get(k) for k in ("key", "name", "name_en", "description", "required", "accept", "max_bytes")
                }
                documents.append(doc | ({"procedure": owner.code} if owner is not rt else {}))
    out["documents"] = documents
    form = intake_form(rt)
    applicant = form.applicant_form().to_dict() if form is not None else None
    out["form"] = applicant
    out["forms"] = (
        [{"key": applicant["key"], "title": applicant["title"], "download": f"forms/{form.key}"}] if applicant else []
    )
    return out


def _flow_order(spec) -> list[str]:
    """The task spec names of a process in the order its flows reach them from the start (breadth first)."""
    start = getattr(spec, "start", None)
    order, seen, queue = [], set(), [start] if start is not None else []
    while queue:
        node = queue.pop(0)
        if node.name in seen:
            continue
        seen.add(node.name)
        order.append(node.name)
        queue.extend(node.outputs)
    return order


def _parts(session, runtimes, rt, code: str, called: dict, path: frozenset = frozenset()) -> list:
    """`[(procedure code, its Runtime, user task or None)]` of a version in flow order, a call activity replaced
    by the called version's own parts (its version id in `called`); each procedure starts with a `None` entry
    (it may have documents and no step) and appears at most once on a path."""
    calls = rt.meta.get("calls") or {}
    out: list = [(code, rt, None)]
    for name in _flow_order(rt.spec) or list(rt.user_tasks):
        if name in rt.user_tasks:
            out.append((code, rt, rt.user_tasks[name]))
        elif calls.get(name) in called and calls[name] not in path | {code}:
            callee = runtimes.get(session, called[calls[name]])
            out.extend(_parts(session, runtimes, callee, calls[name], called, path | {code}))
    return out


def public_form(session, runtimes, code: str, key: str) -> dict:
    """The applicant's form of a procedure, to download (JSON Schema with its title and documents)."""
    proc, version = _version(session, code)
    from .attachments import intake_form

    form = intake_form(runtimes.get(session, version.id))
    if form is None or key != form.key:
        raise NotFound(f"Không có biểu mẫu '{key}'", f"no form '{key}'")
    return form.applicant_form().to_dict()
