"""Logging in, from the attacker's side: what a phished password, a replayed code, a stolen
login token or a guessed address can and cannot obtain."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from starlette.routing import BaseRoute

from rempart.app import create_app
from rempart.identifiers import luhn_complete, make_french_iban
from rempart.identity import totp
from rempart.identity.deps import roles_of
from rempart.identity.models import AuthSession, User
from rempart.identity.services import add_user, password_hasher
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.services import import_professionals
from tests.support import set_rows

AM = "751234567"
EMAIL = "marie@pharmacie.example"
PASSWORD = "le chat dort sur le radiateur"
# Before a session exists: logging in (password, then a second factor) and a client's token.
PUBLIC = {
    "/health",
    "/api/v1/auth/login",
    "/api/v1/auth/mfa/totp",
    "/api/v1/auth/mfa/webauthn/options",
    "/api/v1/auth/mfa/webauthn/verify",
    "/api/v1/auth/token",
    "/api/v1/auth/enrol",
    # The portals' entrance, sign-in and enrolment pages (tests/integration/test_portal*.py).
    "/",
    "/login",
    "/login/code",
    "/login/cle/options",
    "/login/cle",
    "/enrol",
    "/enrol/cle/options",
    "/enrol/cle",
    "/enrol/finaliser",
}


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    iban = make_french_iban("30004", "00001", "12345678901")
    pros = (
        "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n"
        f"{AM},{luhn_complete('1000000001')},,Pharmacie,pharmacist,false,{iban},BNPAFRPPXXX,\n"
    )
    import_professionals(platform, io.BytesIO(pros.encode()))
    with TestClient(create_app(platform.settings, platform)) as test_client:
        yield test_client


@pytest.fixture
def secret(platform: Platform, client: TestClient) -> str:
    created = add_user(
        platform,
        "professional",
        EMAIL,
        actor="test",
        am_number=AM,
        password=PASSWORD,
        enrol_totp=True,
    )
    assert created.totp_uri is not None
    return parse_qs(urlparse(created.totp_uri).query)["secret"][0]


def login(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> dict[str, object]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return {
        "status": response.status_code,
        "body": response.json(),
        "www": response.headers.get("www-authenticate"),
    }


def session_token(client: TestClient, secret: str, at: datetime | None = None) -> str:
    mfa = login(client)["body"]
    assert isinstance(mfa, dict)
    code = totp.code_at(secret, at or datetime.now(UTC))
    response = client.post(
        "/api/v1/auth/mfa/totp", json={"mfa_token": mfa["mfa_token"], "code": code}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert isinstance(token, str)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_password_then_totp_gives_a_session_that_logout_ends(
    client: TestClient, secret: str
) -> None:
    first = login(client)
    assert first["status"] == 200
    assert first["body"]["methods"] == ["totp"]  # type: ignore[index]
    token = session_token(client, secret, datetime.now(UTC) + timedelta(seconds=30))
    me = client.get("/api/v1/auth/session", headers=bearer(token))
    assert me.json() == {"role": "professional", "organisation": AM}
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/auth/session", headers=bearer(token)).status_code == 401


def test_a_password_alone_obtains_nothing(client: TestClient, secret: str) -> None:
    mfa_token = login(client)["body"]["mfa_token"]  # type: ignore[index]
    response = client.get("/api/v1/auth/session", headers=bearer(str(mfa_token)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/auth/session").status_code == 401


def test_a_replayed_totp_code_is_refused(client: TestClient, secret: str) -> None:
    now = datetime.now(UTC)
    code = totp.code_at(secret, now)
    first = login(client)["body"]["mfa_token"]  # type: ignore[index]
    assert (
        client.post("/api/v1/auth/mfa/totp", json={"mfa_token": first, "code": code}).status_code
        == 200
    )
    second = login(client)["body"]["mfa_token"]  # type: ignore[index]
    replay = client.post("/api/v1/auth/mfa/totp", json={"mfa_token": second, "code": code})
    assert replay.status_code == 401


def test_the_login_token_is_spent_by_the_second_factor(client: TestClient, secret: str) -> None:
    mfa_token = login(client)["body"]["mfa_token"]  # type: ignore[index]
    code = totp.code_at(secret, datetime.now(UTC))
    assert (
        client.post(
            "/api/v1/auth/mfa/totp", json={"mfa_token": mfa_token, "code": code}
        ).status_code
        == 200
    )
    later = totp.code_at(secret, datetime.now(UTC) + timedelta(seconds=30))
    again = client.post("/api/v1/auth/mfa/totp", json={"mfa_token": mfa_token, "code": later})
    assert again.status_code == 401


def test_five_wrong_codes_end_the_login(client: TestClient, secret: str) -> None:
    mfa_token = login(client)["body"]["mfa_token"]  # type: ignore[index]
    good = totp.code_at(secret, datetime.now(UTC))
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert (
            client.post(
                "/api/v1/auth/mfa/totp", json={"mfa_token": mfa_token, "code": wrong}
            ).status_code
            == 401
        )
    assert (
        client.post(
            "/api/v1/auth/mfa/totp", json={"mfa_token": mfa_token, "code": good}
        ).status_code
        == 401
    )


def test_wrong_address_wrong_password_and_locked_account_are_answered_alike(
    client: TestClient, secret: str, platform: Platform
) -> None:
    unknown = login(client, email="nobody@pharmacie.example")
    wrong = login(client, password="not the right password at all")
    set_rows(platform, User, locked_until=datetime.now(UTC) + timedelta(hours=1))
    locked = login(client)  # the right password, on a locked account
    assert unknown == wrong == locked
    assert unknown["status"] == 401
    assert "nobody" not in str(unknown["body"])


def test_ten_consecutive_failures_lock_the_account_until_the_delay_passes(
    client: TestClient, secret: str, platform: Platform
) -> None:
    for _ in range(10):
        assert login(client, password="a wrong but long password")["status"] == 401
    assert login(client)["status"] == 401  # locked: even the right password
    set_rows(platform, User, locked_until=datetime.now(UTC) - timedelta(seconds=1))
    assert login(client)["status"] == 200


def test_idle_expired_and_frozen_sessions_stop_at_once(
    client: TestClient, secret: str, platform: Platform
) -> None:
    def fresh_session() -> str:
        set_rows(platform, User, totp_last_step=None)  # let the same time step serve again
        return session_token(client, secret)

    for values in (
        {"last_seen_at": datetime.now(UTC) - timedelta(minutes=31)},
        {"expires_at": datetime.now(UTC) - timedelta(seconds=1)},
    ):
        token = fresh_session()
        assert client.get("/api/v1/auth/session", headers=bearer(token)).status_code == 200
        with platform.sessions.begin() as session:
            session.execute(
                update(AuthSession).where(AuthSession.stage == "active").values(**values)
            )
        assert client.get("/api/v1/auth/session", headers=bearer(token)).status_code == 401
    token = fresh_session()
    assert client.get("/api/v1/auth/session", headers=bearer(token)).status_code == 200
    set_rows(platform, User, status="frozen")
    assert client.get("/api/v1/auth/session", headers=bearer(token)).status_code == 401


def test_a_malformed_request_is_refused_without_echoing_it(client: TestClient) -> None:
    response = client.post(
        "/api/v1/auth/login", json={"email": EMAIL, "password": "p" * 20, "admin": True}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "p" * 20 not in response.text


def test_logins_are_recorded_without_the_address(
    client: TestClient, secret: str, platform: Platform
) -> None:
    session_token(client, secret)
    login(client, email="nobody@pharmacie.example")
    with platform.sessions() as session:
        entries = session.scalars(
            select(LedgerEntry).where(LedgerEntry.tag.like("account:login:%"))
        ).all()
    assert sorted(e.tag for e in entries) == ["account:login:failure", "account:login:success"]
    assert all(b"pharmacie.example" not in e.event for e in entries)


def test_the_same_work_is_done_for_an_unknown_address(
    client: TestClient, secret: str, platform: Platform
) -> None:
    """Timing: argon2 runs on every path, so an unknown address answers no faster."""
    client.app.state.platform = replace(  # type: ignore[attr-defined]
        platform,
        settings=platform.settings.model_copy(
            update={"argon2_time_cost": 3, "argon2_memory_kib": 16_384}
        ),
    )
    strong = password_hasher(client.app.state.platform.settings).hash(PASSWORD)  # type: ignore[attr-defined]
    set_rows(platform, User, password_hash=strong)  # re-hash the password at the higher cost

    def median_seconds(email: str) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            login(client, email=email, password="a wrong but long password")
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    median_seconds("warm-up@pharmacie.example")
    unknown, known = median_seconds("nobody@pharmacie.example"), median_seconds(EMAIL)
    assert 0.5 < unknown / known < 2.0


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, inside included routers too (FastAPI nests them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


def test_every_route_declares_who_may_call_it(client: TestClient) -> None:
    routes = list(api_routes(client.app.routes))  # type: ignore[attr-defined]
    paths = {route.path for route in routes}
    # The walk must see the capabilities' routes, or this test would check nothing.
    assert {"/api/v1/eligibility", "/api/v1/calculations", "/api/v1/clients"} <= paths
    assert paths >= PUBLIC
    for route in routes:
        if route.path in PUBLIC:
            continue
        roles = roles_of(route.dependant)
        assert roles, f"{route.path} declares no role"
        assert "Roles:" in (route.summary or ""), f"{route.path} does not document its roles"
