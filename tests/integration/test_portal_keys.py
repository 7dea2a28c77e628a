"""Security keys (WebAuthn) through the portal's pages, with a software authenticator standing in
for the browser's: registering one needs a recent second factor and the page's form token, a
key signs in in place of the app's code, and a bad answer opens nothing and counts as a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from rempart.app import create_app
from rempart.db import transaction
from rempart.identity.models import AuthSession, User, WebAuthnCredential
from rempart.identity.services import add_user
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.portal.security import CSP
from tests.support import (
    AMC,
    OPTICIAN_AM,
    PASSWORD,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    csrf_of,
    portal_sign_in,
)
from tests.webauthn_authenticator import UP, Authenticator

MARIE, PAUL = "marie@pharmacie.example", "paul@optique.example"
SECURITY = "/compte/securite"


@pytest.fixture
def app(platform: Platform) -> Iterator[object]:
    add_insurer(platform)
    add_professionals(platform)
    app = create_app(platform.settings, platform)
    with TestClient(app):
        yield app


@pytest.fixture
def secrets(platform: Platform, app: object) -> dict[str, str]:
    return {
        MARIE: add_account(platform, "professional", MARIE, am_number=PHARMACIST_AM),
        PAUL: add_account(platform, "professional", PAUL, am_number=OPTICIAN_AM),
    }


def browser(app: object) -> TestClient:
    return TestClient(app)  # type: ignore[arg-type]


def signed_in(app: object, platform: Platform, secrets: dict[str, str], email: str) -> TestClient:
    client = browser(app)
    portal_sign_in(client, platform, email, secrets[email])
    return client


def authenticator(platform: Platform) -> Authenticator:
    settings = platform.settings
    return Authenticator(settings.resolved_webauthn_origin, settings.resolved_webauthn_rp_id)


def post_json(client: TestClient, path: str, token: str | None, body: Any = None) -> Any:
    headers = {"X-CSRF-Token": token} if token else {}
    return client.post(path, json=body or {}, headers=headers, follow_redirects=False)


def register(client: TestClient, key: Authenticator, name: str = "Clé du comptoir") -> Any:
    token = csrf_of(client.get(SECURITY).text)
    options = post_json(client, "/compte/cles/options", token)
    assert options.status_code == 200, options.text
    return post_json(
        client, "/compte/cles", token, {"name": name, "credential": key.create(options.json())}
    )


def password_step(client: TestClient, email: str) -> str:
    """The password page, as a browser posts it; returns the second factor page's token."""
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf": token},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/login/code"
    page = client.get("/login/code")
    assert 'data-webauthn="login"' in page.text
    assert "/static/webauthn.js" in page.text
    return csrf_of(page.text)


def key_login(client: TestClient, key: Authenticator, token: str, **bend: Any) -> Any:
    options = post_json(client, "/login/cle/options", token)
    assert options.status_code == 200, options.text
    return post_json(client, "/login/cle", token, {"credential": key.get(options.json(), **bend)})


def failures(platform: Platform) -> int:
    with platform.sessions() as session:
        return len(
            session.scalars(
                select(LedgerEntry.seq).where(LedgerEntry.tag == "account:login:failure")
            ).all()
        )


def keys_of(platform: Platform) -> list[str]:
    with platform.sessions() as session:
        return list(session.scalars(select(WebAuthnCredential.name)))


def test_a_key_registered_on_the_accounts_page_then_signs_in_in_place_of_the_code(
    app: object, platform: Platform, secrets: dict[str, str]
) -> None:
    marie = signed_in(app, platform, secrets, MARIE)
    page = marie.get(SECURITY)
    assert page.status_code == 200
    assert "Aucune clé de sécurité" in page.text
    assert page.headers["content-security-policy"] == CSP
    key = authenticator(platform)
    done = register(marie, key)
    assert done.status_code == 201, done.text
    assert done.json() == {"location": f"{SECURITY}?ok=ajout"}
    listed = marie.get(done.json()["location"])
    assert "Clé du comptoir" in listed.text
    assert "Clé de sécurité enregistrée" in listed.text

    counter = browser(app)
    token = password_step(counter, MARIE)
    signed = key_login(counter, key, token)
    assert signed.status_code == 200, signed.text
    assert signed.json() == {"location": "/pro/"}
    assert "rempart_session" in signed.cookies
    assert "rempart_mfa" not in counter.cookies
    assert counter.get("/pro/", follow_redirects=False).status_code == 200


def test_registering_needs_the_form_token_and_a_recent_second_factor(
    app: object, platform: Platform, secrets: dict[str, str]
) -> None:
    marie = signed_in(app, platform, secrets, MARIE)
    key = authenticator(platform)
    # Another site's script, riding the session cookie, has no form token.
    assert post_json(marie, "/compte/cles/options", None).status_code == 403
    token = csrf_of(marie.get(SECURITY).text)
    options = post_json(marie, "/compte/cles/options", token).json()
    forged = post_json(
        marie, "/compte/cles", None, {"name": "x", "credential": key.create(options)}
    )
    assert forged.status_code == 403
    assert keys_of(platform) == []
    # A session whose second factor is eleven minutes old: the page asks for a code first.
    with transaction(platform.sessions) as session:
        stale = datetime.now(UTC) - timedelta(minutes=11)
        session.execute(update(AuthSession).values(created_at=stale))
    page = marie.get(SECURITY)
    assert "Confirmez d'abord votre identité" in page.text
    assert 'data-webauthn="register"' not in page.text
    refused = post_json(marie, "/compte/cles/options", token)
    assert refused.status_code == 403
    assert "Confirmez" in refused.json()["message"]
    assert keys_of(platform) == []


def test_a_key_without_user_verification_is_refused_with_a_message(
    app: object, platform: Platform, secrets: dict[str, str]
) -> None:
    marie = signed_in(app, platform, secrets, MARIE)
    token = csrf_of(marie.get(SECURITY).text)
    options = post_json(marie, "/compte/cles/options", token).json()
    unverified = authenticator(platform).create(options, flags=UP)
    answer = post_json(marie, "/compte/cles", token, {"name": "x", "credential": unverified})
    assert answer.status_code == 422
    assert "vérifier votre identité" in answer.json()["message"]
    garbled = post_json(marie, "/compte/cles", token, {"name": "x", "credential": {"id": 1}})
    assert garbled.status_code == 422
    assert garbled.json()["message"]
    assert keys_of(platform) == []


def test_a_bad_answer_opens_nothing_counts_as_a_failure_and_says_nothing_of_the_account(
    app: object, platform: Platform, secrets: dict[str, str]
) -> None:
    key = authenticator(platform)
    assert register(signed_in(app, platform, secrets, MARIE), key).status_code == 201
    before = failures(platform)
    phished = browser(app)
    token = password_step(phished, MARIE)
    relayed = key_login(phished, key, token, origin="https://rempart.example.evil")
    assert relayed.status_code == 401
    assert "rempart_session" not in relayed.cookies
    assert failures(platform) == before + 1
    assert phished.get("/pro/", follow_redirects=False).headers["location"] == "/login"
    # Paul has no key, and a browser without a pending login has nothing: both get the same
    # answer as any refusal, so the page tells nobody which accounts have keys.
    paul = browser(app)
    no_key = post_json(paul, "/login/cle/options", password_step(paul, PAUL))
    stranger = browser(app)
    stranger_token = csrf_of(stranger.get("/login").text)
    no_login = post_json(stranger, "/login/cle/options", stranger_token)
    assert no_key.status_code == no_login.status_code == 401
    assert no_key.json()["message"] == no_login.json()["message"]


def test_a_key_is_removed_by_its_owner_only(
    app: object, platform: Platform, secrets: dict[str, str]
) -> None:
    marie = signed_in(app, platform, secrets, MARIE)
    assert register(marie, authenticator(platform)).status_code == 201
    with platform.sessions() as session:
        key_id = session.scalars(select(WebAuthnCredential.id)).one()
    paul = signed_in(app, platform, secrets, PAUL)
    token = csrf_of(paul.get(SECURITY).text)
    stolen = paul.post(f"/compte/cles/{key_id}/retirer", data={"csrf": token})
    assert stolen.status_code == 404
    assert keys_of(platform) == ["Clé du comptoir"]
    token = csrf_of(marie.get(SECURITY).text)
    removed = marie.post(
        f"/compte/cles/{key_id}/retirer", data={"csrf": token}, follow_redirects=False
    )
    assert removed.headers["location"] == f"{SECURITY}?ok=retrait"
    assert keys_of(platform) == []


def enrol_page_token(client: TestClient, code: str) -> str:
    token = csrf_of(client.get("/enrol").text)
    page = client.post("/enrol", data={"code": code, "csrf": token})
    assert 'data-webauthn="enrol"' in page.text
    return csrf_of(page.text)


def test_a_person_enrols_with_a_key_in_place_of_the_app_then_uses_it_for_everything(
    app: object, platform: Platform
) -> None:
    created = add_user(
        platform, "professional", "lea@pharmacie.example", actor="t", am_number=PHARMACIST_AM
    )
    assert created.enrolment_code
    code = created.enrolment_code
    newcomer = browser(app)
    token = enrol_page_token(newcomer, code)
    key = authenticator(platform)
    started = post_json(newcomer, "/enrol/cle/options", token, {"code": code})
    assert started.status_code == 200, started.text
    options, ticket = started.json()["options"], started.json()["ticket"]
    body = {
        "code": code,
        "password": PASSWORD,
        "password2": PASSWORD,
        "ticket": ticket,
        "name": "Clé de Léa",
        "credential": key.create(options),
    }
    weak = post_json(
        newcomer, "/enrol/cle", token, body | {"password": "azertyuiop", "password2": "azertyuiop"}
    )
    assert weak.status_code == 422
    assert "Mot de passe refusé" in weak.json()["message"]
    done = post_json(newcomer, "/enrol/cle", token, body)
    assert done.status_code == 200, done.text
    assert done.json() == {"location": "/login?raison=active"}
    assert keys_of(platform) == ["Clé de Léa"]
    with platform.sessions() as session:
        user = session.scalars(select(User).where(User.id == created.user_id)).one()
        assert user.totp_secret_enc is None
        assert user.enrolment_hash is None
    spent = post_json(newcomer, "/enrol/cle/options", token, {"code": code})
    assert spent.status_code == 422

    # She signs in with the key, and confirms her session with it before a sensitive change.
    counter = browser(app)
    assert (
        key_login(counter, key, password_step(counter, "lea@pharmacie.example")).status_code == 200
    )
    with transaction(platform.sessions) as session:
        stale = datetime.now(UTC) - timedelta(minutes=11)
        session.execute(update(AuthSession).values(created_at=stale))
    page = counter.get(SECURITY)
    assert 'data-webauthn="step-up"' in page.text
    token = csrf_of(page.text)
    options = post_json(counter, "/compte/confirmer/cle/options", token)
    assert options.status_code == 200, options.text
    answer = {"credential": key.get(options.json()), "back": SECURITY}
    confirmed = post_json(counter, "/compte/confirmer/cle", token, answer)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json() == {"location": SECURITY}
    assert 'data-webauthn="register"' in counter.get(SECURITY).text  # fresh again


def test_an_enrolment_key_must_answer_its_own_ticket_in_time(
    app: object, platform: Platform
) -> None:
    created = add_user(platform, "amc", "paul@mutuelle.example", actor="t", amc_number=AMC)
    assert created.enrolment_code
    code = created.enrolment_code
    newcomer = browser(app)
    token = enrol_page_token(newcomer, code)
    started = post_json(newcomer, "/enrol/cle/options", token, {"code": code}).json()
    key = authenticator(platform)
    body = {
        "code": code,
        "password": PASSWORD,
        "password2": PASSWORD,
        "name": "x",
        "credential": key.create(started["options"]),
    }
    nonce, _, expires = started["ticket"].rpartition(".")
    for ticket in (f"{nonce}x.{expires}", f"{nonce}.{int(expires) - 600}", "", "a.b"):
        refused = post_json(newcomer, "/enrol/cle", token, body | {"ticket": ticket})
        assert refused.status_code == 422, ticket
    no_token = post_json(newcomer, "/enrol/cle", None, body | {"ticket": started["ticket"]})
    assert no_token.status_code == 403
    assert keys_of(platform) == []
    unverified = key.create(started["options"], flags=UP)
    body |= {"ticket": started["ticket"], "credential": unverified}
    assert post_json(newcomer, "/enrol/cle", token, body).status_code == 422
    assert keys_of(platform) == []


def test_a_step_up_by_key_refused_counts_as_a_failure_and_never_returns_elsewhere(
    app: object, platform: Platform, secrets: dict[str, str]
) -> None:
    marie = signed_in(app, platform, secrets, MARIE)
    key = authenticator(platform)
    assert register(marie, key).status_code == 201
    token = csrf_of(marie.get(SECURITY).text)
    before = failures(platform)
    options = post_json(marie, "/compte/confirmer/cle/options", token).json()
    relayed = key.get(options, origin="https://rempart.example.evil")
    refused = post_json(marie, "/compte/confirmer/cle", token, {"credential": relayed})
    assert refused.status_code == 422
    assert failures(platform) == before + 1
    options = post_json(marie, "/compte/confirmer/cle/options", token).json()
    answer = {"credential": key.get(options), "back": "//evil.example/"}
    confirmed = post_json(marie, "/compte/confirmer/cle", token, answer)
    assert confirmed.json() == {"location": "/pro/"}
    paul = signed_in(app, platform, secrets, PAUL)  # no key: nothing to confirm with
    paul_token = csrf_of(paul.get(SECURITY).text)
    assert post_json(paul, "/compte/confirmer/cle/options", paul_token).status_code == 404
