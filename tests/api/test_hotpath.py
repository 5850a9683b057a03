"""The cheaper path of the hot operations (api/hotpath.py): POST /dossiers and POST /tasks/{id}/complete load
their arguments by plans compiled from the schemas and answer as flask-smorest would; anything the plan does
not reproduce goes through webargs as before. Checked here: the plans load what marshmallow loads (key order
included) and leave everything else to it; the same requests answered both ways give the same answers;
authorization still comes before validation; Idempotency-Key, the request id and the metrics hold; the
document is the decorators'."""

from __future__ import annotations

import copy
import json

import marshmallow as ma
import pytest
from flask_smorest import Blueprint as SmorestBlueprint

from api import hotpath
from api.metrics import REQUESTS
from api.schemas import CompleteHeaders, CompleteSchema, IdempotencyHeaders, NewDossierSchema

from .helpers import assert_problem, new_dossier

ACCEPT = {"data": {"decision": "accept"}}
APPLICANT = {"name": "Nguyễn Văn An", "id_number": "001099012345", "phone": "0912345678", "email": "an@example.vn"}
NEW = {"procedure_code": "9.000001", "applicant": APPLICANT, "channel": 1, "data": {}}

# bodies marshmallow loads, and bodies it refuses (each: what is sent)
COMPLETE_BODIES = [
    {},
    {"data": {}},
    {"data": {"decision": "accept", "so_ban": 2, "ghi_chu": "Đã kiểm tra", "list": [1, {"a": None}]}},
    {"version": 3},
    {"version": None, "data": {"x": 1.5}},
    {"data": None},
    {"data": "x"},
    {"data": [1]},
    {"version": 0},
    {"version": "3"},
    {"version": 3.0},
    {"version": 3.5},
    {"version": True},
    {"data": {}, "extra": 1},
    {"Data": {}},
    [],
    "x",
    None,
]
NEW_BODIES = [
    NEW,
    {"procedure_code": "9.000001", "applicant": {"name": "A"}},
    {**NEW, "channel": "online"},
    {**NEW, "channel": 3, "agency": "000.31.14.H56", "received_at": None},
    {**NEW, "applicant": {"name": "A", "id_number": None, "phone": None, "email": None}},
    {**NEW, "channel": 4},
    {**NEW, "channel": True},
    {**NEW, "channel": "bưu chính"},
    {**NEW, "procedure_code": ""},
    {**NEW, "procedure_code": "x" * 65},
    {**NEW, "procedure_code": 9},
    {**NEW, "applicant": {"name": ""}},
    {**NEW, "applicant": {"name": "A" * 201}},
    {**NEW, "applicant": {"name": "A", "extra": 1}},
    {**NEW, "applicant": {}},
    {**NEW, "applicant": None},
    {**NEW, "applicant": ["A"]},
    {**NEW, "data": None},
    {**NEW, "agency": ""},
    {**NEW, "received_at": "2026-02-13T10:00:00+07:00"},
    {**NEW, "received_at": "2026-02-13T10:00:00"},
    {**NEW, "unknown": 1},
    {**NEW, "procedure_code": None},
    {**NEW, "applicant": {"name": "A", "id_number": "1" * 33}},
    {**NEW, "applicant": {"name": "A", "email": "e" * 200, "phone": 912345678}},
    {"applicant": APPLICANT},
    {},
]
HEADERS = [
    {},
    {"If-Match": '"3"'},
    {"Idempotency-Key": "k-1", "X-Other": "y"},
    {"If-Match": ""},
    {"If-Match": "x" * 41},
]


def _both(schema: ma.Schema, unknown: str, value):
    """(marshmallow's result or its ValidationError, the plan's result or _Fallback)."""
    plan = hotpath.compile_load(schema, unknown)
    assert plan is not None, type(schema).__name__
    try:
        slow = schema.load(copy.deepcopy(value), unknown=unknown)
    except ma.ValidationError as exc:
        slow = exc
    try:
        fast = plan(copy.deepcopy(value))
    except hotpath._Fallback as exc:
        fast = exc
    return slow, fast


@pytest.mark.parametrize(
    ("schema", "unknown", "values"),
    [
        (CompleteSchema(), ma.RAISE, COMPLETE_BODIES),
        (NewDossierSchema(), ma.RAISE, NEW_BODIES),
        (CompleteHeaders(), ma.EXCLUDE, HEADERS),
        (IdempotencyHeaders(), ma.EXCLUDE, HEADERS),
    ],
)
def test_the_plans_load_what_marshmallow_loads_and_leave_it_the_rest(schema, unknown, values):
    fast_ones = 0
    for value in values:
        slow, fast = _both(schema, unknown, value)
        if isinstance(slow, ma.ValidationError):
            assert isinstance(fast, hotpath._Fallback), (value, fast)  # refused: webargs says why
        elif not isinstance(fast, hotpath._Fallback):
            assert fast == slow, value
            assert list(fast) == list(slow), value  # the same keys in the same order
            fast_ones += 1
    assert fast_ones >= 2  # the ordinary requests do take the plan


def test_text_fields_load_as_marshmallow_loads_them():
    class Texts(ma.Schema):
        code = ma.fields.String(required=True, validate=ma.validate.Length(equal=3))
        note = ma.fields.String(allow_none=True, validate=[ma.validate.Length(min=1), ma.validate.Length(max=4)])
        free = ma.fields.String()

    values = [None, "", "abc", "abcd", "abcde", b"abc", 3, ["abc"], "Đạt"]
    cases = [{"code": "abc"}, {}] + [{"code": "abc", key: v} for key in ("note", "free") for v in values]
    cases += [{"code": v} for v in values]
    fast_ones = 0
    for value in cases:
        slow, fast = _both(Texts(), ma.RAISE, value)
        if isinstance(slow, ma.ValidationError):
            assert isinstance(fast, hotpath._Fallback), (value, fast)
        elif not isinstance(fast, hotpath._Fallback):
            assert fast == slow and list(fast) == list(slow), value
            fast_ones += 1
    assert fast_ones >= 8


def test_what_the_plans_do_not_cover():
    class Hooked(ma.Schema):
        a = ma.fields.String()

        @ma.post_load
        def upper(self, data, **_kw):
            return data

    class Included(ma.Schema):
        class Meta:
            unknown = ma.INCLUDE

        a = ma.fields.String()

    class Dotted(ma.Schema):
        a = ma.fields.String(attribute="x.y")

    assert hotpath.compile_load(Hooked(), ma.RAISE) is None
    assert hotpath.compile_load(Included(), Included().unknown) is None
    assert hotpath.compile_load(Dotted(), ma.RAISE) is None
    assert hotpath.compile_load(CompleteSchema(many=True), ma.RAISE) is None


def test_hot_refuses_arguments_it_does_not_cover():
    blp = SmorestBlueprint("hot_test", __name__)

    class Query(ma.Schema):
        q = ma.fields.String()

    def view(args):
        return args

    with pytest.raises(TypeError):
        hotpath.hot(blp.response(200, CompleteSchema)(blp.arguments(Query(), location="query")(view)))


@pytest.fixture
def parses(monkeypatch):
    """How many times webargs parsed a request's arguments."""
    parser = SmorestBlueprint.ARGUMENTS_PARSER
    calls = []
    original = parser.parse

    def counting(*args, **kwargs):
        calls.append(kwargs.get("location"))
        return original(*args, **kwargs)

    monkeypatch.setattr(parser, "parse", counting)
    return calls


def _post(client, path, user, body, headers=None, *, webargs=False):
    """POST a JSON body; `webargs=True`: the same JSON after a space, which sends it through the decorated
    view (webargs) instead of the plan."""
    text = json.dumps(body, ensure_ascii=False)
    return client.post(
        path,
        user,
        data=(" " + text if webargs else text).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _problem(r) -> dict:
    body = r.get_json()
    body.pop("request_id", None)
    return body


def _shape(answer: dict) -> dict:
    """A dossier's answer without what differs between two dossiers (code, ids, times)."""
    volatile = {"code", "received_at", "due_at", "original_due_at", "processed_at", "finished_at", "returned_at"}
    out = {k: v for k, v in answer.items() if k not in volatile and k != "tasks"}
    out["tasks"] = [
        {k: v for k, v in t.items() if k not in ("id", "dossier_code", "created_at", "due_at")} for t in answer["tasks"]
    ]
    return out


def test_the_plan_and_webargs_answer_alike(client, parses):
    # an ordinary request takes the plan: webargs parses nothing
    r = _post(client, "/api/v1/dossiers", "tiepnhan", NEW)
    assert r.status_code == 201 and parses == []
    fast_new = r.get_json()
    r = _post(client, "/api/v1/dossiers", "tiepnhan", NEW, webargs=True)
    assert r.status_code == 201 and parses == ["headers", "json"]
    slow_new = r.get_json()
    assert _shape(fast_new) == _shape(slow_new)
    assert list(fast_new) == list(slow_new)
    assert r.mimetype == "application/json"

    parses.clear()
    r = _post(client, f"/api/v1/tasks/{fast_new['tasks'][0]['id']}/complete", "canbo", ACCEPT, {"If-Match": '"1"'})
    assert r.status_code == 200, r.get_json()
    assert parses == []
    slow = _post(
        client,
        f"/api/v1/tasks/{slow_new['tasks'][0]['id']}/complete",
        "canbo",
        ACCEPT,
        {"If-Match": '"1"'},
        webargs=True,
    )
    assert slow.status_code == 200 and parses == ["headers", "json"]
    assert _shape(r.get_json()) == _shape(slow.get_json())
    assert r.get_data().endswith(b"\n") and slow.get_data().endswith(b"\n")  # Flask's JSON, both ways

    # refusals: the same problem document either way, naming the same fields
    tid = r.get_json()["tasks"][0]["id"]
    for body, headers, field in [
        ({"data": "x"}, {}, "data"),
        ({"version": 0}, {}, "version"),
        ({"data": {}, "extra": 1}, {}, "extra"),
        (ACCEPT, {"If-Match": "x" * 41}, "If-Match"),
        (ACCEPT, {"Idempotency-Key": "x" * 201}, "Idempotency-Key"),
        (ACCEPT, {"If-Match": "abc"}, "If-Match"),  # the view's own check
    ]:
        a = _post(client, f"/api/v1/tasks/{tid}/complete", "canbo", body, headers)
        b = _post(client, f"/api/v1/tasks/{tid}/complete", "canbo", body, headers, webargs=True)
        assert field in assert_problem(a, 422)["fields"], (body, headers)
        assert _problem(a) == _problem(b)
    for body, field in [
        ({**NEW, "applicant": {"name": ""}}, "applicant.name"),
        ({**NEW, "channel": 7}, "channel"),
        ({**NEW, "procedure_code": "x" * 65}, "procedure_code"),
        ({"applicant": APPLICANT}, "procedure_code"),
        ({**NEW, "unknown": 1}, "unknown"),
    ]:
        a = _post(client, "/api/v1/dossiers", "tiepnhan", body)
        b = _post(client, "/api/v1/dossiers", "tiepnhan", body, webargs=True)
        assert field in assert_problem(a, 422)["fields"], body
        assert _problem(a) == _problem(b)
    for raw in (b"", b"{", b"[]", b"null"):  # no body, broken JSON, not an object
        a = client.post("/api/v1/dossiers", "tiepnhan", data=raw, headers={"Content-Type": "application/json"})
        assert_problem(a, 422)


def test_authorization_before_validation_on_the_hot_path(client, dossier):
    tid = dossier["tasks"][0]["id"]
    bad = {"data": "x", "version": 0, "extra": 1}
    assert_problem(_post(client, f"/api/v1/tasks/{tid}/complete", None, bad, {"If-Match": ""}), 401)
    assert_problem(_post(client, f"/api/v1/tasks/{tid}/complete", "chuyenvien", bad), 403)  # not the step's role
    assert_problem(_post(client, f"/api/v1/tasks/{tid}/complete", "khac", bad), 404)  # another agency's step
    bad_new = {"procedure_code": "", "applicant": None, "channel": 9}
    assert_problem(_post(client, "/api/v1/dossiers", None, bad_new), 401)
    assert_problem(_post(client, "/api/v1/dossiers", "chuyenvien", bad_new, {"Idempotency-Key": ""}), 403)
    assert_problem(_post(client, "/api/v1/dossiers", "analyst", bad_new), 403)


def test_idempotency_key_on_the_hot_path(client, parses):
    h = {"Idempotency-Key": "hot-1"}
    first = _post(client, "/api/v1/dossiers", "tiepnhan", NEW, h)
    assert first.status_code == 201 and parses == []
    # a retry that webargs parses, with the channel by name: the same request, the first answer
    again = _post(client, "/api/v1/dossiers", "tiepnhan", {**NEW, "channel": "in_person"}, h, webargs=True)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    assert_problem(_post(client, "/api/v1/dossiers", "tiepnhan", {**NEW, "channel": 2}, h), 422)  # another request
    assert (
        "Idempotency-Key"
        in assert_problem(_post(client, "/api/v1/dossiers", "tiepnhan", NEW, {"Idempotency-Key": ""}), 422)["fields"]
    )

    tid = first.get_json()["tasks"][0]["id"]
    done = _post(client, f"/api/v1/tasks/{tid}/complete", "canbo", ACCEPT, {"Idempotency-Key": "hot-2"})
    replay = _post(client, f"/api/v1/tasks/{tid}/complete", "canbo", ACCEPT, {"Idempotency-Key": "hot-2"})
    assert done.status_code == replay.status_code == 200
    assert replay.get_json() == done.get_json() and replay.headers.get("Idempotent-Replayed") == "true"
    assert done.headers.get("Idempotent-Replayed") is None


def test_request_id_and_metrics_on_the_hot_path(client):
    endpoint = "/api/v1/dossiers"

    def count(status):
        return REQUESTS.labels(endpoint, "POST", status)._value.get()

    before_ok, before_bad = count("201"), count("422")
    r = _post(client, endpoint, "tiepnhan", NEW, {"X-Request-Id": "hot-req-1"})
    assert r.status_code == 201 and r.headers["X-Request-Id"] == "hot-req-1"
    r = _post(client, endpoint, "tiepnhan", {**NEW, "channel": 9}, {"X-Request-Id": "hot-req-2"})
    assert assert_problem(r, 422)["request_id"] == "hot-req-2" and r.headers["X-Request-Id"] == "hot-req-2"
    assert (count("201"), count("422")) == (before_ok + 1, before_bad + 1)
    tid = new_dossier(client)["tasks"][0]["id"]
    r = _post(client, f"/api/v1/tasks/{tid}/complete", "canbo", ACCEPT)
    assert r.status_code == 200 and r.headers["X-Request-Id"]
    assert REQUESTS.labels("/api/v1/tasks/<task_id>/complete", "POST", "200")._value.get() >= 1


def test_the_hot_operations_are_documented_by_their_decorators(client):
    spec = client.raw.get("/api/v1/openapi.json").get_json()
    complete = spec["paths"]["/api/v1/tasks/{task_id}/complete"]["post"]
    assert {p["name"] for p in complete["parameters"] if p["in"] == "header"} == {"If-Match", "Idempotency-Key"}
    assert complete["requestBody"]["required"] is False
    assert set(complete["responses"]) == {"200", "401", "403", "404", "409", "422"}
    create = spec["paths"]["/api/v1/dossiers"]["post"]
    assert [p["name"] for p in create["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewDossier"}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Dossier"
    }


def test_the_app_asks_once_whether_a_function_is_a_coroutine(app):
    def plain():
        return 1

    async def coroutine():
        return 2

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self):
            return 3

    assert app.ensure_sync(plain) is plain and app.ensure_sync(plain) is plain
    assert plain in app._plain
    try:
        wrapped = app.ensure_sync(coroutine)
    except RuntimeError:  # Flask without asgiref: async views refused, as before
        wrapped = None
    assert wrapped is not coroutine and coroutine not in app._plain
    odd = Unhashable()
    assert app.ensure_sync(odd) is odd
