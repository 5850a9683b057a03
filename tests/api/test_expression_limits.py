"""Analysts' expressions are bounded: a runaway gateway condition or script gets a 422 naming its element
within about a second, and the server keeps answering meanwhile (docs/security.md, "Expressions").

The budget (engine/expressions.py) refuses the known shapes before building anything; the worker pool
(engine/sandbox_pool.py) holds when the budget is made to miss (limits raised here on purpose).
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from werkzeug.serving import make_server

from engine import expressions

from .helpers import FOUR_STEPS, new_dossier

ISSUE_CONDITIONS = [
    "len(max([['a'*100000]*100]*1000, key=str)) > 0",
    "len(sorted([['a'*100000]*100]*1000, key=str)) > 0",
    "len(str([['a'*100000]*100]*1000)) > 0",
    "len(str([[str(i) for i in range(1000)] for j in range(1000)])) > 0",
    "len(sorted([str(i) * 1000 for i in range(10000)], key=str)) > 0",
    "len([('a' * 99995) + str(i) for i in range(10000)]) > 0",
    "len([f'{i:>99}' * 1000 for i in range(10000)]) > 0",
]


def deploy_condition(client, condition: str, code: str) -> None:
    xml = FOUR_STEPS.read_text(encoding="utf-8").replace("9.000001", code)
    text = condition.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    xml = xml.replace('decision == "refuse"', text)
    r = client.post(
        "/api/v1/procedures",
        "admin",  # four_steps.bpmn names no agency: province-wide, deployed by an admin (docs/security.md)
        data={"file": (io.BytesIO(xml.encode()), "runaway.bpmn")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 201, r.get_json()


@contextmanager
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="limits-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def complete_while_probing_health(client, base: str, task_id: str) -> tuple[int, dict, float, list[float]]:
    """Complete the task over HTTP; meanwhile /healthz is asked again and again. Returns the completion's
    status, body and duration, and every /healthz duration."""
    token = client.token("tiepnhan")
    done = threading.Event()
    health: list[float] = []

    def probe():
        while not done.is_set():
            t0 = time.perf_counter()
            status, _ = call(f"{base}/healthz")
            health.append(time.perf_counter() - t0)
            assert status == 200

    prober = threading.Thread(target=probe)
    t0 = time.perf_counter()
    prober.start()
    status, body = call(f"{base}/api/v1/tasks/{task_id}/complete", "POST", {"data": {"decision": "accept"}}, token)
    elapsed = time.perf_counter() - t0
    done.set()
    prober.join(10)
    return status, body, elapsed, health


@pytest.fixture
def warm_pool():
    """The worker pool starts on first use (about half a second); start it before the clock runs."""
    assert expressions.safe_evaluate("len([x for x in a])", {"a": [1, 2]}) == 2


@pytest.mark.parametrize("condition", ISSUE_CONDITIONS)
def test_a_runaway_condition_is_a_422_naming_its_element_and_the_server_keeps_answering(
    client, app, warm_pool, condition
):
    assert expressions.check_expression(condition) == []  # it deploys: the text itself is fine
    deploy_condition(client, condition, "9.000911")
    d = new_dossier(client, procedure="9.000911")
    with served(app) as base:
        status, body, elapsed, health = complete_while_probing_health(client, base, d["tasks"][0]["id"])
    assert status == 422, body
    assert body["problems"][0]["element"] == "gw" and "'gw'" in body["message_en"], body
    assert "too large" in body["message_en"] or "too long" in body["message_en"], body
    assert elapsed < 1.5, elapsed
    assert health and max(health) < 1.0, health
    # nothing changed: the task is still there to complete
    r = client.get(f"/api/v1/dossiers/{d['code']}", "tiepnhan")
    assert [t["state"] for t in r.get_json()["tasks"]] == ["ready"]


def test_the_pool_kills_a_condition_that_the_budget_misses(client, app, warm_pool, monkeypatch):
    """With the budget's limits raised far out of the way, the CPU ceiling of the worker still stops it."""
    for name, value in [("MAX_SECONDS", 30.0), ("MAX_INT_BITS", 10**12)]:
        monkeypatch.setattr(expressions, name, value)
    monkeypatch.setattr(expressions, "POOL_MARGIN", -28.5)  # the caller still waits only 1.5 s
    condition = "[(7 ** 16000000) % 10 for i in [1]][0] >= 0"  # ~10 s of CPU in one C call, even on a quick machine
    deploy_condition(client, condition, "9.000912")
    d = new_dossier(client, procedure="9.000912")
    with served(app) as base:
        status, body, elapsed, health = complete_while_probing_health(client, base, d["tasks"][0]["id"])
    assert status == 422, body
    assert body["problems"][0]["element"] == "gw" and "too long" in body["message_en"], body
    assert elapsed < 2.5, elapsed
    assert health and max(health) < 1.0, health


def test_the_worker_cpu_ceiling_holds_without_the_callers_timeout(warm_pool, monkeypatch):
    for name, value in [("MAX_SECONDS", 600.0), ("MAX_INT_BITS", 10**12)]:
        monkeypatch.setattr(expressions, name, value)
    t0 = time.perf_counter()
    with pytest.raises(expressions.ExpressionError) as err:
        expressions.run_script("for i in range(10):\n    x = (7 ** 4000000) % 10", {})  # over a minute of CPU
    assert err.value.reason == "too_long"
    # RLIMIT_CPU: 2-3 s of CPU time (more wall-clock time on a busy machine), whatever the caller allows
    assert time.perf_counter() - t0 < 20


def test_the_worker_memory_ceiling_holds_without_the_budget(warm_pool, monkeypatch):
    for name, value in [("MAX_BYTES", 10**12), ("MAX_SIZE", 10**12), ("MAX_SECONDS", 30.0)]:
        monkeypatch.setattr(expressions, name, value)
    with pytest.raises(expressions.ExpressionError) as err:
        expressions.safe_evaluate("len(str(n) * 2000000000) > 0", {"n": 7})
    assert err.value.reason == "too_large"
    assert expressions.safe_evaluate("len([x for x in a])", {"a": [1]}) == 1  # the pool serves on


def test_simple_conditions_run_in_process_and_heavy_ones_in_the_pool():
    assert expressions.runs_inline('decision == "accept" and amount * 1.1 > 100 or applicant.get("x")')
    assert expressions.runs_inline('name.lower().startswith("ng") and len(items) > 2')
    for heavy in ['str(x) == "1"', "sorted(a)[0]", "[x for x in a]", "f'{a}'", "s * n", "2 ** n", "', '.join(a)"]:
        assert not expressions.runs_inline(heavy), heavy


def test_calendar_functions_only_in_simple_expressions():
    problems = expressions.check_expression(
        "working_days(len([x for x in items]))", kind="timer", known_functions=["working_days"]
    )
    assert problems and "working_days()" in problems[0]
    assert expressions.check_expression("working_days(n + 2)", kind="timer", known_functions=["working_days"]) == []
