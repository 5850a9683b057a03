"""Property-based conformance of the whole API against its own OpenAPI document (schemathesis).

Every operation of /api/v1/openapi.json is exercised through WSGI (no server) as three users (the bearer token is
put into each generated case's headers): an admin, with at most 20 generated examples per operation and mode —
valid data (positive), invalid data (negative), and, for operations on one dossier or task, valid data aimed at an
existing one so that the 200 answers are checked too; a receiver (who also holds a lane role), 5 examples of
valid data and of existing dossiers and tasks; a citizen, 3 examples of valid and invalid data (a 403 nearly
everywhere, and it must be documented). Checks: no 5xx, and every status code, content type, header and body
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
from api.ratelimit import Rule
from engine.config import Settings
from engine.ratelimit import Limit

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
# role -> (user, modes, examples per operation and mode): the admin explores widest, the others keep CI short.
ROLES = {
    "admin": ("admin", ("positive", "negative", "existing"), 20),
    "receiver": ("canbo", ("positive", "existing"), 5),
    "citizen": ("congdan", ("positive", "negative"), 3),
}
CASES = [
    (m, p, mode, role)
    for role, (_, modes, _) in ROLES.items()
    for m, p in OPERATIONS
    for mode in modes
    if mode != "existing" or "{" in p
]


@pytest.fixture
def loaded(app):
    client = Client(app)
    tokens = {role: client.token(user) for role, (user, _, _) in ROLES.items()}
    d = new_dossier(client, "canbo")
    ids = {"code": d["code"], "task_id": d["tasks"][0]["id"]}
    svc = app.extensions["motcua"]
    svc.lookup_limiter = Limit("lookup", 100_000, 60)  # the limiters have their own tests
    svc.login_limiter.rules = {k: Rule(free=100_000, base=1, cap=1) for k in svc.login_limiter.rules}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return schema, ids, tokens


@pytest.mark.parametrize("method,path,mode,role", CASES, ids=[f"{r} {m} {p} {mode}" for m, p, mode, r in CASES])
def test_api_conforms_to_its_openapi_document(loaded, method, path, mode, role):
    schema, ids, tokens = loaded
    token = tokens[role]
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
        max_examples=ROLES[role][2],
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
