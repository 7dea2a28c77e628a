"""The portals' authorization matrix, from the attacker's side: every page, called by every role.

Pages are kept out of the OpenAPI schema (``include_in_schema=False``), so the API's matrix
(test_authorization.py) skips them; this one walks them the same way. A role a page does not
admit gets 403 before anything is read; an admitted role gets past the check; without a session
a page sends the browser to the sign-in page (303), and changes nothing. Every answer, whatever
it is, carries the Content-Security-Policy.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.identity.deps import roles_of
from rempart.identity.models import ROLES
from rempart.incidents import containment
from rempart.platform import Platform
from rempart.portal.security import CSP, is_portal
from tests.integration.test_auth import PUBLIC, api_routes
from tests.support import (
    AMC,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    csrf_of,
    portal_sign_in,
)

ACCOUNTS = {
    "professional": ("pro@pharmacie.example", {"am_number": PHARMACIST_AM}),
    "amc": ("gestion@mutuelle.example", {"amc_number": AMC}),
    "operator": ("ops@rempart.example", {}),
    "security": ("rssi@rempart.example", {}),
}
HOMES = {"professional": "/pro/", "amc": "/amc/", "operator": "/ops/", "security": "/ops/"}
# Pages that end the session or freeze the account: every role has them, and calling them
# here would end the sessions the matrix needs (test_portal.py exercises them).
ENDING = {"/logout", "/compte/pas-moi"}


def pages(app: object) -> list[tuple[APIRoute, str, tuple[str, ...]]]:
    found = []
    for route in api_routes(app.routes):  # type: ignore[attr-defined]
        if route.include_in_schema or route.path in PUBLIC or not is_portal(route.path):
            continue
        roles = roles_of(route.dependant)
        assert roles, f"{route.path} declares no role"
        assert (route.summary or "").startswith("Roles: "), route.path
        found += [(route, method, roles) for method in sorted(route.methods or ())]
    return found


def concrete(path: str) -> str:
    """A page's address with its parameters filled in (ids that exist nowhere)."""
    return re.sub(r"\{[^}]+\}", str(uuid.UUID(int=1)), path).replace(
        str(uuid.UUID(int=1)) + ".csv", "erreurs.csv"
    )


@pytest.fixture
def browsers(platform: Platform) -> Iterator[tuple[object, dict[str, TestClient]]]:
    add_insurer(platform)
    add_professionals(platform)
    app = create_app(platform.settings, platform)
    with TestClient(app):
        clients = {}
        for role, (email, binding) in ACCOUNTS.items():
            secret = add_account(platform, role, email, **binding)
            clients[role] = TestClient(app)
            portal_sign_in(clients[role], platform, email, secret)
        yield app, clients


def test_every_page_declares_its_roles_and_the_walk_sees_every_portal(
    browsers: tuple[object, dict[str, TestClient]],
) -> None:
    app, _ = browsers
    paths = {route.path for route, _, _ in pages(app)}
    assert {"/pro/", "/pro/droits", "/amc/", "/amc/acces", "/ops/", "/ops/gel"} <= paths
    public = {r.path for r in api_routes(app.routes) if not r.include_in_schema} & PUBLIC  # type: ignore[attr-defined]
    assert public == {
        "/",
        "/login",
        "/login/code",
        "/login/cle/options",
        "/login/cle",
        "/enrol",
        "/enrol/finaliser",
        "/enrol/cle/options",
        "/enrol/cle",
    }


def test_every_role_is_refused_where_it_is_not_admitted_and_admitted_where_it_is(
    browsers: tuple[object, dict[str, TestClient]], platform: Platform
) -> None:
    app, clients = browsers
    tokens = {role: csrf_of(client.get(HOMES[role]).text) for role, client in clients.items()}
    checked = 0
    for route, method, roles in pages(app):
        if route.path in ENDING:
            assert set(roles) == set(ROLES), route.path
            continue
        for role, client in clients.items():
            data = {"csrf": tokens[role]} if method == "POST" else None
            answer = client.request(method, concrete(route.path), data=data, follow_redirects=False)
            where = f"{method} {route.path} as {role}"
            assert answer.headers["content-security-policy"] == CSP, where  # every answer
            if role in roles:
                assert answer.status_code != 403 or "Confirmez" in answer.text, where
                assert not answer.headers.get("location", "").startswith("/login"), where
            else:
                assert answer.status_code == 403, f"{where}: {answer.status_code}"
                assert "Refusé" in answer.text, where
            checked += 1
    assert checked >= 4 * 15
    assert not containment.in_force(platform)


def test_no_page_answers_without_a_session(
    browsers: tuple[object, dict[str, TestClient]], platform: Platform
) -> None:
    app, _ = browsers
    anonymous = TestClient(app)  # type: ignore[arg-type]
    for route, method, _ in pages(app):
        answer = anonymous.request(method, concrete(route.path), follow_redirects=False)
        assert answer.status_code == 303, f"{method} {route.path}"
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["location"] == "/login"
    assert not containment.in_force(platform)
