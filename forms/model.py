"""The form model: a JSON Schema 2020-12 document, an optional UI schema, a key and a title.

Form files come in three shapes, all loaded into the same `Form`:
1. a JSON Schema 2020-12 document, plain or wrapped as `{"schema": ..., "uiSchema": ...}`;
2. SpiffWorkflow-style pairs `X-schema.json` + `X-uischema.json` (see `load_forms`);
3. Camunda Forms (form-js JSON), converted by `forms.formjs`.
"""

from __future__ import annotations

import copy
from itertools import islice
from urllib.parse import unquote

import referencing
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema import _keywords as jsonschema_keywords
from jsonschema.exceptions import SchemaError

from . import formjs
from .documents import DOCUMENTS_KEYWORD, normalize_documents
from .errors import FORM_LEVEL, FormError, FormValidationError
from .formats import FORMAT_CHECKER, normalize_phone_vn
from .jsondata import parse_json_file, plain_json
from .messages import field_messages, message
from .patterns import pattern_problem, search

#: The intake form's fields an applicant fills in online (docs/bpmn-conventions.md, docs/online.md).
APPLICANT_KEYWORD = "x-applicant-fields"
#: The electronic result files a (result) step may attach.
RESULT_FILES_KEYWORD = "x-result-files"
_APPLICANT_DROP = {"x-documents-waived-when", APPLICANT_KEYWORD, RESULT_FILES_KEYWORD, "properties", "required"}

DIALECT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
_DIALECTS = {
    DIALECT_2020_12,
    DIALECT_2020_12 + "#",
    "http://json-schema.org/draft/2020-12/schema",
    "http://json-schema.org/draft/2020-12/schema#",
}
# No `retrieve`: a reference the schema does not resolve itself fails instead of being fetched.
_NO_REMOTE = referencing.Registry()

_SINGLE = (
    "additionalProperties",
    "propertyNames",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_BRANCHES = ("allOf", "anyOf", "oneOf", "then", "else")
_WRAPPER_KEYS = {"schema", "uiSchema", "ui_schema", "uischema", "title", "key"}
_SCHEMA_WORDS = {
    "$schema",
    "type",
    "properties",
    "allOf",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "required",
    "items",
    "enum",
    "const",
    "if",
    "not",
}
_UI_SUFFIX = "-uischema.json"
_FORM_EXTENSIONS = (".json", ".form")
_KEY_PREFIXES = (
    "camunda-forms:deployment:",
    "camunda-forms:app:",
    "embedded:deployment:",
    "embedded:app:",
    "deployment:",
)
_MAX_REF_HOPS = 32


# -- the validator: analysts' patterns in RE2 (forms/patterns.py) ----------------------------------------------


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _extra_keys(instance: dict, schema: dict) -> list:
    declared = schema.get("properties") or {}
    patterns = list(schema.get("patternProperties") or {})
    return [k for k in instance if k not in declared and not any(search(p, k) for p in patterns)]


def _additional_properties(validator, additional, instance, schema):
    if "patternProperties" not in schema:  # no pattern involved: jsonschema's own keyword
        yield from jsonschema_keywords.additionalProperties(validator, additional, instance, schema)
        return
    if not validator.is_type(instance, "object"):
        return
    extras = _extra_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for key in extras:
            yield from validator.descend(instance[key], additional, path=key)
    elif not additional and extras:
        yield ValidationError(f"{', '.join(map(repr, extras))} not allowed (no pattern matches)")


FormValidator = validators.extend(
    Draft202012Validator,
    {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional_properties},
)


def _regex_format(instance) -> bool:
    return not isinstance(instance, str) or pattern_problem(instance) is None


# Checks a schema against the 2020-12 meta-schema: `format: regex` (the `pattern` keyword) means RE2 here.
_SCHEMA_FORMATS = FormatChecker()
_SCHEMA_FORMATS.checks("regex")(_regex_format)


# -- schema checks ---------------------------------------------------------------------------------------------


#: A property marked `"x-public": true` is shown to the applicant by the public lookup (with a matching ID
#: number); every other field — staff opinions, proposals, notes — never leaves the staff's side.
PUBLIC_KEYWORD = "x-public"


def public_fields(schema) -> set[str]:
    """The top-level properties of a form's schema marked `x-public: true` (docs/bpmn-conventions.md)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return set()
    return {name for name, prop in props.items() if isinstance(prop, dict) and prop.get(PUBLIC_KEYWORD) is True}


def _pointer(root, fragment: str):
    """Resolve `#/a/b` against `root`; raise LookupError if it does not exist."""
    node = root
    if fragment == "":
        return root
    for raw in fragment.split("/")[1:]:
        node = _step(node, unquote(raw).replace("~1", "/").replace("~0", "~"))
    return node


def _step(node, token):
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise LookupError(token)


def _anchors(schema) -> set[str]:
    found, stack = set(), [schema]
    while stack:
        s = stack.pop()
        if not isinstance(s, dict):
            continue
        for k in ("$anchor", "$dynamicAnchor"):
            if isinstance(s.get(k), str):
                found.add(s[k])
        stack.extend(_subschemas(s))
    return found


def _subschemas(s: dict):
    for k in _SINGLE:
        if k in s:
            yield s[k]
    for k in _MAPS:
        if isinstance(s.get(k), dict):
            yield from s[k].values()
    for k in _LISTS:
        if isinstance(s.get(k), list):
            yield from s[k]


def _ref_target(root, ref: str, anchors: set[str]):
    """The local schema a `$ref` points to, or LookupError; ValueError for a reference that is not local."""
    if not ref.startswith("#"):
        raise ValueError(ref)
    fragment = ref[1:]
    if fragment == "" or fragment.startswith("/"):
        return _pointer(root, fragment)
    if fragment in anchors:
        return None  # an anchor: local, resolvable, checked where it is defined
    raise LookupError(fragment)


def _check_refs(root: dict, filename: str):
    """Only local references (`#/...`, `#anchor`) that resolve; no nested `$id` (it would move the base URI)."""
    anchors = _anchors(root)
    seen: set[int] = set()
    stack: list[tuple[object, str]] = [(root, "#")]
    while stack:
        s, where = stack.pop()
        if not isinstance(s, dict) or id(s) in seen:
            continue
        seen.add(id(s))
        if where != "#" and "$id" in s:
            raise FormError.in_file(
                filename, "không hỗ trợ '$id' bên trong lược đồ con", "'$id' inside a subschema is not supported", where
            )
        for keyword in ("$ref", "$dynamicRef"):
            ref = s.get(keyword)
            if ref is None:
                continue
            if not isinstance(ref, str):
                raise FormError.in_file(filename, f"'{keyword}' phải là chuỗi", f"'{keyword}' must be a string", where)
            try:
                target = _ref_target(root, ref, anchors)
            except ValueError:
                raise FormError.in_file(
                    filename,
                    f"tham chiếu '{ref}' ra ngoài tệp không được phép (chỉ nhận '#/...')",
                    f"the reference '{ref}' points outside the file, which is not allowed (only '#/...')",
                    where,
                ) from None
            except LookupError:
                raise FormError.in_file(
                    filename,
                    f"tham chiếu '{ref}' không trỏ tới phần nào của tệp",
                    f"the reference '{ref}' does not point to anything in the file",
                    where,
                ) from None
            if target is not None:
                stack.append((target, ref))
        for k in _SINGLE:
            if k in s:
                stack.append((s[k], f"{where}/{k}"))
        for k in _MAPS:
            if isinstance(s.get(k), dict):
                stack.extend((v, f"{where}/{k}/{name}") for name, v in s[k].items())
        for k in _LISTS:
            if isinstance(s.get(k), list):
                stack.extend((v, f"{where}/{k}/{i}") for i, v in enumerate(s[k]))


def _walk(schema):
    """(subschema, JSON pointer) of every subschema reachable through the schema keywords."""
    stack: list[tuple[object, str]] = [(schema, "")]
    while stack:
        s, where = stack.pop()
        if not isinstance(s, dict):
            continue
        yield s, where
        for k in _SINGLE:
            if k in s:
                stack.append((s[k], f"{where}/{k}"))
        for k in _MAPS:
            if isinstance(s.get(k), dict):
                stack.extend((v, f"{where}/{k}/{name}") for name, v in s[k].items())
        for k in _LISTS:
            if isinstance(s.get(k), list):
                stack.extend((v, f"{where}/{k}/{i}") for i, v in enumerate(s[k]))


def _check_patterns(schema: dict, filename: str):
    """Every `pattern` and `patternProperties` key must run in RE2 (linear time); see forms/patterns.py."""
    uses_patterns = uses_unevaluated = False
    for s, where in _walk(schema):
        found = []
        if "pattern" in s:
            found.append((s["pattern"], f"{where}/pattern"))
        if isinstance(s.get("patternProperties"), dict):
            uses_patterns = True
            found.extend((p, f"{where}/patternProperties") for p in s["patternProperties"])
        uses_unevaluated = uses_unevaluated or "unevaluatedProperties" in s
        for pattern, at in found:
            problem = pattern_problem(pattern)
            if problem is not None:
                raise FormError.in_file(
                    filename,
                    f"mẫu (pattern) '{pattern}' không dùng được: {problem} (chỉ nhận biểu thức chính quy chạy "
                    "trong thời gian tuyến tính, không có tham chiếu ngược hay look-around)",
                    f"the pattern '{pattern}' cannot be used: {problem} (only regular expressions that run in "
                    "linear time, without back-references or look-around)",
                    at.lstrip("/") or None,
                )
    if uses_patterns and uses_unevaluated:
        raise FormError.in_file(
            filename,
            "không dùng 'unevaluatedProperties' cùng 'patternProperties' (hãy dùng 'additionalProperties')",
            "'unevaluatedProperties' cannot be combined with 'patternProperties' (use 'additionalProperties')",
        )


def _ref_cycle(root: dict) -> tuple[str, str] | None:
    """(reference, where) of a `$ref` that leads back to itself, directly or through other references."""
    anchors: dict[str, object] = {}
    for s, _ in _walk(root):
        for k in ("$anchor", "$dynamicAnchor"):
            if isinstance(s.get(k), str):
                anchors.setdefault(s[k], s)
    located = {id(s): where for s, where in _walk(root)}

    def target(ref: str):
        fragment = ref[1:]
        if fragment in anchors:
            return anchors[fragment]
        try:
            return _pointer(root, fragment)
        except LookupError:
            return None

    def edges(s: dict):
        for k in ("$ref", "$dynamicRef"):
            if isinstance(s.get(k), str) and s[k].startswith("#"):
                t = target(s[k])
                if isinstance(t, dict):
                    yield t, s[k]
        for k in _SINGLE:
            if isinstance(s.get(k), dict):
                yield s[k], None
        for k in _MAPS:
            if isinstance(s.get(k), dict):
                yield from ((v, None) for v in s[k].values() if isinstance(v, dict))
        for k in _LISTS:
            if isinstance(s.get(k), list):
                yield from ((v, None) for v in s[k] if isinstance(v, dict))

    # Depth-first search, white/grey/black: a grey node reached again closes a cycle. The schema keywords
    # alone form a tree, so every cycle goes through a reference.
    state: dict[int, int] = {}
    for start, _ in _walk(root):
        if state.get(id(start)):
            continue
        state[id(start)] = 1
        stack = [(start, edges(start))]
        while stack:
            node, it = stack[-1]
            for child, ref in it:
                mark = state.get(id(child), 0)
                if mark == 1:
                    return ref or "$ref", located.get(id(node), "")
                if mark == 0:
                    state[id(child)] = 1
                    stack.append((child, edges(child)))
                    break
            else:
                state[id(node)] = 2
                stack.pop()
    return None


def _check_schema(schema, filename: str) -> Draft202012Validator:
    if not isinstance(schema, dict):
        raise FormError.in_file(
            filename, "lược đồ biểu mẫu phải là một đối tượng JSON", "the form schema must be a JSON object"
        )
    dialect = schema.get("$schema")
    if dialect is not None and dialect not in _DIALECTS:
        raise FormError.in_file(
            filename,
            f"chỉ hỗ trợ JSON Schema 2020-12, không hỗ trợ '$schema': '{dialect}'",
            f"only JSON Schema 2020-12 is supported, not '$schema': '{dialect}'",
        )
    if "type" in schema and schema["type"] not in ("object", ["object"]):
        raise FormError.in_file(
            filename,
            'lược đồ gốc của biểu mẫu phải có "type": "object"',
            'the root of a form schema must have "type": "object"',
        )
    _check_patterns(schema, filename)
    try:
        FormValidator.check_schema(schema, format_checker=_SCHEMA_FORMATS)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or None
        raise FormError.in_file(
            filename,
            f"lược đồ JSON Schema không hợp lệ: {exc.message}",
            f"not a valid JSON Schema: {exc.message}",
            path,
        ) from None
    _check_refs(schema, filename)
    cycle = _ref_cycle(schema)
    if cycle is not None:
        ref, where = cycle
        raise FormError.in_file(
            filename,
            f"tham chiếu '{ref}' tạo vòng lặp (lược đồ tham chiếu lại chính nó)",
            f"the reference '{ref}' makes a cycle (the schema refers back to itself)",
            where.lstrip("/") or None,
        )
    validator = FormValidator(schema, format_checker=FORMAT_CHECKER, registry=_NO_REMOTE)
    try:
        list(islice(validator.iter_errors({}), 50))
    except Exception as exc:  # whatever the schema makes jsonschema trip on is a problem of the file
        raise FormError.in_file(
            filename,
            f"lược đồ không dùng được để kiểm tra dữ liệu: {exc}",
            f"the schema cannot be used to check data: {exc}",
        ) from None
    return validator


def _deref(root: dict, s):
    """Follow local `$ref`s of a subschema (for cleaning hints only)."""
    for _ in range(_MAX_REF_HOPS):
        if not (isinstance(s, dict) and isinstance(s.get("$ref"), str) and s["$ref"].startswith("#/")):
            break
        try:
            s = _pointer(root, s["$ref"][1:])
        except LookupError:
            break
    return s if isinstance(s, dict) else {}


def _allows(s: dict, value) -> bool:
    """Whether the subschema explicitly names `value` (None or "") as acceptable."""
    t = s.get("type")
    if value is None and (t == "null" or (isinstance(t, list) and "null" in t)):
        return True
    if "const" in s and s["const"] == value and type(s["const"]) is type(value):
        return True
    return any(e == value and type(e) is type(value) for e in s.get("enum") or [])


def _stem(name: str) -> str:
    lower = name.lower()
    for ext in _FORM_EXTENSIONS:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def _basename(filename) -> str:
    if not isinstance(filename, str) or not filename.strip():
        raise FormError("Tên tệp biểu mẫu rỗng", "the form file name is empty")
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name or any(ord(c) < 32 for c in name):
        raise FormError(f"Tên tệp biểu mẫu '{filename!r}' không hợp lệ", f"the form file name {filename!r} is invalid")
    return name


# -- the model -------------------------------------------------------------------------------------------------


class Form:
    """One form: `key` (its file name), `schema` (JSON Schema 2020-12), `ui_schema` (or None), `title`.

    Construction checks the schema (FormError if it is not a valid 2020-12 object schema, refers outside the
    file, or declares a malformed documents checklist or an invalid top-level default).
    """

    def __init__(
        self,
        key: str,
        schema: dict,
        ui_schema: dict | None = None,
        title: str | None = None,
        *,
        source_format: str = "json-schema",
        warnings: list[str] | None = None,
    ):
        if not isinstance(key, str) or not key:
            raise FormError("Biểu mẫu phải có khóa (tên tệp)", "a form needs a key (its file name)")
        self.key = key
        self.schema = copy.deepcopy(schema)
        self._validator = _check_schema(self.schema, key)
        if ui_schema is not None and not isinstance(ui_schema, dict):
            raise FormError.in_file(key, "UI schema phải là một đối tượng JSON", "the UI schema must be a JSON object")
        self.ui_schema = copy.deepcopy(ui_schema) if ui_schema is not None else None
        if title is not None and not isinstance(title, str):
            raise FormError.in_file(key, "tiêu đề phải là chuỗi ký tự", "the title must be a string")
        schema_title = self.schema.get("title") if isinstance(self.schema.get("title"), str) else None
        self.title = (title or schema_title or _stem(key)).strip() or key
        self.source_format = source_format
        self.warnings = list(warnings or [])
        self._documents = normalize_documents(self.schema.get(DOCUMENTS_KEYWORD), key)
        self._result_files = normalize_documents(self.schema.get(RESULT_FILES_KEYWORD), key)
        self._applicant_fields = self._read_applicant_fields()
        self._check_defaults()

    # -- construction helpers --------------------------------------------------------------------------------
    def _properties(self) -> dict:
        props = self.schema.get("properties")
        return props if isinstance(props, dict) else {}

    def _read_applicant_fields(self) -> list[str]:
        raw = self.schema.get(APPLICANT_KEYWORD)
        if raw is None:
            return []
        if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
            raise FormError.in_file(
                self.key,
                f"'{APPLICANT_KEYWORD}' phải là danh sách tên trường",
                f"'{APPLICANT_KEYWORD}' must be a list of field names",
                APPLICANT_KEYWORD,
            )
        unknown = sorted(set(raw) - set(self._properties()))
        if unknown:
            raise FormError.in_file(
                self.key,
                f"'{APPLICANT_KEYWORD}' nêu trường không có trong biểu mẫu: {', '.join(unknown)}",
                f"'{APPLICANT_KEYWORD}' names fields the form does not declare: {', '.join(unknown)}",
                APPLICANT_KEYWORD,
            )
        return list(dict.fromkeys(raw))

    def _check_defaults(self):
        """Top-level defaults are filled in on submission, so each must pass its own field's rules."""
        for name, prop in self._properties().items():
            if isinstance(prop, dict) and "default" in prop:
                errors = [
                    e
                    for e in islice(self._validator.iter_errors({name: prop["default"]}), 50)
                    if list(e.absolute_path)[:1] == [name]
                ]
                if errors:
                    msgs = field_messages(errors)
                    raise FormError.in_file(
                        self.key,
                        f"giá trị mặc định của '{name}' không hợp lệ: " + "; ".join(msgs.values()),
                        f"the default of '{name}' is invalid: " + "; ".join(msgs.values()),
                        f"properties/{name}/default",
                    )

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_validator", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._validator = FormValidator(self.schema, format_checker=FORMAT_CHECKER, registry=_NO_REMOTE)

    def __eq__(self, other):
        if not isinstance(other, Form):
            return NotImplemented
        return (self.key, self.title, self.schema, self.ui_schema) == (
            other.key,
            other.title,
            other.schema,
            other.ui_schema,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking dicts inside: not hashable

    def __repr__(self):
        return f"Form(key={self.key!r}, title={self.title!r}, fields={sorted(self.fields())!r})"

    # -- what the rest of the product asks -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """For front-ends and storage: `{key, title, schema, ui_schema, source_format}`."""
        return {
            "key": self.key,
            "title": self.title,
            "schema": copy.deepcopy(self.schema),
            "ui_schema": copy.deepcopy(self.ui_schema),
            "source_format": self.source_format,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Form:
        """The inverse of `to_dict` (a form read back from storage is checked again)."""
        return cls(
            d["key"],
            d["schema"],
            d.get("ui_schema"),
            d.get("title"),
            source_format=d.get("source_format") or "json-schema",
        )

    def fields(self) -> set[str]:
        """Top-level property names this form can produce, conditional branches (allOf/anyOf/oneOf/if-then-else,
        dependentSchemas, local $refs) included."""
        names: set[str] = set()
        seen: set[int] = set()
        stack = [self.schema]
        while stack:
            s = _deref(self.schema, stack.pop())
            if id(s) in seen:
                continue
            seen.add(id(s))
            if isinstance(s.get("properties"), dict):
                names |= set(s["properties"])
            for k in _BRANCHES:
                v = s.get(k)
                stack.extend(v if isinstance(v, list) else [v] if isinstance(v, dict) else [])
            if isinstance(s.get("dependentSchemas"), dict):
                stack.extend(v for v in s["dependentSchemas"].values() if isinstance(v, dict))
        return names

    def documents(self) -> list[dict]:
        """The documents checklist (`x-documents`), shape checked and defaults filled in."""
        return copy.deepcopy(self._documents)

    def result_files(self) -> list[dict]:
        """The electronic result files this step may attach (`x-result-files`, same shape as `x-documents`)."""
        return copy.deepcopy(self._result_files)

    def applicant_fields(self) -> list[str]:
        """The top-level fields an applicant fills in when submitting online (`x-applicant-fields`)."""
        return list(self._applicant_fields)

    def applicant_form(self) -> Form:
        """This (intake) form cut down to the applicant's fields: their properties, which of them are
        required, and the conditional rules (`allOf`, `if`/`then`…) that read only those fields. Officers'
        fields (the decision, the reason of a refusal, notes) are left out. The documents checklist stays."""
        mine = set(self._applicant_fields)
        schema = {k: copy.deepcopy(v) for k, v in self.schema.items() if k not in _APPLICANT_DROP}
        schema["properties"] = {k: copy.deepcopy(v) for k, v in self._properties().items() if k in mine}
        required = [n for n in self.schema.get("required") or [] if n in mine]
        if required:
            schema["required"] = required
        else:
            schema.pop("required", None)
        for k in ("allOf", "anyOf", "oneOf"):
            kept = [copy.deepcopy(b) for b in self.schema.get(k) or [] if _names_in(b) <= mine]
            if kept:
                schema[k] = kept
            else:
                schema.pop(k, None)
        for k in ("if", "then", "else"):
            schema.pop(k, None)
        if (
            self.schema.get("if") is not None
            and _names_in({k: self.schema[k] for k in ("if", "then", "else") if k in self.schema}) <= mine
        ):
            schema.update({k: copy.deepcopy(self.schema[k]) for k in ("if", "then", "else") if k in self.schema})
        ui = None
        if isinstance(self.ui_schema, dict):
            ui = {k: copy.deepcopy(v) for k, v in self.ui_schema.items() if not k.startswith("ui:") and k in mine}
            if isinstance(self.ui_schema.get("ui:order"), list):
                ui["ui:order"] = [n for n in self.ui_schema["ui:order"] if n in mine or n == "*"]
            if isinstance(self.ui_schema.get("ui:formjs"), dict):
                # a form-js form is shown by its own viewer: the document cut to the applicant's fields
                ui["ui:formjs"] = formjs.applicant_document(self.ui_schema["ui:formjs"], mine)
        return Form(f"{self.key}#applicant", schema, ui, self.title)

    def prefill(self, data: dict) -> dict:
        """The current values of this form's top-level fields, taken from the dossier's data."""
        if not isinstance(data, dict):
            return {}
        return {name: copy.deepcopy(data[name]) for name in sorted(self.fields()) if name in data}

    def _keeps_extra_keys(self) -> bool:
        s = self.schema
        return "additionalProperties" in s or "unevaluatedProperties" in s or not self.fields()

    def _clean(self, value, sub):
        sub = _deref(self.schema, sub)
        if isinstance(value, str):
            value = value.strip()
            if sub.get("format") == "phone-vn":
                value = normalize_phone_vn(value)
            return value
        if isinstance(value, dict):
            props = sub.get("properties") if isinstance(sub.get("properties"), dict) else {}
            out = {}
            for k, v in value.items():
                child = props.get(k) if isinstance(props.get(k), dict) else {}
                v = self._clean(v, child)
                if (v is None or v == "") and not _allows(_deref(self.schema, child), v):
                    continue  # a blank answer is no answer (a required field then says so)
                out[k] = v
            return out
        if isinstance(value, list):
            items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
            return [self._clean(v, items) for v in value]
        return value

    def clean(self, data: dict) -> dict:
        """What `validate` checks: plain JSON, trimmed text, blanks removed, undeclared top-level keys dropped
        (unless the schema says what to do with them), top-level defaults filled in. Does not validate."""
        data = plain_json(data, self.key)
        if not self._keeps_extra_keys():
            declared = self.fields()
            patterns = list((self.schema.get("patternProperties") or {}).keys())
            data = {k: v for k, v in data.items() if k in declared or any(search(p, k) for p in patterns)}
        data = self._clean(data, self.schema)
        for name, prop in self._properties().items():
            if name not in data and isinstance(prop, dict) and "default" in prop:
                data[name] = copy.deepcopy(prop["default"])
        return data

    def validate(self, data: dict) -> dict:
        """The cleaned data (see `clean`) if the form accepts it, else FormValidationError whose
        `details["fields"]` names every faulty field with a Vietnamese / English message."""
        if not isinstance(data, dict):
            raise FormValidationError(
                {
                    FORM_LEVEL: message(
                        (
                            "Dữ liệu phải là một đối tượng JSON (các cặp tên – giá trị)",
                            "The data must be a JSON object (name/value pairs)",
                        )
                    )
                },
                self.key,
            )
        cleaned = self.clean(data)
        fields = field_messages(self._validator.iter_errors(cleaned))
        if fields:
            raise FormValidationError(fields, self.key)
        return cleaned


def _names_in(schema) -> set[str]:
    """Every property name a (sub)schema mentions in `properties` or `required`, at any depth."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        s = stack.pop()
        if isinstance(s, list):
            stack.extend(s)
            continue
        if not isinstance(s, dict):
            continue
        if isinstance(s.get("properties"), dict):
            names |= set(s["properties"])
        if isinstance(s.get("required"), list):
            names |= {n for n in s["required"] if isinstance(n, str)}
        for k, v in s.items():
            if k not in ("properties", "required") and isinstance(v, (dict, list)):
                stack.append(v)
        if isinstance(s.get("properties"), dict):
            stack.extend(v for v in s["properties"].values() if isinstance(v, (dict, list)))
    return names


# -- loading ---------------------------------------------------------------------------------------------------


def _is_wrapper(doc: dict) -> bool:
    return isinstance(doc.get("schema"), dict) and not (set(doc) & _SCHEMA_WORDS)


def _ui_from_wrapper(doc: dict, key: str):
    found = [k for k in ("uiSchema", "ui_schema", "uischema") if k in doc]
    if len(found) > 1:
        raise FormError.in_file(
            key, f"có nhiều UI schema ({', '.join(found)})", f"several UI schemas ({', '.join(found)})"
        )
    return doc[found[0]] if found else None


def load_form(filename: str, content: bytes) -> Form:
    """One form file -> Form (FormError naming the file and the problem). Keyed by the file's base name."""
    key = _basename(filename)
    doc = parse_json_file(key, content)
    if not isinstance(doc, dict):
        raise FormError.in_file(key, "tệp biểu mẫu phải chứa một đối tượng JSON", "a form file must hold a JSON object")
    if formjs.is_formjs(doc):
        schema, ui, title, warnings = formjs.convert(doc, key)
        return Form(key, schema, ui, title, source_format="form-js", warnings=warnings)
    if _is_wrapper(doc):
        unknown = sorted(set(doc) - _WRAPPER_KEYS)
        if unknown:
            raise FormError.in_file(
                key,
                f"khóa không được hỗ trợ bên cạnh 'schema': {', '.join(unknown)}",
                f"unsupported keys beside 'schema': {', '.join(unknown)}",
            )
        title = doc.get("title")
        return Form(key, doc["schema"], _ui_from_wrapper(doc, key), title if isinstance(title, str) else None)
    return Form(key, doc)


def _alias_names(key: str, form: Form) -> set[str]:
    """Other names a form is found by: its file name without extension, a form-js form's `id`."""
    names = {_stem(key)}
    ui = form.ui_schema or {}
    formjs_doc = ui.get("ui:formjs")
    formjs_id = formjs_doc.get("id") if isinstance(formjs_doc, dict) else None
    if isinstance(formjs_id, str) and formjs_id:
        names.add(formjs_id)
    return names - {key}


class Forms(dict):
    """Forms by file name; also found by name without extension (`X-schema` for `X-schema.json`), with a
    `camunda-forms:deployment:` / `embedded:deployment:` prefix, or by a form-js form's `id`."""

    def _aliases(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, form in sorted(dict.items(self)):
            for n in _alias_names(key, form):
                out.setdefault(n, key)
        return out

    def resolve(self, name) -> str | None:
        """The key of the form `name` refers to, or None."""
        if not isinstance(name, str):
            return None
        if dict.__contains__(self, name):
            return name
        for prefix in _KEY_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
        name = name.replace("\\", "/").rsplit("/", 1)[-1]
        if dict.__contains__(self, name):
            return name
        return self._aliases().get(name) or self._aliases().get(_stem(name))

    def __missing__(self, name):
        key = self.resolve(name)
        if key is None:
            raise KeyError(name)
        return dict.__getitem__(self, key)

    def __contains__(self, name):
        return self.resolve(name) is not None

    def get(self, name, default=None):
        key = self.resolve(name)
        return dict.__getitem__(self, key) if key is not None else default


def load_forms(files: dict[str, bytes]) -> Forms:
    """Every form among `files` (name -> bytes), keyed by file name (lookup also works without extension).

    `.json` and `.form` files are read (others, such as the `.bpmn` itself, are skipped). A SpiffWorkflow
    UI schema `X-uischema.json` is attached to `X-schema.json` (or `X.json`). FormError lists every problem
    of every file at once.
    """
    errors: list[FormError] = []
    result = Forms()
    ui_files: list[str] = []
    failed: set[str] = set()
    for name in sorted(files):
        key = name.replace("\\", "/").rsplit("/", 1)[-1]
        lower = key.lower()
        if not lower.endswith(_FORM_EXTENSIONS):
            continue
        if lower.endswith(_UI_SUFFIX):
            ui_files.append(name)
            continue
        try:
            form = load_form(name, files[name])
        except FormError as exc:
            errors.append(exc)
            failed.add(key.lower())
            continue
        if dict.__contains__(result, form.key):
            errors.append(FormError.in_file(form.key, "hai tệp biểu mẫu trùng tên", "two form files have this name"))
            continue
        result[form.key] = form
    keys_lower = {k.lower(): k for k in dict.keys(result)}
    for name in ui_files:
        ui_key = name.replace("\\", "/").rsplit("/", 1)[-1]
        base = ui_key[: -len(_UI_SUFFIX)]
        partner = None
        for candidate in (f"{base}-schema.json", f"{base}.json"):
            partner = keys_lower.get(candidate.lower())
            if partner:
                break
        if partner is None:
            if not failed & {f"{base}-schema.json".lower(), f"{base}.json".lower()}:
                errors.append(
                    FormError.in_file(
                        ui_key,
                        f"không có tệp lược đồ đi kèm '{base}-schema.json'",
                        f"there is no matching schema file '{base}-schema.json'",
                    )
                )
            continue
        try:
            ui = parse_json_file(ui_key, files[name])
        except FormError as exc:
            errors.append(exc)
            continue
        form = result[partner]
        if not isinstance(ui, dict):
            errors.append(
                FormError.in_file(ui_key, "UI schema phải là một đối tượng JSON", "a UI schema must be a JSON object")
            )
        elif form.ui_schema is not None:
            errors.append(
                FormError.in_file(
                    ui_key, f"'{partner}' đã có UI schema riêng", f"'{partner}' already has its own UI schema"
                )
            )
        else:
            form.ui_schema = ui
    errors.extend(_ambiguous_aliases(result))
    if errors:
        raise FormError.combine(errors)
    return result


def _ambiguous_aliases(forms: Forms) -> list[FormError]:
    """Two files whose names differ only by extension (`a.json`, `a.form`), or a file stem equal to another
    form's form-js id, would make a short name ambiguous."""
    by_alias: dict[str, list[str]] = {}
    for key, form in dict.items(forms):
        for n in _alias_names(key, form):
            by_alias.setdefault(n, []).append(key)
    out = []
    for alias, keys in sorted(by_alias.items()):
        if len(keys) > 1 and not dict.__contains__(forms, alias):
            out.append(
                FormError.in_file(
                    keys[0],
                    f"tên '{alias}' chỉ tới nhiều biểu mẫu: {', '.join(sorted(keys))}",
                    f"the name '{alias}' refers to several forms: {', '.join(sorted(keys))}",
                )
            )
    return out
