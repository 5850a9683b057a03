"""A cheaper way through flask-smorest for the hot operations (docs/performance.md, "The HTTP shell").

POST /dossiers and POST /tasks/{id}/complete keep their flask-smorest decorators (`blp.doc`,
`blp.arguments`, `blp.response`, `errors`): they write the OpenAPI document, which stays byte for byte the
same. `@hot`, placed above them, registers a view that does what their wrappers do without going through
them: five wrappers, each looking up the app and whether the view is a coroutine, and webargs' parsing
(a proxy over the headers, the body decoded a second time, the schema's generic `load`).

- each `blp.arguments` schema (body: `json`, or `headers`) is loaded by a plan compiled from its own fields
  (`compile_load`): each field's own `deserialize` (the same types, defaults and validators), without the
  schema's error store, hooks and unknown-field bookkeeping. The body is the JSON Flask already parsed for
  the input hygiene (api/hygiene.py), not a second parse.
- anything the plan does not reproduce exactly (a field refusing its value, an unknown key, a body that is
  not a JSON object starting with `{`, a schema with hooks) sends the request through the decorated view
  instead: webargs then answers it as before, the same 422 naming the same fields.
- the answer: the response schema's dump (api/fastdump.py) and the application's JSON, with the status and
  headers the view returned, as flask-smorest's `response` does.

Authorization is untouched: it runs in the blueprint's `before_request` (api/auth.authenticate), before any
view, so a 401 or 403 still comes before any 422. tests/api/test_hotpath.py compares both ways on the same
requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import current_app, request
from flask_smorest.utils import get_appcontext, set_status_and_headers_in_response, unpack_tuple_response
from marshmallow import fields, validate
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from werkzeug import Response

_MISSING = ma.missing
Loader = Callable[[Any], dict]
JSON = "application/json"


class _Fallback(Exception):
    """Input the plan does not answer exactly as marshmallow would: the decorated view parses it."""


def _plain_schema(schema: ma.Schema) -> bool:
    cls = type(schema)
    if schema.many or schema.partial or schema.dict_class is not dict:
        return False
    if cls._deserialize is not ma.Schema._deserialize or cls._do_load is not ma.Schema._do_load:
        return False
    if cls.load is not ma.Schema.load:
        return False
    return not any(schema._hooks.get(tag) for tag in (PRE_LOAD, POST_LOAD, VALIDATES, VALIDATES_SCHEMA))


def _field_loader(field: fields.Field, name: str) -> Callable[[Any, dict], Any] | None:
    """raw value (or missing) → loaded value (or missing), as `field` loads it inside its schema."""
    if type(field) is fields.Nested:
        schema = field.schema
        if field.many or field.unknown is not None or not _plain_schema(schema):
            return None
        if not field.required or field.allow_none or field.validators or field.load_default is not _MISSING:
            return None
        inner = compile_load(schema, schema.unknown)
        if inner is None:
            return None

        def nested(value, _data):
            if type(value) is not dict:  # missing, None, a list...: marshmallow's own message
                raise _Fallback
            return inner(value)

        return nested

    text = _text_loader(field)
    if text is not None:
        return text

    def load(value, data):
        try:
            return field.deserialize(value, name, data)
        except ma.ValidationError:
            raise _Fallback from None

    return load


def _text_loader(field: fields.Field) -> Callable[[Any, dict], Any] | None:
    """A String field whose only validators are lengths, without a default (most of the hot fields): what
    `field.deserialize` does, inline; any value it would refuse, or convert (bytes), is left to marshmallow."""
    if type(field) is not fields.String or field.load_default is not _MISSING:
        return None
    bounds = []
    for validator in field.validators:
        if type(validator) is not validate.Length:
            return None
        bounds.append((validator.min, validator.max, validator.equal))
    required, allow_none = field.required, field.allow_none

    def load(value, _data):
        if value is _MISSING:
            if required:
                raise _Fallback
            return _MISSING
        if value is None:
            if allow_none:
                return None
            raise _Fallback
        if type(value) is not str:
            raise _Fallback
        size = len(value)
        for low, high, equal in bounds:
            if equal is not None:
                if size != equal:
                    raise _Fallback
            elif (low is not None and size < low) or (high is not None and size > high):
                raise _Fallback
        return value

    return load


def compile_load(schema: ma.Schema, unknown: str) -> Loader | None:
    """`schema.load(data, unknown=unknown)` for plain dicts (None: this schema is not covered): with `RAISE` a
    key the schema does not know is marshmallow's error (so the decorated view answers), with `EXCLUDE` it is
    ignored (webargs' choice for headers)."""
    if unknown not in (ma.RAISE, ma.EXCLUDE) or not _plain_schema(schema):
        return None
    raise_unknown = unknown == ma.RAISE
    plan: list[tuple[str, str, Callable[[Any, dict], Any]]] = []
    for name, field in schema.load_fields.items():
        attribute = field.attribute or name
        if "." in attribute:  # marshmallow would build nested dicts
            return None
        loader = _field_loader(field, field.data_key if field.data_key is not None else name)
        if loader is None:
            return None
        plan.append((field.data_key if field.data_key is not None else name, attribute, loader))
    known = frozenset(key for key, _, _ in plan)

    def run(data) -> dict:
        if type(data) is not dict:
            raise _Fallback
        if raise_unknown and not known.issuperset(data):
            raise _Fallback
        out = {}
        for key, attribute, loader in plan:
            value = loader(data.get(key, _MISSING), data)
            if value is not _MISSING:
                out[attribute] = value
        return out

    return run


def _headers_loader(schema: ma.Schema) -> Callable[[Any], dict]:
    run = compile_load(schema, ma.EXCLUDE)  # webargs loads headers with unknown=EXCLUDE
    if run is None:
        raise TypeError(f"@hot: {type(schema).__name__} is not a plain schema")
    keys = [field.data_key or name for name, field in schema.load_fields.items()]
    for name, field in schema.load_fields.items():
        if type(field) is not fields.String:
            raise TypeError(f"@hot: header {name} is not a String field")

    def load(req) -> dict:
        headers = req.headers
        return run({key: value for key in keys if (value := headers.get(key)) is not None})

    return load


def _body_loader(schema: ma.Schema) -> Callable[[Any], dict]:
    run = compile_load(schema, schema.unknown)  # webargs leaves a body's unknown keys to the schema
    if run is None:
        raise TypeError(f"@hot: {type(schema).__name__} is not a plain schema")

    def load(req) -> dict:
        # webargs reads a body only under a JSON mimetype and decodes it as UTF-8 itself; Flask's parser also
        # takes UTF-16/32 and a BOM. A body opening with "{" then a non-NUL byte is UTF-8 to both.
        content_type = req.environ.get("CONTENT_TYPE", "")  # `req.mimetype`, without parsing the header
        if content_type != JSON and content_type.partition(";")[0].strip().lower() != JSON:
            raise _Fallback
        raw = req.get_data(cache=True)
        if raw[:1] != b"{" or raw[1:2] == b"\x00":
            raise _Fallback
        return run(req.get_json(silent=True))  # parsed once already by the input hygiene

    return load


def _innermost(view):
    seen = 0
    while getattr(view, "__wrapped__", None) is not None and seen < 20:
        view, seen = view.__wrapped__, seen + 1
    return view


def hot(decorated):
    """Decorator, right below `@blp.route` (or `@requires`) and above the flask-smorest decorators: see the
    module docstring. The view function is called as the decorators would call it: the loaded arguments
    positionally, outermost `blp.arguments` first, then the path's parameters by name."""
    apidoc = decorated._apidoc
    inner = _innermost(decorated)
    loaders = []
    for parameter in reversed(apidoc["arguments"]["parameters"]):  # outermost decorator first
        location = parameter["in"]
        if location == "json":
            loaders.append(_body_loader(parameter["schema"]))
        elif location == "headers":
            loaders.append(_headers_loader(parameter["schema"]))
        else:
            raise TypeError(f"@hot: arguments in {location} are not covered")
    (status_code,) = apidoc["success_status_codes"]
    (doc,) = apidoc["response"]["responses"][status_code]
    schema = doc["schema"]
    if not isinstance(schema, ma.Schema) or schema.many:
        raise TypeError("@hot: the response needs one marshmallow schema")
    dump = schema.dump

    def view(**view_args):
        req = request._get_current_object()
        try:
            args = [load(req) for load in loaders]
        except _Fallback:
            return decorated(**view_args)  # webargs parses it, and refuses it as before
        result, status, headers = unpack_tuple_response(inner(*args, **view_args))
        if isinstance(result, Response):
            set_status_and_headers_in_response(result, status, headers)
            return result
        result_dump = dump(result)
        get_appcontext()["result_dump"] = result_dump
        resp = current_app.json.response(result_dump)
        set_status_and_headers_in_response(resp, status, headers)
        if status is None:
            resp.status_code = status_code
        return resp

    view.__name__ = decorated.__name__
    view.__qualname__ = decorated.__qualname__
    view.__doc__ = decorated.__doc__
    view.__module__ = decorated.__module__
    view.__wrapped__ = decorated  # type: ignore[attr-defined]  # api.auth.requires reads through it
    view._apidoc = apidoc  # type: ignore[attr-defined]  # the document is the decorators'
    return view
