"""Fixtures of the API tests: an application over the `db` fixture (SQLite, or PostgreSQL with DATABASE_URL),
two small procedures deployed, users of two agencies, and a client that logs in as any of them."""

from __future__ import annotations

import pytest

from api import create_app
from engine.auth import hash_password
from engine.models import User
from engine.procedures import deploy_bytes, form_files_beside

from ..fake_gateway import FakeGateway
from .helpers import FORM_STEPS, FOUR_STEPS, PASSWORD, PAY_SECRET, USERS, Client, new_dossier


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is deliberately slow: hash once for the whole session


@pytest.fixture
def app(settings, db, password_hash):
    settings.secret_key = "api-tests-secret-" + "x" * 32  # HS256 wants 32+ bytes
    deploy_bytes(db, FOUR_STEPS.read_bytes(), FOUR_STEPS.name)
    deploy_bytes(db, FORM_STEPS.read_bytes(), FORM_STEPS.name, form_files_beside(FORM_STEPS))
    with db.uow() as s:
        for username, roles, agency in USERS:
            s.add(
                User(
                    username=username,
                    password_hash=password_hash,
                    roles=roles,
                    agency=agency,
                    full_name=username.title(),
                )
            )
    application = create_app(settings, database=db)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app) -> Client:
    return Client(app)


@pytest.fixture
def dossier(client):
    return new_dossier(client)


@pytest.fixture
def gateway():
    """A payment gateway on 127.0.0.1 that signs like the real one (tests/fake_gateway.py)."""
    gw = FakeGateway(PAY_SECRET).start()
    yield gw
    gw.stop()
