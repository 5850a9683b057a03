"""Test helpers: valid form data made from a form's own JSON Schema, and a driver that works a dossier
through its user tasks by choosing the value of each decision field."""

from __future__ import annotations

from engine.auth import DUTY_ROLES, NEVER_STAFF, Actor

AGENCY = "000.31.14.H56"
SAMPLES = {
    "date": "2026-11-20",
    "date-time": "2026-11-20T09:00:00+07:00",
    "cccd": "001203004567",
    "phone-vn": "0912345678",
    "email": "nguyen.van.a@example.vn",
    "vnd": 20000,
    "time": "09:00",
}


def sample_value(prop: dict, name: str):
    if "const" in prop:
        return prop["const"]
    if prop.get("oneOf") and all("const" in o for o in prop["oneOf"]):
        return prop["oneOf"][0]["const"]
    if prop.get("enum"):
        return prop["enum"][0]
    typ = prop.get("type")
    if isinstance(typ, list):
        typ = next(t for t in typ if t != "null")
    if typ in ("integer", "number"):
        return max(1, prop.get("minimum", 1))
    if typ == "boolean":
        return True
    if typ == "array":
        items = prop.get("items") or {}
        n = max(1, prop.get("minItems", 1))
        if items.get("enum"):
            return list(items["enum"])  # every allowed value: e.g. every document ticked as received
        if items.get("oneOf") and all("const" in o for o in items["oneOf"]):
            return [o["const"] for o in items["oneOf"]]
        if items.get("oneOf"):
            return [sample_value(items, name)]
        return [sample_value(items, name) for _ in range(n)] if items else []
    if typ == "object":
        return {k: sample_value(v, k) for k, v in (prop.get("properties") or {}).items()}
    fmt = prop.get("format")
    if fmt in SAMPLES:
        return SAMPLES[fmt]
    text = f"Giá trị {name}"
    if prop.get("maxLength"):
        text = text[: prop["maxLength"]]
    return text


def fill_form(form: dict | None, choices: dict | None = None) -> dict:
    """Every declared field with a valid value, then the given choices on top."""
    schema = (form or {}).get("schema") or {}
    data = {k: sample_value(v, k) for k, v in (schema.get("properties") or {}).items()}
    data.update(choices or {})
    return data


def staff(roles, agency=AGENCY, name="canbo") -> Actor:
    """An actor as `engine.auth.load_actor` builds it, taking every role but `citizen`/`analyst` as one
    that the deployed procedures name (the tests' procedures do name them)."""
    return Actor(name, frozenset(roles), agency, lane_staff=bool(set(roles) - NEVER_STAFF - DUTY_ROLES))


ALL_ROLES = staff(
    {"receiver", "civil_status", "chairman", "police_officer", "police_chief", "specialist", "leader"}, name="tester"
)


def drive(
    service, dossier: dict, choices_by_task: dict, actor: Actor = ALL_ROLES, max_steps: int = 30
) -> tuple[dict, list]:
    """Complete open tasks until the dossier finishes. `choices_by_task` maps a task's element id to the
    decision values for that step; a list gives the values for its 1st, 2nd, … visit."""
    visits: dict[str, int] = {}
    path = []
    for _ in range(max_steps):
        if not dossier["tasks"]:
            return dossier, path
        task = dossier["tasks"][0]
        spec = task["spec_name"]
        choice = choices_by_task.get(spec, {})
        if isinstance(choice, list):
            choice = choice[min(visits.get(spec, 0), len(choice) - 1)]
        visits[spec] = visits.get(spec, 0) + 1
        form = service.task_form(actor, task["id"])
        dossier = service.complete_task(actor, task["id"], fill_form(form, choice))
        path.append(spec)
    raise AssertionError(f"dossier did not finish within {max_steps} steps: {path}")
