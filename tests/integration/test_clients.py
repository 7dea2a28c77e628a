"""API clients from the attacker's side: no password or static key opens the API; a client
assertion is short-lived, addressed to us, signed by the registered key, and spent once."""

from __future__ import annotations

import base64
import hmac
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.identity.clients import ASSERTION_TYPE
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import get_settings
from tests.support import (
    AMC,
    OPTICIAN_AM,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    member_file,
    person,
    sign_in,
)

AUDIENCE = "http://127.0.0.1:8000/api/v1/auth/token"
KEY = Ed25519PrivateKey.generate()
PEM = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    add_insurer(platform)
    add_professionals(platform)
    import_members(platform, AMC, io.BytesIO(member_file([person(1)])), ImportOptions())
    with TestClient(create_app(platform.settings, platform)) as client:
        secret = add_account(
            platform, "professional", "pharma@example.org", am_number=PHARMACIST_AM
        )
        yield client, platform, sign_in(client, platform, "pharma@example.org", secret)


def register(client: TestClient, headers: dict[str, str], pem: str = PEM) -> str:
    response = client.post(
        "/api/v1/clients", json={"name": "LGO Officine", "public_key": pem}, headers=headers
    )
    assert response.status_code == 201, response.text
    client_id = response.json()["client_id"]
    assert isinstance(client_id, str)
    return client_id


def assertion(client_id: str, key: Ed25519PrivateKey = KEY, **changes: object) -> str:
    claims: dict[str, object] = {
        "iss": client_id,
        "sub": client_id,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 30,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return jwt.encode(claims, key, algorithm="EdDSA")


def hs256_with_public_key(client_id: str) -> str:
    """The classic algorithm confusion: an HMAC keyed with the (public) verification key."""

    def part(data: dict[str, object]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": AUDIENCE,
        "exp": int(time.time()) + 30,
        "jti": "x",
    }
    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(claims)
    signature = base64.urlsafe_b64encode(hmac.digest(PEM.encode(), signing_input, "sha256")).rstrip(
        b"="
    )
    return (signing_input + b"." + signature).decode()


def client_token(client: TestClient, client_id: str) -> str:
    """The access token that a fresh, valid assertion of this client obtains."""
    body = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(client_id),
    }
    response = client.post("/api/v1/auth/token", data=body)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def token_request(client: TestClient, signed: str, **form: str) -> int:
    body = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    return client.post("/api/v1/auth/token", data={**body, **form}).status_code


def check(client: TestClient, token: str) -> int:
    p = person(1)
    body = {
        "amc_number": AMC,
        "member_number": p.member_number,
        "birth_date": p.birth_date,
        "birth_rank": 1,
        "domain": "PHAR",
        "care_date": time.strftime("%Y-%m-%d"),
    }
    return client.post(
        "/api/v1/eligibility", json=body, headers={"Authorization": f"Bearer {token}"}
    ).status_code


def test_billing_software_checks_rights_with_a_signed_assertion(
    api: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, person_session = api
    client_id = register(client, person_session)
    granted = client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(client_id),
        },
    )
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 900)
    assert check(client, body["access_token"]) == 200
    with platform.sessions() as session:
        actors = set(
            session.scalars(
                select(LedgerEntry.actor).where(LedgerEntry.tag == "beneficiary:rights:read")
            )
        )
    assert actors == {f"client:{client_id}"}


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda cid: assertion(cid, exp=int(time.time()) - 5), id="expired"),
        pytest.param(lambda cid: assertion(cid, exp=int(time.time()) + 600), id="valid-too-long"),
        pytest.param(
            lambda cid: assertion(cid, key=Ed25519PrivateKey.generate()), id="signed-by-another-key"
        ),
        pytest.param(
            lambda cid: assertion(cid, aud="https://phishing.example/token"), id="another-audience"
        ),
        pytest.param(lambda cid: assertion(cid, sub=str(uuid.uuid4())), id="sub-differs-from-iss"),
        pytest.param(lambda cid: assertion(str(uuid.uuid4())), id="unknown-client"),
        pytest.param(lambda cid: assertion(cid, jti=""), id="empty-jti"),
        pytest.param(
            lambda cid: hs256_with_public_key(cid),
            id="hmac-with-the-public-key",
        ),
        pytest.param(
            lambda cid: jwt.encode(
                {"iss": cid, "sub": cid, "aud": AUDIENCE, "exp": int(time.time()) + 30, "jti": "x"},
                "",
                algorithm="none",
            ),
            id="alg-none",
        ),
        pytest.param(lambda cid: "not.a.jwt", id="garbage"),
    ],
)
def test_forged_assertions_are_refused(
    api: tuple[TestClient, Platform, dict[str, str]], forge: object
) -> None:
    client, _, person_session = api
    client_id = register(client, person_session)
    assert token_request(client, forge(client_id)) == 401  # type: ignore[operator]


def test_an_assertion_is_spent_once(api: tuple[TestClient, Platform, dict[str, str]]) -> None:
    client, _, person_session = api
    signed = assertion(register(client, person_session))
    assert token_request(client, signed) == 200
    assert token_request(client, signed) == 401


def test_no_password_or_static_key_opens_the_api(
    api: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, _, person_session = api
    signed = assertion(register(client, person_session))
    assert token_request(client, signed, grant_type="password") == 401
    assert token_request(client, signed, client_assertion_type="urn:other") == 401
    basic = client.post(
        "/api/v1/eligibility", json={}, headers={"Authorization": "Basic cGhhcm1hOnNlY3JldA=="}
    )
    assert basic.status_code == 401


def test_a_client_token_cannot_register_more_clients(
    api: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, _, person_session = api
    client_id = register(client, person_session)
    token = client_token(client, client_id)
    other = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    refused = client.post(
        "/api/v1/clients",
        json={"name": "x", "public_key": other},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 403


def test_revoking_a_client_stops_its_tokens_at_once(
    api: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, person_session = api
    client_id = register(client, person_session)
    token = client_token(client, client_id)
    assert check(client, token) == 200
    secret = add_account(platform, "professional", "optique@example.org", am_number=OPTICIAN_AM)
    stranger = sign_in(client, platform, "optique@example.org", secret)
    assert client.post(f"/api/v1/clients/{client_id}/revoke", headers=stranger).status_code == 404
    assert (
        client.post(f"/api/v1/clients/{client_id}/revoke", headers=person_session).status_code
        == 204
    )
    assert check(client, token) == 401
    assert token_request(client, assertion(client_id)) == 401
    listed = client.get("/api/v1/clients", headers=person_session).json()
    assert [(c["client_id"], c["revoked"]) for c in listed] == [(client_id, True)]
    assert client.get("/api/v1/clients", headers=stranger).json() == []


def test_operators_register_clients_from_the_command_line(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_professionals(platform)
    pem = tmp_path / "key.pem"
    pem.write_text(PEM)
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            cli_app,
            ["clients", "add", "--am-number", PHARMACIST_AM, "--public-key", str(pem), "--json"],
        )
        assert result.exit_code == 0, result.output
        assert uuid.UUID(json.loads(result.output)["client_id"])
        bad = tmp_path / "rsa.pem"
        bad.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        refused = CliRunner().invoke(
            cli_app, ["clients", "add", "--am-number", PHARMACIST_AM, "--public-key", str(bad)]
        )
        assert refused.exit_code == 1
        assert "public_key" in refused.output
    finally:
        get_settings.cache_clear()
