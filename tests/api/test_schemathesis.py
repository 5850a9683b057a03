"""Property-based conformance of the whole API against its own OpenAPI document (schemathesis).

Every operation of /api/v1/openapi.json is exercised through WSGI (no server) as an admin (the bearer token is
put into each generated case's headers), with at most 20 generated examples per operation and mode: valid data (positive),
invalid data (negative), and, for operations on one dossier or task, valid data aimed at an existing one so
that the 200 answers are checked too. Checks: no 5xx, and every status code, content type, header and body
is the one the document promises (problem+json errors included).

(schemathesis' own pytest plugin is not used: its lazy-fixture loader breaks on pytest 9; plain Hypothesis
`@given` over `operation.as_strategy()` does the same work.)
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from engine.config import Settings

from .helpers import Client, new_dossier

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every documented operation; the document needs no database to be built."""
    tmp = Path(tempfile.mkdtemp(prefix="motcua-spec-"))
    app = create_app(Settings(var_dir=tmp, database_url=f"sqlite:///{tmp / 'spec.db'}", secret_key="s" * 32))
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    return [(m.upper(), p) for p, item in spec["paths"].items() for m in item if m in ("get", "post", "put", "delete")]


OPERATIONS = _operations()
CASES = [(m, p, mode) for m, p in OPERATIONS for mode in ("positive", "negative")] + [
    (m, p, "existing") for m, p in OPERATIONS if "{" in p
]


@pytest.fixture
def loaded(app):
    client = Client(app)
    token = client.token("admin")
    d = new_dossier(client, "canbo")
    ids = {"code": d["code"], "task_id": d["tasks"][0]["id"]}
    svc = app.extensions["motcua"]
    svc.login_limiter.limit = svc.lookup_limiter.limit = 100_000  # the limiters have their own tests
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return schema, ids, token


@pytest.mark.parametrize("method,path,mode", CASES, ids=[f"{m} {p} {mode}" for m, p, mode in CASES])
def test_api_conforms_to_its_openapi_document(loaded, method, path, mode):
    schema, ids, token = loaded
    operation = schema[path][method]
    if mode == "existing":
        known = {**ids, "code": "9.000001"} if path.startswith("/api/v1/procedures/") else ids
        names = [p.name for p in operation.path_parameters]
        extra = {"body": {"data": {"decision": "accept"}}} if path.endswith("/complete") else {}
        strategy = operation.as_strategy(path_parameters={n: known[n] for n in names if n in known}, **extra)
    else:
        strategy = operation.as_strategy(GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE)

    @given(case=strategy)
    # Derandomized so CI is repeatable; MOTCUA_FUZZ_RANDOM=1 explores new examples on each run.
    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not os.environ.get("MOTCUA_FUZZ_RANDOM"),
    )
    def run(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        case.call_and_validate(checks=CHECKS)

    try:
        run()
    except Unsatisfiable:
        pytest.skip("no input of this operation can be made invalid")  # e.g. GET /healthz in negative mode
