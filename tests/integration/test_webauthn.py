"""WebAuthn as a second factor, from the attacker's side: a relayed, replayed, cloned, borrowed
or planted authenticator opens nothing, and every refusal counts toward the lockout."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from rempart.app import create_app
from rempart.db import table_of
from rempart.identity.clients import ASSERTION_TYPE
from rempart.identity.models import (
    AuthSession,
    User,
    WebAuthnChallenge,
    WebAuthnCredential,
)
from rempart.ledger.events import AccessEvent
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.settings import Settings
from tests.support import (
    OPTICIAN_AM,
    PASSWORD,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    set_rows,
    sign_in,
)
from tests.webauthn_authenticator import UP, UV, Authenticator, b64url, unb64url

AUTH = "/api/v1/auth"
MARIE, PAUL = "marie@pharmacie.example", "paul@optique.example"


@dataclass
class Person:
    email: str
    secret: str  # TOTP


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    add_insurer(platform)
    add_professionals(platform)
    with TestClient(create_app(platform.settings, platform)) as test_client:
        yield test_client


@pytest.fixture
def marie(platform: Platform, client: TestClient) -> Person:
    return Person(MARIE, add_account(platform, "professional", MARIE, am_number=PHARMACIST_AM))


def new_authenticator(platform: Platform) -> Authenticator:
    settings = platform.settings
    return Authenticator(settings.resolved_webauthn_origin, settings.resolved_webauthn_rp_id)


def enrol(
    client: TestClient, platform: Platform, person: Person, name: str = "YubiKey"
) -> Authenticator:
    """Sign in with TOTP, then register a new authenticator."""
    headers = sign_in(client, platform, person.email, person.secret)
    authenticator = new_authenticator(platform)
    options = client.post(f"{AUTH}/webauthn/register/options", headers=headers).json()
    created = client.post(
        f"{AUTH}/webauthn/register/verify",
        json={"name": name, "credential": authenticator.create(options)},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return authenticator


def start_login(client: TestClient, email: str = MARIE) -> str:
    response = client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["mfa_token"]
    assert isinstance(token, str)
    return token


def login_options(client: TestClient, mfa_token: str) -> dict[str, Any]:
    response = client.post(f"{AUTH}/mfa/webauthn/options", json={"mfa_token": mfa_token})
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()
    return options


def answer(client: TestClient, mfa_token: str, credential: dict[str, Any]) -> int:
    response = client.post(
        f"{AUTH}/mfa/webauthn/verify", json={"mfa_token": mfa_token, "credential": credential}
    )
    if response.status_code == 401:
        assert response.json()["detail"] == (
            "the credentials are not valid, or the account is locked"
        )
    return response.status_code


def webauthn_login(client: TestClient, authenticator: Authenticator, **bend: Any) -> int:
    """Password, then the authenticator's answer (bent as asked); the answer's status."""
    mfa_token = start_login(client)
    credential = authenticator.get(login_options(client, mfa_token), **bend)
    return answer(client, mfa_token, credential)


def failures(platform: Platform) -> list[str]:
    """The outcomes of the login failures the ledger recorded, oldest first."""
    with platform.sessions() as session:
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.tag == "account:login:failure")
            .order_by(LedgerEntry.seq)
        )
        return [AccessEvent.decode(e.event).outcome for e in entries]


def test_an_authenticator_registered_from_a_session_signs_in_in_place_of_totp(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    assert client.post(f"{AUTH}/login", json={"email": MARIE, "password": PASSWORD}).json()[
        "methods"
    ] == ["totp"]
    headers = sign_in(client, platform, MARIE, marie.secret)
    options = client.post(f"{AUTH}/webauthn/register/options", headers=headers).json()
    assert options["rp"]["id"] == "127.0.0.1"  # from REMPART_PUBLIC_URL by default
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["user"]["name"] == MARIE
    authenticator = new_authenticator(platform)
    created = client.post(
        f"{AUTH}/webauthn/register/verify",
        json={"name": "YubiKey 5", "credential": authenticator.create(options)},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    view = created.json()
    assert (view["name"], view["transports"], view["last_used_at"]) == (
        "YubiKey 5",
        ["nfc", "usb"],
        None,
    )

    mfa = client.post(f"{AUTH}/login", json={"email": MARIE, "password": PASSWORD}).json()
    assert mfa["methods"] == ["webauthn", "totp"]
    request = login_options(client, mfa["mfa_token"])
    assert request["userVerification"] == "required"
    assert request["rpId"] == "127.0.0.1"
    assert [c["id"] for c in request["allowCredentials"]] == [b64url(authenticator.credential_id)]
    granted = client.post(
        f"{AUTH}/mfa/webauthn/verify",
        json={"mfa_token": mfa["mfa_token"], "credential": authenticator.get(request)},
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"] == "Bearer"
    session_headers = {"Authorization": f"Bearer {granted.json()['access_token']}"}
    assert client.get(f"{AUTH}/session", headers=session_headers).status_code == 200
    listed = client.get(f"{AUTH}/webauthn/credentials", headers=session_headers).json()
    assert [c["id"] for c in listed] == [view["id"]]
    assert listed[0]["last_used_at"] is not None
    with platform.sessions() as session:
        stored = session.scalars(select(WebAuthnCredential)).one()
        assert stored.sign_count == 1
        tags = session.scalars(select(LedgerEntry.tag).order_by(LedgerEntry.seq)).all()
    assert "account:webauthn:register" in tags
    assert tags.count("account:login:success") == 2  # with TOTP, then with the key


def test_challenges_are_kept_hashed_and_expire(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)
    mfa_token = start_login(client)
    options = login_options(client, mfa_token)
    with platform.sessions.begin() as session:
        held = session.scalars(select(WebAuthnChallenge)).one()
        assert held.challenge_hash == hashlib.sha256(unb64url(options["challenge"])).digest()
        session.execute(
            update(WebAuthnChallenge).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert answer(client, mfa_token, authenticator.get(options)) == 401


def test_without_user_verification_nothing_is_registered_and_nobody_signs_in(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    headers = sign_in(client, platform, MARIE, marie.secret)
    options = client.post(f"{AUTH}/webauthn/register/options", headers=headers).json()
    refused = client.post(
        f"{AUTH}/webauthn/register/verify",
        json={"name": "x", "credential": new_authenticator(platform).create(options, flags=UP)},
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "credential"

    authenticator = enrol(client, platform, marie)
    assert webauthn_login(client, authenticator, flags=UP) == 401  # touched, no PIN
    assert webauthn_login(client, authenticator, flags=UV) == 401  # nobody touched it
    assert webauthn_login(client, authenticator) == 200


def test_a_counter_that_does_not_grow_is_refused_and_recorded_as_a_clone(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)
    assert webauthn_login(client, authenticator, counter=5) == 200
    assert webauthn_login(client, authenticator, counter=5) == 401  # the same value
    assert webauthn_login(client, authenticator, counter=3) == 401  # a lower one
    assert webauthn_login(client, authenticator, counter=0) == 401  # a counter "reset"
    assert failures(platform) == ["cloned-authenticator"] * 3
    with platform.sessions() as session:
        assert session.scalar(select(WebAuthnCredential.sign_count)) == 5
    assert webauthn_login(client, authenticator, counter=6) == 200


def test_authenticators_without_a_counter_may_always_send_zero(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)  # registered with a counter of 0
    assert webauthn_login(client, authenticator, counter=0) == 200
    assert webauthn_login(client, authenticator, counter=0) == 200


@pytest.mark.parametrize(
    ("origin", "rp_id"),
    [
        ("https://rempart-secure.example", None),  # a phishing site relaying the challenge
        ("http://127.0.0.1:8001", None),
        (None, "rempart-secure.example"),
    ],
)
def test_an_answer_for_another_site_is_refused(
    client: TestClient, platform: Platform, marie: Person, origin: str | None, rp_id: str | None
) -> None:
    headers = sign_in(client, platform, MARIE, marie.secret)
    options = client.post(f"{AUTH}/webauthn/register/options", headers=headers).json()
    credential = new_authenticator(platform).create(options, origin=origin, rp_id=rp_id)
    refused = client.post(
        f"{AUTH}/webauthn/register/verify",
        json={"name": "x", "credential": credential},
        headers=headers,
    )
    assert refused.status_code == 422

    authenticator = enrol(client, platform, marie)
    assert webauthn_login(client, authenticator, origin=origin, rp_id=rp_id) == 401
    assert failures(platform) == ["wrong-second-factor"]


def test_an_answer_from_a_frame_on_another_site_is_refused(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)  # our origin, but inside another's iframe
    assert webauthn_login(client, authenticator, cross_origin=True) == 401
    assert webauthn_login(client, authenticator) == 200


def test_the_rp_id_and_origin_follow_the_settings(tmp_path: Any) -> None:
    default = Settings(home=tmp_path)
    assert (default.resolved_webauthn_rp_id, default.resolved_webauthn_origin) == (
        "127.0.0.1",
        "http://127.0.0.1:8000",
    )
    public = Settings(home=tmp_path, public_url="https://API.Rempart.example:443/v1/")
    assert (public.resolved_webauthn_rp_id, public.resolved_webauthn_origin) == (
        "api.rempart.example",
        "https://api.rempart.example",
    )
    chosen = Settings(
        home=tmp_path,
        webauthn_rp_id="rempart.example",
        webauthn_origin="https://portail.rempart.example/",
    )
    assert (chosen.resolved_webauthn_rp_id, chosen.resolved_webauthn_origin) == (
        "rempart.example",
        "https://portail.rempart.example",
    )


def test_an_assertion_is_good_for_one_challenge_once(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)
    mfa_token = start_login(client)
    options = login_options(client, mfa_token)
    seen = authenticator.get(options)
    assert answer(client, mfa_token, seen) == 200
    # Replayed on a new login, with or without fresh options.
    second = start_login(client)
    assert answer(client, second, seen) == 401
    login_options(client, second)
    assert answer(client, second, seen) == 401
    # A challenge is spent by its first answer, even a refused one.
    third = start_login(client)
    options = login_options(client, third)
    assert answer(client, third, authenticator.get(options, flags=UP)) == 401
    assert answer(client, third, authenticator.get(options)) == 401


def test_another_persons_authenticator_is_refused(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    paul = Person(PAUL, add_account(platform, "professional", PAUL, am_number=OPTICIAN_AM))
    enrol(client, platform, marie)
    pauls = enrol(client, platform, paul)
    mfa_token = start_login(client, MARIE)  # Marie's password, Paul's key
    assert answer(client, mfa_token, pauls.get(login_options(client, mfa_token))) == 401
    assert failures(platform) == ["wrong-second-factor"]


def test_a_key_planted_in_the_database_opens_nothing(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    enrol(client, platform, marie)
    intruder = new_authenticator(platform)
    with platform.sessions() as session:
        user_id = session.scalar(select(User.id))
    with platform.engine.begin() as connection:
        connection.execute(
            insert(table_of(WebAuthnCredential)),
            [
                {
                    "id": uuid.uuid4(),
                    "user_id": user_id,
                    "credential_id": intruder.credential_id,
                    "public_key": intruder.cose_key(),
                    "sign_count": 0,
                    "transports": "",
                    "name": "planted",
                    "row_mac": bytes(16),
                    "created_at": datetime.now(UTC),
                }
            ],
        )
    assert webauthn_login(client, intruder) == 401
    assert failures(platform) == ["altered-credential"]


def test_webauthn_failures_count_toward_the_lockout(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)
    mfa_token = start_login(client)
    for _ in range(5):
        credential = authenticator.get(login_options(client, mfa_token), flags=UP)
        assert answer(client, mfa_token, credential) == 401
    # Five wrong answers end the login: not even the right one is taken now.
    assert (
        client.post(f"{AUTH}/mfa/webauthn/options", json={"mfa_token": mfa_token}).status_code
        == 401
    )
    for _ in range(5):  # a second login: ten consecutive failures lock the account
        assert webauthn_login(client, authenticator, flags=UP) == 401
    with platform.sessions() as session:
        user = session.scalars(select(User)).one()
        assert user.failed_logins == 10
        assert user.locked_until is not None
    assert (
        client.post(f"{AUTH}/login", json={"email": MARIE, "password": PASSWORD}).status_code == 401
    )


def bent(field: str, value: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(credential: dict[str, Any]) -> dict[str, Any]:
        if field in credential:
            return {**credential, field: value}
        return {**credential, "response": {**credential["response"], field: value}}

    return change


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (bent("rawId", "AAAA"), 401),
        (bent("clientDataJSON", b64url(b"not json")), 401),
        (bent("clientDataJSON", b64url(b'{"type": "webauthn.get", "challenge": 7}')), 401),
        (bent("authenticatorData", b64url(b"\x00" * 5)), 401),
        (bent("signature", b64url(b"\x30\x00")), 401),
        (bent("userHandle", b64url(b"somebody else")), 401),
        (bent("signature", "not base64url!"), 422),  # refused by the schema
        (bent("extra", "1"), 422),
        (lambda credential: credential, 200),  # unbent, the same answer is taken
    ],
)
def test_a_bent_assertion_is_refused_without_a_server_error(
    client: TestClient,
    platform: Platform,
    marie: Person,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    status: int,
) -> None:
    authenticator = enrol(client, platform, marie)
    mfa_token = start_login(client)
    credential = authenticator.get(login_options(client, mfa_token))
    assert answer(client, mfa_token, change(credential)) == status


@pytest.mark.parametrize(
    "change",
    [
        bent("attestationObject", b64url(b"\xa1\x01\x02")),
        bent("attestationObject", b64url(b"\xa3cfmtdnonegattStmt\xa0hauthData\x41\x00")),
        bent("clientDataJSON", b64url(b"[]")),
        bent("rawId", "AAAA"),
    ],
)
def test_a_bent_registration_is_refused_without_a_server_error(
    client: TestClient,
    platform: Platform,
    marie: Person,
    change: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    headers = sign_in(client, platform, MARIE, marie.secret)
    options = client.post(f"{AUTH}/webauthn/register/options", headers=headers).json()
    credential = change(new_authenticator(platform).create(options))
    refused = client.post(
        f"{AUTH}/webauthn/register/verify",
        json={"name": "x", "credential": credential},
        headers=headers,
    )
    assert refused.status_code == 422


def test_the_factors_change_only_from_a_recent_second_factor(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    enrol(client, platform, marie, name="first")
    enrol(client, platform, marie, name="second")
    headers = sign_in(client, platform, MARIE, marie.secret)
    listed = client.get(f"{AUTH}/webauthn/credentials", headers=headers).json()
    assert [c["name"] for c in listed] == ["first", "second"]
    with platform.sessions.begin() as session:  # eleven minutes later
        session.execute(
            update(AuthSession).values(created_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    for method, path in [
        ("DELETE", f"{AUTH}/webauthn/credentials/{listed[0]['id']}"),
        ("GET", f"{AUTH}/webauthn/credentials"),
        ("POST", f"{AUTH}/webauthn/register/options"),
    ]:
        refused = client.request(method, path, headers=headers)
        assert refused.status_code == 403
        assert "second factor" in refused.json()["detail"]

    headers = sign_in(client, platform, MARIE, marie.secret)
    assert (
        client.delete(f"{AUTH}/webauthn/credentials/{listed[0]['id']}", headers=headers).status_code
        == 204
    )
    assert [
        c["name"] for c in client.get(f"{AUTH}/webauthn/credentials", headers=headers).json()
    ] == ["second"]
    with platform.sessions() as session:
        assert "account:webauthn:remove" in session.scalars(select(LedgerEntry.tag)).all()


def test_nobody_removes_anothers_authenticator_nor_the_last_second_factor(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    enrol(client, platform, marie)
    paul = Person(PAUL, add_account(platform, "professional", PAUL, am_number=OPTICIAN_AM))
    pauls_headers = sign_in(client, platform, PAUL, paul.secret)
    maries_headers = sign_in(client, platform, MARIE, marie.secret)
    (maries,) = client.get(f"{AUTH}/webauthn/credentials", headers=maries_headers).json()
    path = f"{AUTH}/webauthn/credentials/{maries['id']}"
    assert client.delete(path, headers=pauls_headers).status_code == 404
    set_rows(platform, User, totp_secret_enc=None)  # Marie's key is all she has left
    assert client.delete(path, headers=maries_headers).status_code == 409


def test_billing_software_cannot_register_an_authenticator(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    headers = sign_in(client, platform, MARIE, marie.secret)
    key = Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    registered = client.post(
        "/api/v1/clients", json={"name": "LGO", "public_key": pem}, headers=headers
    )
    client_id = registered.json()["client_id"]
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{platform.settings.public_url}/api/v1/auth/token",
        "exp": int(time.time()) + 30,
        "jti": uuid.uuid4().hex,
    }
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(claims, key, algorithm="EdDSA"),
    }
    token = client.post(f"{AUTH}/token", data=form).json()["access_token"]
    software = {"Authorization": f"Bearer {token}"}
    refused = client.post(f"{AUTH}/webauthn/register/options", headers=software)
    assert refused.status_code == 403


def test_the_ledger_never_holds_the_address_or_the_key(
    client: TestClient, platform: Platform, marie: Person
) -> None:
    authenticator = enrol(client, platform, marie)
    webauthn_login(client, authenticator)
    webauthn_login(client, authenticator, flags=UP)
    with platform.sessions() as session:
        events = [e.event for e in session.scalars(select(LedgerEntry))]
    assert all(b"pharmacie.example" not in e for e in events)
    assert all(b64url(authenticator.credential_id).encode() not in e for e in events)
