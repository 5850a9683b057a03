"""A dossier's data as its forms define it: each value with its field's label, choices by their titles,
documents by their names, and whether only staff may see it (docs/bpmn-conventions.md, "Hiển thị dữ liệu").

`labelled_view(forms, data)` → `[{form, title, fields: [field]}]`, one section per form that defines a field
of `data` (in the order of `forms`), and a last section (`form: null`) for keys no form defines. A field is
`{key, label, kind, value, staff_only}` and, by kind:

- `choice`: `text` (the title of the chosen `oneOf`/`anyOf` const, `enum` + `x-enumNames`, form-js values);
- `choices`: `texts` (the titles of an array of choices);
- `document` / `documents`: `text` / `texts` (the names in the procedure's checklist, `x-documents`);
- `group`: `fields` (a nested object); `rows`: `columns` [{key, label, kind}] and `rows` [[field]];
- `date`, `datetime`, `time`, `money` (format `vnd`), `number`, `boolean`, `text`, `json`: the raw `value`.

Labelling lives here; how a date or an amount is written (dd/mm/yyyy, 20.000 ₫) is the pages' one display
module (api/web/src/lib/display.js), with the browser's Intl.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .model import PUBLIC_KEYWORD, Form, _deref

_BRANCHES = ("allOf", "anyOf", "oneOf", "then", "else")
_DATE_KINDS = {"date": "date", "date-time": "datetime", "datetime-local": "datetime", "time": "time"}


def _property_schemas(root: dict) -> dict[str, dict]:
    """Every top-level property a form can produce, merged from its conditional branches (first title wins)."""
    out: dict[str, dict] = {}
    seen: set[int] = set()
    stack = [root]
    while stack:
        s = _deref(root, stack.pop(0))
        if id(s) in seen:
            continue
        seen.add(id(s))
        for name, sub in (s.get("properties") or {}).items() if isinstance(s.get("properties"), dict) else ():
            sub = _deref(root, sub)
            if not isinstance(sub, dict):
                continue
            out[name] = {**sub, **out[name]} if name in out else dict(sub)
        for k in _BRANCHES:
            v = s.get(k)
            stack.extend(v if isinstance(v, list) else [v] if isinstance(v, dict) else [])
    return out


def _choices(root: dict, s: dict) -> list[tuple[Any, str]] | None:
    for k in ("oneOf", "anyOf"):
        opts = s.get(k)
        if isinstance(opts, list) and opts:
            opts = [_deref(root, o) for o in opts]
            if all(isinstance(o, dict) and "const" in o for o in opts):
                return [
                    (o["const"], o.get("title") if isinstance(o.get("title"), str) else str(o["const"])) for o in opts
                ]
    if isinstance(s.get("enum"), list):
        names = s.get("x-enumNames") or s.get("enumNames") or []
        names = names if isinstance(names, list) else []
        return [
            (v, names[i] if i < len(names) and isinstance(names[i], str) else str(v)) for i, v in enumerate(s["enum"])
        ]
    return None


def _title(choices, value) -> str | None:
    for const, title in choices:
        if const == value and type(const) is type(value):
            return title
    return None


def _type(s: dict) -> str | None:
    t = s.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    return t if isinstance(t, str) else None


class _Labeller:
    def __init__(self, documents: dict[str, str]):
        self.documents = documents  # checklist key -> name

    def field(self, root: dict, key: str, s: dict, value, ui: dict | None = None) -> dict:
        ui = ui if isinstance(ui, dict) else {}
        label = ui.get("ui:title") if isinstance(ui.get("ui:title"), str) else s.get("title")
        out: dict[str, Any] = {"key": key, "label": label if isinstance(label, str) and label else key}
        out.update(self.value(root, s, value, ui))
        return out

    def value(self, root: dict, s: dict, value, ui: dict) -> dict:
        choices = _choices(root, s)
        if choices is not None and not isinstance(value, list | dict):
            title = _title(choices, value)
            return {"kind": "choice", "value": value, "text": title if title is not None else str(value)}
        t = _type(s)
        if isinstance(value, list):
            items: dict = _deref(root, s.get("items")) if isinstance(s.get("items"), dict) else {}
            item_choices = _choices(root, items)
            if item_choices is not None and all(not isinstance(v, list | dict) for v in value):
                return {"kind": "choices", "value": value, "texts": [_title(item_choices, v) or str(v) for v in value]}
            if value and all(isinstance(v, str) and v in self.documents for v in value):
                return {"kind": "documents", "value": value, "texts": [self.documents[v] for v in value]}
            if all(isinstance(v, dict) for v in value) and isinstance(items.get("properties"), dict):
                item_ui = ui.get("items")
                return self.rows(root, items, value, item_ui if isinstance(item_ui, dict) else {})
            return {"kind": "json", "value": value}
        if isinstance(value, dict):
            raw_props = s.get("properties")
            props: dict = raw_props if isinstance(raw_props, dict) else {}
            fields = []
            for k, v in value.items():
                sub = _deref(root, props.get(k)) if k in props else {}
                fields.append(self.field(root, k, sub, v, ui.get(k)))
            return {"kind": "group", "value": value, "fields": fields}
        if isinstance(value, bool):
            return {"kind": "boolean", "value": value}
        if isinstance(value, int | float):
            return {"kind": "money" if s.get("format") == "vnd" else "number", "value": value}
        if isinstance(value, str):
            fmt = s.get("format")
            kind = _DATE_KINDS.get(fmt) if isinstance(fmt, str) else None
            if kind:
                return {"kind": kind, "value": value}
            if t in (None, "string") and value in self.documents and s.get("format") is None:
                return {"kind": "document", "value": value, "text": self.documents[value]}
        return {"kind": "text" if isinstance(value, str) else "json", "value": value}

    def rows(self, root: dict, items: dict, value: list, ui: dict) -> dict:
        props = items["properties"]
        keys = list(props) + [k for row in value for k in row if k not in props]
        keys = list(dict.fromkeys(keys))
        columns = []
        for k in keys:
            sub = _deref(root, props.get(k)) if k in props else {}
            title = sub.get("title")
            columns.append({"key": k, "label": title if isinstance(title, str) and title else k})
        rows = [
            [
                self.field(root, k, _deref(root, props.get(k)) if k in props else {}, row[k], ui.get(k))
                if k in row
                else {"key": k, "label": c["label"], "kind": "empty", "value": None}
                for k, c in zip(keys, columns, strict=True)
            ]
            for row in value
        ]
        return {"kind": "rows", "value": value, "columns": columns, "rows": rows}


def labelled_view(forms: Iterable[Form], data: dict) -> list[dict]:
    """The sections of `data` as `forms` label them (see the module's docstring)."""
    forms = list(forms)
    documents: dict[str, str] = {}
    for f in forms:
        for d in f.documents():
            documents.setdefault(d["key"], d.get("name") or d["key"])
    labeller = _Labeller(documents)
    data = data if isinstance(data, dict) else {}
    placed: set[str] = set()
    sections = []
    for f in forms:
        props = _property_schemas(f.schema)
        ui = f.ui_schema if isinstance(f.ui_schema, dict) else {}
        raw_order = ui.get("ui:order")
        order: list = raw_order if isinstance(raw_order, list) else []
        names = [n for n in order if n in props] + [n for n in props if n not in order]
        fields = []
        for name in names:
            if name in placed or name not in data:
                continue
            placed.add(name)
            s = props[name]
            field = labeller.field(f.schema, name, s, data[name], ui.get(name))
            field["staff_only"] = s.get(PUBLIC_KEYWORD) is not True
            fields.append(field)
        if fields:
            sections.append({"form": f.key, "title": f.title, "fields": fields})
    rest = [labeller.field({}, k, {}, v) | {"staff_only": True} for k, v in data.items() if k not in placed]
    if rest:
        sections.append({"form": None, "title": None, "fields": rest})
    return sections


__all__ = ["labelled_view"]
