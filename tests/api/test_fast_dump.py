"""The compiled dump of the hot answers (api/fastdump.py) gives marshmallow's own `Schema.dump`, key order
included: on the dossiers the engine really answers with, and on the odd values the plan leaves to
marshmallow."""

from __future__ import annotations

import enum
import json
from types import SimpleNamespace

import marshmallow as ma
from marshmallow import fields

from api import fastdump
from api.schemas import DossierSchema
from engine.auth import load_actor

from .helpers import new_dossier

STEP = {"data": {"decision": "accept"}}


def marshmallow_dump(schema, obj, many=None):
    return ma.Schema.dump(schema, obj, many=many)  # marshmallow's generic dump, field by field


def same(schema, obj) -> dict:
    fast, slow = schema.dump(obj), marshmallow_dump(schema, obj)
    assert fast == slow
    assert json.dumps(fast, ensure_ascii=False) == json.dumps(slow, ensure_ascii=False)  # the order of the keys too
    return fast


def engine_answers(app, client) -> list[dict]:
    """The views the engine answers with: a start, each completion, a finished dossier read with its
    timeline, and one with labelled form data."""
    svc = app.extensions["motcua"]
    with svc.db.read() as s:
        canbo = load_actor(s, "canbo", 0)
    views = [svc.dossiers.start_dossier(canbo, "9.000001", {"name": "Nguyễn Văn An", "phone": "0912"}, 1, {})]
    while views[-1]["tasks"]:
        views.append(svc.dossiers.complete_task(canbo, views[-1]["tasks"][0]["id"], dict(STEP["data"])))
    views.append(svc.dossiers.get_dossier(canbo, views[-1]["code"]))
    d = new_dossier(client, "canbo", procedure="9.000002", data={"so_ban": 2, "ghi_chu": "đủ giấy tờ"})
    views.append(svc.dossiers.get_dossier(canbo, d["code"]))
    return views


def test_the_plan_dumps_the_engine_answers_as_marshmallow_does(app, client):
    schema = DossierSchema()
    plan = fastdump.compile_plan(schema)
    assert plan is not None and [key for _, key, _ in plan] == list(schema.dump_fields)
    views = engine_answers(app, client)
    assert any(v.get("timeline") for v in views) and any(v.get("data_view") for v in views)
    assert views[-2]["finished"] and not views[0]["finished"]
    for view in views:
        assert fastdump._run(plan, view) == marshmallow_dump(schema, view)  # no fallback on a real answer
        same(schema, view)


def test_the_http_answers_are_the_schema_dump_of_the_engine_view(app, client):
    d = new_dossier(client, "canbo")
    r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "canbo", json=STEP)
    assert r.status_code == 200
    svc = app.extensions["motcua"]
    with svc.db.read() as s:
        view = svc.dossiers.get_dossier(load_actor(s, "canbo", 0), d["code"])
    expected = marshmallow_dump(DossierSchema(), {k: v for k, v in view.items() if k not in ("timeline", "data_view")})
    assert json.loads(r.get_data()) == expected
    assert list(json.loads(r.get_data())) == list(expected)


class Colour(enum.StrEnum):
    RED = "red"


def test_odd_values_go_through_marshmallow(app, client):
    schema = DossierSchema()
    view = engine_answers(app, client)[0]
    odd = [
        {**view, "channel": True},  # a bool in an Integer field: marshmallow writes 1
        {**view, "status": Colour.RED},  # a str subclass
        {**view, "version": 3.0},
        {**view, "overdue": 1},
        {**view, "data": {1: "a", "b": 2}},  # keys marshmallow turns into strings
        {**view, "tasks": tuple(view["tasks"])},
        {**view, "applicant": SimpleNamespace(name="An", phone=None)},  # an object, not a dict
        {**view, "tasks": [{**view["tasks"][0], "roles": ("a", "b")}]},
        {k: v for k, v in view.items() if k not in ("due_at", "tasks")},  # missing keys are left out
        {**view, "colour": "red", "due_at": None, "applicant": None},  # unknown keys dropped, None kept
        {**view, "data_view": [{"form": "x"}, None]},
    ]
    for obj in odd:
        same(schema, obj)
    assert schema.dump(SimpleNamespace(**view)) == marshmallow_dump(schema, SimpleNamespace(**view))
    assert schema.dump([view, view], many=True) == marshmallow_dump(schema, [view, view], many=True)
    assert schema.dump({**view, "channel": True})["channel"] == 1


def test_schemas_the_plan_does_not_cover_are_dumped_by_marshmallow():
    class WithHook(fastdump.FastDump):
        name = fields.String()

        @ma.post_dump
        def shout(self, data, **kw):
            return {k: v.upper() for k, v in data.items()}

    class WithMethod(fastdump.FastDump):
        name = fields.Method("upper")

        def upper(self, obj):
            return obj["name"].upper()

    class WithDefault(fastdump.FastDump):
        name = fields.String(dump_default="?")
        when = fields.DateTime()

    class Items(fastdump.FastDump):
        items = fields.List(fields.String())  # a dict answers getattr(d, "items") when the key is missing

    for schema, obj, expected in (
        (WithHook(), {"name": "an"}, {"name": "AN"}),
        (WithMethod(), {"name": "an"}, {"name": "AN"}),
        (WithDefault(), {}, {"name": "?"}),
    ):
        assert fastdump.compile_plan(schema) is None
        assert schema.dump(obj) == expected
    assert fastdump.compile_plan(Items()) is None
    assert Items().dump({"items": ["a"]}) == {"items": ["a"]}
