"""Camunda Forms (form-js JSON, as saved by Camunda Modeler) converted to JSON Schema 2020-12 + a UI schema.

What is converted:
- inputs: `textfield`, `textarea`, `number`, `checkbox`, `checklist`, `radio`, `select`, `taglist`, `datetime`
  (subtype `date` / `time` / `datetime`), `expression` (a value computed in the browser: kept, not checked);
- `key` -> property name (a dotted key such as `dia_chi.tinh` makes nested objects), `label` -> `title`,
  `description`, `defaultValue` -> `default`, `readonly` -> `readOnly`;
- `validate.required` (an unticked required checkbox and an empty required checklist are refused, as form-js
  does), `minLength`, `maxLength`, `min`, `max`, `pattern`, `validationType` (`email` -> format `email`,
  `phone` -> format `phone-vn`);
- static `values` -> `oneOf: [{const, title}]` (checklists and taglists: arrays of those);
- the component's custom property `format` (Camunda Modeler, "Custom properties") sets a format this product
  checks, e.g. `cccd`, `phone-vn`, `vnd`;
- containers: `group` (its `path`, if any, makes a nested object), `dynamiclist` (an array of objects at its
  `path`); `page`/`multipage` are treated like groups;
- `filepicker` -> an entry of the documents checklist (`x-documents`), not a data field;
- layout-only components (`text`, `html`, `image`, `spacer`, `separator`, `button`, `iframe`, `table`,
  `documentPreview`) produce no data and are kept only in the UI schema (`ui:formjs` holds the original).

What cannot be checked on the server is reported in `warnings` and left out: FEEL expressions (`=...`) in
validation rules, options from `valuesKey`/`valuesExpression`, `disallowPassedDates`. A field hidden by a
`conditional` may legitimately be left empty, so it is never made required here.
"""

from __future__ import annotations

import copy
import re
from typing import Any, NoReturn

from .errors import FormError
from .files import JPEG, PDF, PNG
from .formats import CUSTOM_FORMATS, MAX_SAFE_INTEGER

_KEY = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")
_LAYOUT = {"text", "html", "image", "spacer", "separator", "button", "iframe", "table", "documentPreview"}
_CONTAINERS = {"group", "dynamiclist", "page", "multipage"}
_INPUTS = {
    "textfield",
    "textarea",
    "number",
    "checkbox",
    "checklist",
    "radio",
    "select",
    "taglist",
    "datetime",
    "expression",
    "filepicker",
}
_ACCEPT = {
    ".pdf": [PDF],
    "application/pdf": [PDF],
    ".jpg": [JPEG],
    ".jpeg": [JPEG],
    "image/jpeg": [JPEG],
    ".png": [PNG],
    "image/png": [PNG],
    "image/*": [JPEG, PNG],
}
_EXTRA_FORMATS = {"date", "date-time", "time", "email", "datetime-local"}


def is_formjs(doc) -> bool:
    """A form-js document: a `components` list and `"type": "default"` or a `schemaVersion`."""
    return (
        isinstance(doc, dict)
        and isinstance(doc.get("components"), list)
        and (doc.get("type") == "default" or "schemaVersion" in doc)
    )


class _Obj:
    """An object being built: its properties (leaves or objects), required names and UI hints."""

    def __init__(self, title=None, description=None):
        self.props: dict[str, _Obj | _Leaf | _Array] = {}
        self.required: list[str] = []
        self.title = title
        self.description = description
        self.ui: dict = {}

    def require(self, name):
        if name not in self.required:
            self.required.append(name)

    def schema(self) -> dict:
        out: dict[str, Any] = {"type": "object"}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        out["properties"] = {name: p.schema() for name, p in self.props.items()}
        # a nested object holding required fields must itself be sent, or its fields would go unchecked
        required = list(self.required) + [
            name
            for name, p in self.props.items()
            if isinstance(p, _Obj) and p.has_required() and name not in self.required
        ]
        if required:
            out["required"] = required
        return out

    def has_required(self) -> bool:
        return bool(self.required) or any(isinstance(p, _Obj) and p.has_required() for p in self.props.values())

    def ui_schema(self) -> dict:
        out = dict(self.ui)
        if self.props:
            out["ui:order"] = list(self.props)
        for name, p in self.props.items():
            sub = p.ui_schema()
            if sub:
                out[name] = sub
        return out


class _Leaf:
    def __init__(self, schema: dict, ui: dict):
        self._schema, self._ui = schema, ui

    def schema(self) -> dict:
        return self._schema

    def ui_schema(self) -> dict:
        return self._ui


class _Array:
    """A dynamic list: an array whose items are objects built from the list's children."""

    def __init__(self, items: _Obj, title, description, ui):
        self.items, self.title, self.description, self.ui = items, title, description, ui

    def schema(self) -> dict:
        out: dict[str, Any] = {"type": "array"}
        if self.title:
            out["title"] = self.title
        if self.description:
            out["description"] = self.description
        out["items"] = self.items.schema()
        return out

    def ui_schema(self) -> dict:
        out = dict(self.ui)
        items = self.items.ui_schema()
        if items:
            out["items"] = items
        return out


class _Converter:
    def __init__(self, filename: str):
        self.filename = filename
        self.warnings: list[str] = []
        self.documents: list[dict] = []

    # -- reporting -------------------------------------------------------------------------------------------
    def _name(self, comp, where) -> str:
        ident = comp.get("key") or comp.get("path") or comp.get("id") or comp.get("type")
        return f"{ident} ({where})"

    def fail(self, comp, where, vi, en) -> NoReturn:
        raise FormError.in_file(
            self.filename,
            f"thành phần '{self._name(comp, where)}': {vi}",
            f"component '{self._name(comp, where)}': {en}",
            where,
        )

    def warn(self, comp, where, vi, en):
        self.warnings.append(
            f"{self.filename}: thành phần '{self._name(comp, where)}': {vi} / "
            f"component '{self._name(comp, where)}': {en}"
        )

    # -- helpers ---------------------------------------------------------------------------------------------
    def _text(self, comp, where, field):
        value = comp.get(field)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.fail(comp, where, f"'{field}' phải là chuỗi ký tự", f"'{field}' must be a string")
        if value.startswith("="):
            self.warn(
                comp,
                where,
                f"biểu thức FEEL ở '{field}' không được tính trên máy chủ",
                f"the FEEL expression in '{field}' is not evaluated on the server",
            )
            return None
        return value

    def _number(self, comp, where, field, integer=False):
        value = (comp.get("validate") or {}).get(field)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("="):
                self.warn(
                    comp,
                    where,
                    f"biểu thức FEEL ở 'validate.{field}' không được kiểm tra trên máy chủ",
                    f"the FEEL expression in 'validate.{field}' is not checked on the server",
                )
                return None
            try:
                value = float(text) if any(c in text for c in ".eE") else int(text)
            except ValueError:
                self.fail(comp, where, f"'validate.{field}' phải là số", f"'validate.{field}' must be a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(comp, where, f"'validate.{field}' phải là số", f"'validate.{field}' must be a number")
        if integer:
            if value != int(value) or value < 0:
                self.fail(
                    comp,
                    where,
                    f"'validate.{field}' phải là số nguyên không âm",
                    f"'validate.{field}' must be a non-negative integer",
                )
            value = int(value)
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        return value

    def _options(self, comp, where):
        """`oneOf: [{const, title}]` for static values; None when the options come from data."""
        if comp.get("valuesKey") or comp.get("valuesExpression"):
            self.warn(
                comp,
                where,
                "danh sách lựa chọn lấy từ dữ liệu nên không được kiểm tra trên máy chủ",
                "the options come from data, so the server does not check the chosen value",
            )
            return None
        values = comp.get("values")
        if values is None:
            return None
        if not isinstance(values, list):
            self.fail(comp, where, "'values' phải là một mảng", "'values' must be an array")
        options, seen = [], []
        for i, v in enumerate(values):
            if not isinstance(v, dict) or "value" not in v:
                self.fail(comp, where, f"lựa chọn thứ {i + 1} thiếu 'value'", f"option {i + 1} has no 'value'")
            if v["value"] in seen:
                self.fail(
                    comp,
                    where,
                    f"giá trị '{v['value']}' lặp lại trong các lựa chọn",
                    f"the value '{v['value']}' appears twice among the options",
                )
            seen.append(v["value"])
            label = v.get("label")
            options.append(
                {"const": v["value"], "title": label if isinstance(label, str) and label else str(v["value"])}
            )
        return options or None

    @staticmethod
    def _option_type(options):
        kinds = {type(o["const"]) for o in options}
        if kinds == {str}:
            return "string"
        if kinds <= {int, float} and bool not in kinds:
            return "number"
        if kinds == {bool}:
            return "boolean"
        return None

    # -- components ------------------------------------------------------------------------------------------
    def components(self, comps, target: _Obj, where: str):
        if not isinstance(comps, list):
            raise FormError.in_file(
                self.filename, "'components' phải là một mảng", "'components' must be an array", where
            )
        for i, comp in enumerate(comps):
            here = f"{where}/{i}"
            if not isinstance(comp, dict):
                raise FormError.in_file(
                    self.filename, "mỗi thành phần phải là một đối tượng", "each component must be an object", here
                )
            self.component(comp, target, here)

    def _place(self, obj: _Obj, dotted: str, item, required: bool, comp, where):
        parts = dotted.split(".")
        for part in parts[:-1]:
            cur = obj.props.get(part)
            if cur is None:
                cur = obj.props[part] = _Obj()
            elif not isinstance(cur, _Obj):
                self.fail(
                    comp,
                    where,
                    f"'{dotted}' trùng với trường '{part}' đã có",
                    f"'{dotted}' clashes with the existing field '{part}'",
                )
            if required:
                obj.require(part)
            obj = cur
        last = parts[-1]
        existing = obj.props.get(last)
        if isinstance(item, _Obj) and isinstance(existing, _Obj):  # two groups sharing a path: one object
            existing.title = existing.title or item.title
            return existing
        if existing is not None:
            self.fail(
                comp,
                where,
                f"khóa '{dotted}' đã được dùng bởi một thành phần khác",
                f"the key '{dotted}' is already used by another component",
            )
        obj.props[last] = item
        if required:
            obj.require(last)
        return item

    def component(self, comp, target: _Obj, where: str):
        kind = comp.get("type")
        if kind in _LAYOUT:
            return
        if kind in _CONTAINERS:
            return self.container(comp, target, where)
        if kind not in _INPUTS:
            self.fail(
                comp,
                where,
                f"loại thành phần '{kind}' không được hỗ trợ",
                f"the component type '{kind}' is not supported",
            )
        key = comp.get("key")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            self.fail(
                comp,
                where,
                "thiếu 'key' hoặc 'key' không hợp lệ (chữ không dấu, số, _ và dấu chấm)",
                "'key' is missing or invalid (ASCII letters, digits, _ and dots)",
            )
        validate = comp.get("validate") or {}
        if not isinstance(validate, dict):
            self.fail(comp, where, "'validate' phải là một đối tượng", "'validate' must be an object")
        required = validate.get("required") is True
        if isinstance(validate.get("required"), str):
            self.warn(
                comp,
                where,
                "điều kiện bắt buộc là biểu thức FEEL, không kiểm tra trên máy chủ",
                "'required' is a FEEL expression and is not checked on the server",
            )
        if required and comp.get("conditional"):
            required = False
            self.warn(
                comp,
                where,
                "trường có điều kiện ẩn/hiện nên không bắt buộc trên máy chủ",
                "the field can be hidden by a condition, so the server does not require it",
            )
        if kind == "filepicker":
            return self.filepicker(comp, where, key, required)

        schema, ui = self.input_schema(comp, kind, where, required)
        label = self._text(comp, where, "label")
        if label:
            schema = {"title": label, **schema}
        description = self._text(comp, where, "description")
        if description:
            schema["description"] = description
        if "defaultValue" in comp and comp["defaultValue"] is not None:
            schema["default"] = copy.deepcopy(comp["defaultValue"])
        if comp.get("readonly") is True or comp.get("disabled") is True:
            schema["readOnly"] = True
        if comp.get("disabled") is True:
            ui["ui:disabled"] = True
        if comp.get("readonly") is True:
            ui["ui:readonly"] = True
        self._place(target, key, _Leaf(schema, ui), required, comp, where)

    def input_schema(self, comp, kind, where, required):
        ui: dict = {}
        custom = comp.get("properties") if isinstance(comp.get("properties"), dict) else {}
        fmt = custom.get("format")
        if fmt is not None and fmt not in CUSTOM_FORMATS | _EXTRA_FORMATS:
            self.fail(comp, where, f"định dạng '{fmt}' không được hỗ trợ", f"the format '{fmt}' is not supported")
        validate = comp.get("validate") or {}

        if kind in ("textfield", "textarea"):
            schema = {"type": "string"}
            for field, keyword in (("minLength", "minLength"), ("maxLength", "maxLength")):
                n = self._number(comp, where, field, integer=True)
                if n is not None:
                    schema[keyword] = n
            pattern = validate.get("pattern")
            if isinstance(pattern, str) and pattern:
                if pattern.startswith("="):
                    self.warn(
                        comp,
                        where,
                        "mẫu (pattern) là biểu thức FEEL, không kiểm tra trên máy chủ",
                        "the pattern is a FEEL expression and is not checked on the server",
                    )
                else:
                    schema["pattern"] = pattern
            vtype = validate.get("validationType")
            if vtype == "email":
                schema["format"] = "email"
            elif vtype == "phone":
                schema["format"] = "phone-vn"
            if fmt:
                schema["format"] = fmt
                if fmt == "vnd":
                    schema = {"type": "integer", "format": "vnd", "minimum": 0}
            if kind == "textarea":
                ui["ui:widget"] = "textarea"
            return schema, ui

        if kind == "number":
            if comp.get("serializeToString"):
                schema = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
                if "min" in validate or "max" in validate:
                    self.warn(
                        comp,
                        where,
                        "số lưu dạng chuỗi: min/max không kiểm tra trên máy chủ",
                        "a number kept as text: min/max are not checked on the server",
                    )
                return schema, ui
            integer = comp.get("decimalDigits") == 0 or fmt == "vnd"
            schema = {"type": "integer" if integer else "number"}
            if fmt == "vnd":
                schema.update({"format": "vnd", "minimum": 0})
            elif fmt:
                self.fail(
                    comp,
                    where,
                    f"định dạng '{fmt}' không dùng được cho ô số",
                    f"the format '{fmt}' cannot be used on a number field",
                )
            lo, hi = self._number(comp, where, "min"), self._number(comp, where, "max")
            if lo is not None:
                schema["minimum"] = max(lo, schema.get("minimum", lo))
            if hi is not None:
                schema["maximum"] = hi
            increment = comp.get("increment")
            if isinstance(increment, str) and increment.strip() and not increment.startswith("="):
                try:
                    increment = float(increment)
                except ValueError:
                    self.fail(comp, where, "'increment' phải là số", "'increment' must be a number")
            if isinstance(increment, (int, float)) and not isinstance(increment, bool) and increment > 0:
                if float(increment).is_integer() and increment <= MAX_SAFE_INTEGER:
                    schema["multipleOf"] = int(increment)
                else:
                    self.warn(
                        comp,
                        where,
                        "bước nhảy thập phân không kiểm tra trên máy chủ",
                        "a fractional increment is not checked on the server",
                    )
            ui["ui:widget"] = "updown"
            return schema, ui

        if kind == "checkbox":
            schema = {"type": "boolean"}
            if required:
                schema["const"] = True  # form-js refuses an unticked required checkbox
            ui["ui:widget"] = "checkbox"
            return schema, ui

        if kind in ("radio", "select"):
            options = self._options(comp, where)
            schema = {}
            if options:
                t = self._option_type(options)
                if t:
                    schema["type"] = t
                schema["oneOf"] = options
            else:
                schema["type"] = "string"
            ui["ui:widget"] = "radio" if kind == "radio" else "select"
            return schema, ui

        if kind in ("checklist", "taglist"):
            options = self._options(comp, where)
            items: dict = {"type": "string"}
            if options:
                items = {"oneOf": options}
                t = self._option_type(options)
                if t:
                    items = {"type": t, "oneOf": options}
            schema = {"type": "array", "items": items, "uniqueItems": True}
            if required:
                schema["minItems"] = 1  # form-js refuses an empty required multiselect
            ui["ui:widget"] = "checkboxes" if kind == "checklist" else "tags"
            return schema, ui

        if kind == "datetime":
            subtype = comp.get("subtype") or "date"
            if subtype == "date":
                schema = {"type": "string", "format": "date"}
            elif subtype == "time":
                schema = {"type": "string", "format": "time"}
            elif subtype == "datetime":
                local = comp.get("timeSerializingFormat") == "no_timezone"
                schema = {"type": "string", "format": "datetime-local" if local else "date-time"}
            else:
                self.fail(
                    comp,
                    where,
                    f"kiểu ngày giờ '{subtype}' không hợp lệ (date, time, datetime)",
                    f"the datetime subtype '{subtype}' is invalid (date, time, datetime)",
                )
            if comp.get("disallowPassedDates"):
                self.warn(
                    comp,
                    where,
                    "'không cho chọn ngày đã qua' không kiểm tra trên máy chủ",
                    "'disallowPassedDates' is not checked on the server",
                )
            ui["ui:widget"] = {"date": "date", "time": "time"}.get(subtype, "datetime")
            return schema, ui

        if kind == "expression":
            self.warn(
                comp,
                where,
                "giá trị do trình duyệt tính (biểu thức) nên không được kiểm tra",
                "the value is computed in the browser and is not checked",
            )
            return {"readOnly": True}, {"ui:widget": "hidden"}

        raise AssertionError(kind)  # pragma: no cover - every input kind is handled above

    def filepicker(self, comp, where, key, required):
        accept: list[str] = []
        raw = comp.get("accept")
        if isinstance(raw, str) and raw.strip() and not raw.startswith("="):
            for token in (t.strip().lower() for t in raw.split(",")):
                if not token:
                    continue
                if token not in _ACCEPT:
                    self.warn(
                        comp,
                        where,
                        f"kiểu tệp '{token}' không được nhận (chỉ PDF, JPEG, PNG)",
                        f"the file type '{token}' is not accepted (only PDF, JPEG, PNG)",
                    )
                    continue
                accept += [t for t in _ACCEPT[token] if t not in accept]
        doc = {"key": key, "name": self._text(comp, where, "label") or key, "required": required}
        if accept:
            doc["accept"] = accept
        description = self._text(comp, where, "description")
        if description:
            doc["description"] = description
        if any(d["key"] == key for d in self.documents):
            self.fail(comp, where, f"giấy tờ '{key}' khai báo hai lần", f"the document '{key}' is declared twice")
        self.documents.append(doc)

    def container(self, comp, target: _Obj, where: str):
        kind = comp.get("type")
        path = comp.get("path")
        if path is not None and path != "" and (not isinstance(path, str) or not _KEY.fullmatch(path)):
            self.fail(
                comp,
                where,
                "'path' không hợp lệ (chữ không dấu, số, _ và dấu chấm)",
                "'path' is invalid (ASCII letters, digits, _ and dots)",
            )
        label = self._text(comp, where, "label")
        children = comp.get("components") or []
        if kind == "dynamiclist":
            if not path:
                self.fail(comp, where, "danh sách động phải có 'path'", "a dynamic list needs a 'path'")
            items = _Obj()
            self.components(children, items, f"{where}/components")
            ui = {
                "ui:options": {
                    "addable": comp.get("allowAddRemove", True) is not False,
                    "removable": comp.get("allowAddRemove", True) is not False,
                }
            }
            self._place(target, path, _Array(items, label, None, ui), False, comp, where)
            return
        if path:
            inner = self._place(target, path, _Obj(title=label), False, comp, where)
            self.components(children, inner, f"{where}/components")
        else:
            self.components(children, target, f"{where}/components")


def applicant_document(doc: dict, fields: set[str]) -> dict:
    """The form-js document `doc` cut down to the components an applicant fills in (`fields`, the form's
    `x-applicant-fields`, top-level names): a field whose key (or a group's or list's path) starts with one of
    them is kept, a group without a path is kept with the components it keeps; everything else — officers'
    fields, and text or images placed among them — is left out, as the applicant's JSON Schema leaves them."""

    def top(name) -> str | None:
        return name.split(".", 1)[0] if isinstance(name, str) and name else None

    def keep(components) -> list:
        out = []
        for comp in components if isinstance(components, list) else []:
            if not isinstance(comp, dict):
                continue
            name = top(comp.get("key")) or top(comp.get("path"))
            if name is not None:
                if name in fields:
                    out.append(copy.deepcopy(comp))
                continue
            if isinstance(comp.get("components"), list):
                children = keep(comp["components"])
                if children:
                    out.append(
                        {**copy.deepcopy({k: v for k, v in comp.items() if k != "components"}), "components": children}
                    )
        return out

    cut = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("components", "x-documents-waived-when")}
    cut["components"] = keep(doc.get("components"))
    return cut


def convert(doc: dict, filename: str) -> tuple[dict, dict, str | None, list[str]]:
    """form-js document -> (JSON Schema 2020-12, UI schema, title or None, warnings)."""
    conv = _Converter(filename)
    root = _Obj()
    conv.components(doc["components"], root, "components")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **root.schema()}
    title = doc.get("title") if isinstance(doc.get("title"), str) and doc.get("title") else None
    if title:
        schema = {"title": title, **schema}
    documents = (
        list(doc.get("x-documents") or []) if isinstance(doc.get("x-documents"), list) else doc.get("x-documents")
    )
    if conv.documents:
        documents = (documents or []) + conv.documents
    if documents is not None:
        schema["x-documents"] = documents
    # the form's motcua keywords that are not components: which fields an applicant fills in online, and when
    # the checklist is waived (docs/bpmn-conventions.md); checked by forms.model.Form like a JSON Schema's
    for keyword in ("x-applicant-fields", "x-documents-waived-when"):
        if keyword in doc:
            schema[keyword] = copy.deepcopy(doc[keyword])
    ui = root.ui_schema()
    ui["ui:formjs"] = copy.deepcopy(doc)
    return schema, ui, title, conv.warnings
