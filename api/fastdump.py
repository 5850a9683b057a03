"""A compiled `Schema.dump` for the hot answers (docs/performance.md, "The HTTP shell").

flask-smorest dumps every answer through its marshmallow schema. For `DossierSchema`, the answer of
POST /dossiers and POST /tasks/{id}/complete, marshmallow's generic field-by-field machinery cost about 50 µs
a request (ten times the JSON encoding). `FastDump` compiles the schema's own `dump_fields` once into a plan
(key, output name, a check per field) and runs it on the engine's plain dicts.

The schema stays the one source: the plan is read from its fields, so the OpenAPI document does not change,
and the output is always `Schema.dump`'s: the plan covers only String, Integer, Boolean, Dict, List and
Nested fields without defaults or hooks (a schema with anything else is dumped by marshmallow), and a value
whose type is not the plain one the field expects (a bool in an Integer field, a StrEnum in a String one, a
tuple for a List, an object instead of a dict...) sends the whole object through marshmallow.
tests/api/test_fast_dump.py compares both on real answers and on those odd values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP

_MISSING = ma.missing
_SCALARS: dict[type, type] = {fields.String: str, fields.Integer: int, fields.Boolean: bool}
Plan = list[tuple[str, str, Callable[[Any], Any]]]


class _Fallback(Exception):
    """A value the plan does not reproduce exactly: marshmallow dumps the object instead."""


def _scalar(want: type) -> Callable[[Any], Any]:
    def dump(value):
        if value is None or type(value) is want:
            return value
        raise _Fallback

    return dump


def _mapping(str_keys: bool) -> Callable[[Any], Any]:
    def dump(value):
        if value is None:
            return None
        if type(value) is not dict:
            raise _Fallback
        if str_keys:
            for key in value:
                if type(key) is not str:
                    raise _Fallback
        return dict(value)

    return dump


def _sequence(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def dump(value):
        if value is None:
            return None
        if type(value) is not list:
            raise _Fallback
        return [inner(each) for each in value]

    return dump


def _nested(plan: Plan) -> Callable[[Any], Any]:
    def dump(value):
        return None if value is None else _run(plan, value)

    return dump


def _field_plan(field: fields.Field) -> Callable[[Any], Any] | None:
    """value → dumped value, as `field` serializes it; None when the plan does not cover this field."""
    kind = type(field)
    if field.dump_default is not _MISSING:
        return None
    if kind in _SCALARS:
        if kind is fields.Integer and field.as_string:
            return None
        return _scalar(_SCALARS[kind])
    if kind is fields.Dict and field.value_field is None:
        if field.key_field is None:
            return _mapping(False)
        if type(field.key_field) is fields.String:
            return _mapping(True)
        return None
    if kind is fields.List:
        inner = _field_plan(field.inner)
        return _sequence(inner) if inner is not None else None
    if kind is fields.Nested and not field.many:
        schema = field.schema
        plan = None if schema.many else compile_plan(schema)
        return _nested(plan) if plan is not None else None
    return None


def compile_plan(schema: ma.Schema) -> Plan | None:
    """The plan of `schema`'s dump (None: not covered, marshmallow dumps it)."""
    cls = type(schema)
    if cls._serialize is not ma.Schema._serialize or cls.get_attribute is not ma.Schema.get_attribute:
        return None
    if schema.dict_class is not dict or schema._hooks.get(PRE_DUMP) or schema._hooks.get(POST_DUMP):
        return None
    plan: Plan = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute if field.attribute is not None else name
        # a dict answers getattr for its own methods: marshmallow would dump dict.items for a missing "items"
        if "." in attribute or hasattr(dict, attribute) or not field._CHECK_ATTRIBUTE:
            return None
        dump = _field_plan(field)
        if dump is None:
            return None
        plan.append((attribute, field.data_key if field.data_key is not None else name, dump))
    return plan


def _run(plan: Plan, obj) -> dict:
    if type(obj) is not dict:
        raise _Fallback
    out = {}
    for attribute, key, dump in plan:
        value = obj.get(attribute, _MISSING)
        if value is not _MISSING:
            out[key] = dump(value)
    return out


class FastDump(ma.Schema):
    """A schema whose `dump` of one plain dict runs the compiled plan (see the module docstring)."""

    _fast_plan: Plan | None

    def dump(self, obj, *, many: bool | None = None):
        many = self.many if many is None else bool(many)
        if not many:
            try:
                plan = self._fast_plan
            except AttributeError:
                plan = self._fast_plan = compile_plan(self)
            if plan is not None:
                try:
                    return _run(plan, obj)
                except _Fallback:
                    pass
        return super().dump(obj, many=many)
