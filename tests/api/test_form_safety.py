"""Forms: analysts' patterns run in linear time or are refused at deploy; cyclic and remote references are
refused at deploy (docs/security.md, "Forms")."""

from __future__ import annotations

import io
import json
import time

import pytest

from .helpers import FORM_STEPS, assert_problem, new_dossier

BASE = json.loads((FORM_STEPS.parent / "intake.json").read_text(encoding="utf-8"))


def deploy(client, form: dict, code: str = "9.000901"):
    bpmn = FORM_STEPS.read_bytes().replace(b"9.000002", code.encode())
    data = {
        "file": (io.BytesIO(bpmn), "form_steps.bpmn"),
        "forms": [(io.BytesIO(json.dumps(form).encode()), "intake.json")],
    }
    return client.post("/api/v1/procedures", "analyst", data=data, content_type="multipart/form-data")


def with_field(**field) -> dict:
    form = json.loads(json.dumps(BASE))
    form["properties"]["ghi_chu"] = {"type": "string", **field}
    return form


def test_an_exponential_pattern_answers_fast(client):
    r = deploy(client, with_field(pattern="^(a+)+$", maxLength=100_000))
    assert r.status_code == 201, r.get_json()
    d = new_dossier(client, procedure="9.000901")
    task = d["tasks"][0]["id"]
    for n in (30, 5_000, 50_000):
        t0 = time.perf_counter()
        r = client.post(
            f"/api/v1/tasks/{task}/complete",
            "tiepnhan",
            json={"data": {"decision": "accept", "so_ban": 1, "ghi_chu": "a" * n + "!"}},
        )
        assert time.perf_counter() - t0 < 1.0, n  # Python's re would take years at n = 30
        body = assert_problem(r, 422)
        assert "ghi_chu" in json.dumps(body)
    r = client.post(
        f"/api/v1/tasks/{task}/complete",
        "tiepnhan",
        json={"data": {"decision": "accept", "so_ban": 1, "ghi_chu": "aaa"}},
    )
    assert r.status_code == 200, r.get_json()


def test_pattern_properties_and_additional_properties_run_in_linear_time(client):
    form = json.loads(json.dumps(BASE))
    form["properties"]["extra"] = {
        "type": "object",
        "patternProperties": {"^(a+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert deploy(client, form, "9.000902").status_code == 201
    d = new_dossier(client, procedure="9.000902")
    t0 = time.perf_counter()
    r = client.post(
        f"/api/v1/tasks/{d['tasks'][0]['id']}/complete",
        "tiepnhan",
        json={"data": {"decision": "accept", "so_ban": 1, "extra": {"a" * 40 + "!": 1, "aaaa": 2}}},
    )
    assert time.perf_counter() - t0 < 1.0
    assert "extra" in json.dumps(assert_problem(r, 422))


@pytest.mark.parametrize(
    "pattern",
    ["^(a)\\1$", "^(?=a)a$", "(?<!x)y", "a{1001}"],
)
def test_a_pattern_re2_cannot_run_is_refused_at_deploy(client, pattern):
    body = assert_problem(deploy(client, with_field(pattern=pattern)), 422)
    text = json.dumps(body, ensure_ascii=False)
    assert "intake.json" in text and pattern.replace("\\", "\\\\") in text, text


def test_a_pattern_properties_key_re2_cannot_run_is_refused_at_deploy(client):
    form = json.loads(json.dumps(BASE))
    form["properties"]["extra"] = {"type": "object", "patternProperties": {"^(x)\\1": {}}}
    body = assert_problem(deploy(client, form), 422)
    assert "intake.json" in json.dumps(body) and "patternProperties" in json.dumps(body)


@pytest.mark.parametrize(
    "defs, ref",
    [
        ({"a": {"$ref": "#/$defs/a"}}, "#/$defs/a"),
        ({"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "#/$defs/"),
        ({"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}}, "#/$defs/node"),
        ({"a": {"$anchor": "loop", "not": {"$ref": "#loop"}}}, "#loop"),
    ],
)
def test_a_cyclic_reference_is_refused_at_deploy(client, defs, ref):
    form = json.loads(json.dumps(BASE))
    form["$defs"] = defs
    form["properties"]["ghi_chu"] = {"$ref": next(iter(["#/$defs/" + next(iter(defs))]))}
    body = assert_problem(deploy(client, form), 422)
    text = json.dumps(body, ensure_ascii=False)
    assert "intake.json" in text and ref in text and "cycle" in text, text


@pytest.mark.parametrize("ref", ["https://evil.example/schema.json", "file:///etc/passwd", "other.json#/a"])
def test_a_remote_reference_is_refused_at_deploy(client, ref):
    body = assert_problem(deploy(client, with_field(**{"$ref": ref})), 422)
    text = json.dumps(body, ensure_ascii=False)
    assert "intake.json" in text and ref in text, text


def test_local_references_and_unicode_letter_patterns_still_deploy(client):
    form = json.loads(json.dumps(BASE))
    form["$defs"] = {"name": {"type": "string", "pattern": "^[\\p{L} ]+$"}}
    form["properties"]["ghi_chu"] = {"$ref": "#/$defs/name"}
    assert deploy(client, form, "9.000903").status_code == 201
    d = new_dossier(client, procedure="9.000903")
    ok = {"decision": "accept", "so_ban": 1, "ghi_chu": "Nguyễn Thị Ánh"}
    r = client.post(f"/api/v1/tasks/{d['tasks'][0]['id']}/complete", "tiepnhan", json={"data": ok})
    assert r.status_code == 200, r.get_json()
