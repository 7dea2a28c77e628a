"""Containment from the operator's side: each freeze takes effect at the next request, is on the
record, and is lifted as cleanly; a stolen session does not come back with the unfreeze."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.member_import import ImportOptions, import_members
from rempart.settings import get_settings
from tests.support import (
    AMC,
    OPTICIAN_AM,
    OTHER_AMC,
    PASSWORD,
    PHARMACIST_AM,
    add_account,
    add_insurer,
    add_professionals,
    member_file,
    person,
    sign_in,
)

ME = "/api/v1/auth/session"


@pytest.fixture
def world(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Platform, dict[str, str]]]:
    add_insurer(platform)
    add_insurer(platform, OTHER_AMC)
    add_professionals(platform)
    import_members(platform, AMC, io.BytesIO(member_file([person(1)])), ImportOptions())
    import_members(platform, OTHER_AMC, io.BytesIO(member_file([person(2)])), ImportOptions())
    monkeypatch.setenv("REMPART_HOME", str(platform.settings.home))
    monkeypatch.setenv("REMPART_DATABASE_URL", platform.settings.resolved_database_url)
    get_settings.cache_clear()
    accounts = {
        "pharma@example.org": add_account(
            platform, "professional", "pharma@example.org", am_number=PHARMACIST_AM
        ),
        "optique@example.org": add_account(
            platform, "professional", "optique@example.org", am_number=OPTICIAN_AM
        ),
        "gestion@mutuelle.example": add_account(
            platform, "amc", "gestion@mutuelle.example", amc_number=AMC
        ),
        "ops@rempart.example": add_account(platform, "operator", "ops@rempart.example"),
    }
    with TestClient(create_app(platform.settings, platform)) as client:
        yield client, platform, accounts
    get_settings.cache_clear()


def guard(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli_app, ["guard", *args])
    return result.exit_code, result.output


def check(client: TestClient, headers: dict[str, str], n: int, amc: str) -> int:
    p = person(n)
    body = {
        "amc_number": amc,
        "member_number": p.member_number,
        "birth_date": p.birth_date,
        "birth_rank": 1,
        "domain": "PHAR",
        "care_date": time.strftime("%Y-%m-%d"),
    }
    return client.post("/api/v1/eligibility", json=body, headers=headers).status_code


def test_a_frozen_account_stops_at_once_and_its_session_does_not_come_back(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    stolen = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    assert client.get(ME, headers=stolen).status_code == 200
    assert guard("freeze", "--account", "pharma@example.org", "--reason", "phished")[0] == 0
    assert client.get(ME, headers=stolen).status_code == 401
    login = client.post(
        "/api/v1/auth/login", json={"email": "pharma@example.org", "password": PASSWORD}
    )
    wrong = client.post(
        "/api/v1/auth/login", json={"email": "pharma@example.org", "password": "x" * 20}
    )
    assert (login.status_code, login.json()) == (wrong.status_code, wrong.json())  # no tell
    assert guard("unfreeze", "--account", "pharma@example.org")[0] == 0
    assert client.get(ME, headers=stolen).status_code == 401  # ended, not suspended
    fresh = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    assert client.get(ME, headers=fresh).status_code == 200


def test_a_frozen_professional_stops_its_people_and_no_one_else(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    pharmacist = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    optician = sign_in(client, platform, "optique@example.org", accounts["optique@example.org"])
    assert guard("freeze", "--professional", PHARMACIST_AM, "--reason", "abnormal volume")[0] == 0
    assert client.get(ME, headers=pharmacist).status_code == 401
    assert client.get(ME, headers=optician).status_code == 200
    assert guard("unfreeze", "--professional", PHARMACIST_AM)[0] == 0
    assert client.get(ME, headers=pharmacist).status_code == 200  # a professional's freeze suspends


def test_a_frozen_insurer_suspends_its_rights_checks_and_its_staff(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    pharmacist = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    staff = sign_in(
        client, platform, "gestion@mutuelle.example", accounts["gestion@mutuelle.example"]
    )
    assert guard("freeze", "--amc-number", AMC, "--reason", "its extract leaked")[0] == 0
    assert check(client, pharmacist, 1, AMC) == 503
    assert check(client, pharmacist, 2, OTHER_AMC) == 200
    assert client.get(ME, headers=staff).status_code == 401
    assert guard("unfreeze", "--amc-number", AMC)[0] == 0
    assert check(client, pharmacist, 1, AMC) == 200


def test_the_platform_kill_switch_spares_the_operators_who_lift_it(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    pharmacist = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    operator = sign_in(client, platform, "ops@rempart.example", accounts["ops@rempart.example"])
    assert guard("freeze", "--platform", "--reason", "breach under investigation")[0] == 0
    suspended = client.get(ME, headers=pharmacist)
    assert suspended.status_code == 503
    assert suspended.headers["content-type"] == "application/problem+json"
    assert client.get(ME, headers=operator).status_code == 200
    code, output = guard("status", "--json")
    assert code == 0
    (in_force,) = json.loads(output)
    assert (in_force["label"], in_force["reason"]) == ("the platform", "breach under investigation")
    assert guard("unfreeze", "--platform")[0] == 0
    assert client.get(ME, headers=pharmacist).status_code == 200
    assert "nothing is frozen" in guard("status")[1]


def test_freezes_are_on_the_record_and_refused_twice(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    _, platform, _ = world
    assert guard("freeze", "--professional", OPTICIAN_AM, "--reason", "test")[0] == 0
    code, output = guard("freeze", "--professional", OPTICIAN_AM, "--reason", "again")
    assert code == 1
    assert "already frozen" in output
    assert guard("unfreeze", "--professional", OPTICIAN_AM)[0] == 0
    code, output = guard("unfreeze", "--professional", OPTICIAN_AM)
    assert code == 1
    assert "not frozen" in output
    assert guard("freeze", "--reason", "x")[0] == 1  # nothing named
    assert guard("freeze", "--account", "nobody@example.org", "--reason", "x")[0] == 1
    with platform.sessions() as session:
        tags = list(
            session.scalars(
                select(LedgerEntry.tag)
                .where(LedgerEntry.tag.like("guard:%"))
                .order_by(LedgerEntry.seq)
            )
        )
    assert tags == ["guard:containment:freeze", "guard:containment:unfreeze"]
