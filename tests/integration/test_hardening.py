"""What a database intruder or a thief of one session still cannot do."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from rempart.app import create_app
from rempart.db import table_of
from rempart.identity.clients import ASSERTION_TYPE
from rempart.identity.models import AuthSession, User
from rempart.incidents.containment import freeze
from rempart.platform import Platform
from tests.support import (
    PASSWORD,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    set_rows,
    sign_in,
)

EMAIL = "pharma@example.org"
ME = "/api/v1/auth/session"


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, Platform, str]]:
    add_insurer(platform)
    add_professionals(platform)
    secret = add_account(platform, "professional", EMAIL, am_number=PHARMACIST_AM)
    with TestClient(create_app(platform.settings, platform)) as client:
        yield client, platform, secret


def test_a_session_planted_in_the_database_opens_nothing(
    api: tuple[TestClient, Platform, str],
) -> None:
    client, platform, _ = api
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with platform.sessions.begin() as session:
        user_id = session.scalar(select(User.id))
    with platform.engine.begin() as conn:  # the intruder writes a session with an unkeyed hash
        conn.execute(
            insert(table_of(AuthSession)),
            [
                {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "client_id": None,
                    "stage": "active",
                    "token_hash": hashlib.sha256(token.encode()).digest(),
                    "mfa_failures": 0,
                    "created_at": now,
                    "last_seen_at": now,
                    "expires_at": now + timedelta(hours=1),
                }
            ],
        )
    assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def _client_key(client: TestClient, headers: dict[str, str]) -> tuple[str, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    response = client.post(
        "/api/v1/clients", json={"name": "x", "public_key": pem}, headers=headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["client_id"]), key


def _token_status(client: TestClient, client_id: str, key: Ed25519PrivateKey) -> int:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://127.0.0.1:8000/api/v1/auth/token",
        "exp": int(time.time()) + 30,
        "jti": uuid.uuid4().hex,
    }
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(claims, key, algorithm="EdDSA"),
    }
    return client.post("/api/v1/auth/token", data=form).status_code


def test_an_old_session_cannot_register_software(api: tuple[TestClient, Platform, str]) -> None:
    client, platform, secret = api
    headers = sign_in(client, platform, EMAIL, secret)
    with platform.sessions.begin() as session:
        session.execute(
            update(AuthSession).values(created_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    refused = client.post("/api/v1/clients", json={"name": "x", "public_key": pem}, headers=headers)
    assert refused.status_code == 403
    assert "second factor" in refused.json()["detail"]


def test_freezing_an_account_revokes_the_software_it_registered(
    api: tuple[TestClient, Platform, str],
) -> None:
    client, platform, secret = api
    client_id, key = _client_key(client, sign_in(client, platform, EMAIL, secret))
    assert _token_status(client, client_id, key) == 200
    freeze(platform, "account", EMAIL, "phished", "test")
    assert _token_status(client, client_id, key) == 401


def test_failures_lock_for_longer_and_then_until_an_operator_releases(
    api: tuple[TestClient, Platform, str],
) -> None:
    client, platform, _ = api

    def fail_and_expire() -> datetime | None:
        client.post(
            "/api/v1/auth/login", json={"email": EMAIL, "password": "a wrong but long password"}
        )
        with platform.sessions.begin() as session:
            until = session.scalar(select(User.locked_until))
        set_rows(platform, User, locked_until=None)  # time passes
        return until

    locks = [fail_and_expire() for _ in range(30)]  # thirty consecutive failures
    assert locks[:9] == [None] * 9  # the first nine lock nothing
    tenth, eleventh = locks[9], locks[10]
    assert tenth is not None
    assert eleventh is not None
    assert eleventh - tenth > timedelta(minutes=25)  # each further failure doubles the lock
    assert all(lock is not None and lock.year < 9999 for lock in locks[9:29])
    last = locks[29]
    assert last is not None
    assert last.year == 9999  # the thirtieth: locked until an operator releases it
    set_rows(platform, User, locked_until=datetime(9999, 1, 1, tzinfo=UTC))
    assert (
        client.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}).status_code
        == 401
    )
