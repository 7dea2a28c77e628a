"""The authorization matrix, from the attacker's side: every route, called by every role.

A role a route does not admit gets 403 before anything is read or validated; a role it admits
gets past the check (whatever the route then says of the empty request). The matrix is read
from the routes themselves, and docs/api.md must show the same one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.identity.deps import roles_of
from rempart.identity.models import ROLES
from rempart.platform import Platform
from rempart.portal.security import is_portal
from tests.integration.test_auth import PUBLIC, api_routes
from tests.support import (
    AMC,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    sign_in,
)

API_DOC = Path(__file__).parents[2] / "docs" / "api.md"
ACCOUNTS = {
    "professional": ("pro@pharmacie.example", {"am_number": PHARMACIST_AM}),
    "amc": ("gestion@mutuelle.example", {"amc_number": AMC}),
    "operator": ("ops@rempart.example", {}),
    "security": ("rssi@rempart.example", {}),
}


@pytest.fixture
def signed_in(platform: Platform) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    add_insurer(platform)
    add_professionals(platform)
    with TestClient(create_app(platform.settings, platform)) as client:
        headers = {}
        for role, (email, binding) in ACCOUNTS.items():
            secret = add_account(platform, role, email, **binding)
            headers[role] = sign_in(client, platform, email, secret)
        yield client, headers


def guarded(client: TestClient) -> list[tuple[APIRoute, str, tuple[str, ...]]]:
    found = []
    for route in api_routes(client.app.routes):  # type: ignore[attr-defined]
        # The portals' pages (out of the schema) send the browser to the sign-in page instead
        # of answering 401: tests/integration/test_portal_authorization.py walks them.
        if route.path in PUBLIC or (not route.include_in_schema and is_portal(route.path)):
            continue
        roles = roles_of(route.dependant)
        assert roles, route.path
        found += [(route, method, roles) for method in sorted(route.methods or ())]
    return sorted(found, key=lambda item: item[0].path.endswith("/logout"))  # it ends the session


def concrete(path: str) -> str:
    """A path with its parameters filled in (ids that exist nowhere)."""
    return re.sub(r"\{[^}]+\}", str(uuid.UUID(int=1)), path)


def test_every_role_is_refused_where_it_is_not_admitted_and_admitted_where_it_is(
    signed_in: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, headers = signed_in
    routes = guarded(client)
    assert len(routes) >= 10
    for route, method, roles in routes:
        for role in ROLES:
            answer = client.request(method, concrete(route.path), headers=headers[role], json={})
            where = f"{method} {route.path} as {role}"
            if role in roles:
                assert answer.status_code not in (401, 403), f"{where}: {answer.text}"
            else:
                assert answer.status_code == 403, f"{where}: {answer.status_code}"
                assert "Forbidden" in answer.text, f"{where}: {answer.text}"


def test_no_guarded_route_answers_without_a_session(
    signed_in: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, _ = signed_in
    for route, method, _ in guarded(client):
        answer = client.request(method, concrete(route.path), json={})
        assert answer.status_code == 401, f"{method} {route.path}"
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_the_documented_matrix_is_the_one_the_routes_enforce(
    signed_in: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, _ = signed_in
    text = API_DOC.read_text()
    documented = set(re.findall(r"^\| `(\w+) (/[^`]+)` \| ([a-z, ]+) \|$", text, re.MULTILINE))
    enforced = {  # the documented API: hidden routes (pages, FHIR's catch-all) are not in it
        (method, route.path, ", ".join(sorted(roles)))
        for route, method, roles in guarded(client)
        if route.include_in_schema
    }
    assert documented == enforced, (
        "docs/api.md's authorization table differs from the routes: "
        f"missing {sorted(enforced - documented)}, stale {sorted(documented - enforced)}"
    )
