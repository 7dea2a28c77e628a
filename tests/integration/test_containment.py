"""Containment from the operator's side: each freeze takes effect at the next request, is on the
record, and is lifted as cleanly; a stolen session does not come back with the unfreeze."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from rempart.app import create_app
from rempart.cli import app as cli_app
from rempart.db import table_of
from rempart.identity.models import AuthSession, User
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
    card_body,
    member_file,
    person,
    portal_sign_in,
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


# --- the operators' API ---------------------------------------------------------------------

GUARD = "/api/v1/guard"


def test_operators_freeze_and_lift_through_the_api(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    stolen = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    ops = sign_in(client, platform, "ops@rempart.example", accounts["ops@rempart.example"])
    body = {"kind": "account", "name": "pharma@example.org", "reason": "phished"}
    frozen = client.post(f"{GUARD}/freezes", json=body, headers=ops)
    assert frozen.status_code == 201, frozen.text
    assert "pharma@example.org" not in frozen.text  # labelled by id, not by address
    assert client.get(ME, headers=stolen).status_code == 401
    listed = client.get(f"{GUARD}/freezes", headers=ops).json()
    assert [(f["kind"], f["reason"]) for f in listed] == [("account", "phished")]
    assert client.post(f"{GUARD}/freezes", json=body, headers=ops).status_code == 409
    lifted = client.post(
        f"{GUARD}/freezes/lift", json={"kind": "account", "name": "pharma@example.org"}, headers=ops
    )
    assert lifted.status_code == 200
    assert client.get(f"{GUARD}/freezes", headers=ops).json() == []
    assert client.get(ME, headers=stolen).status_code == 401  # ended, not suspended
    with platform.sessions() as session:
        tags = session.scalars(
            select(LedgerEntry.tag).where(LedgerEntry.tag.like("guard:%")).order_by(LedgerEntry.seq)
        ).all()
    assert tags == ["guard:containment:freeze", "guard:containment:unfreeze"]


def test_an_old_operator_session_cannot_change_containment(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    ops = sign_in(client, platform, "ops@rempart.example", accounts["ops@rempart.example"])
    with platform.engine.begin() as connection:  # the second factor was given 11 minutes ago
        connection.execute(
            update(table_of(AuthSession)).values(
                created_at=datetime.now(UTC) - timedelta(minutes=11)
            )
        )
    for path, body in (
        ("/freezes", {"kind": "platform", "reason": "test"}),
        ("/freezes/lift", {"kind": "platform"}),
        ("/reenrolment", {"accounts": ["pharma@example.org"], "reason": "test"}),
    ):
        assert client.post(f"{GUARD}{path}", json=body, headers=ops).status_code == 403, path
    assert client.get(f"{GUARD}/freezes", headers=ops).status_code == 200  # reading is fine


def test_forced_reenrolment_erases_credentials_and_gives_a_new_code(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    stolen = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    ops = sign_in(client, platform, "ops@rempart.example", accounts["ops@rempart.example"])
    unknown = client.post(
        f"{GUARD}/reenrolment",
        json={"accounts": ["pharma@example.org", "nobody@example.org"], "reason": "phishing"},
        headers=ops,
    )
    assert unknown.status_code == 404
    assert client.get(ME, headers=stolen).status_code == 200  # all or nothing
    done = client.post(
        f"{GUARD}/reenrolment",
        json={"accounts": ["pharma@example.org"], "reason": "phishing campaign"},
        headers=ops,
    )
    assert done.status_code == 200, done.text
    (item,) = done.json()
    assert len(item["enrolment_code"]) >= 20
    assert "pharma" not in item["label"]
    assert client.get(ME, headers=stolen).status_code == 401
    again = client.post(
        "/api/v1/auth/login", json={"email": "pharma@example.org", "password": PASSWORD}
    )
    assert again.status_code == 401  # the old password is gone
    with platform.sessions() as session:
        user = session.get(User, uuid.UUID(item["label"].removeprefix("account ")))
        reset = session.scalars(
            select(LedgerEntry.event).where(LedgerEntry.tag == "account:enrolment:reset")
        ).all()
    assert user is not None
    assert user.totp_secret_enc is None
    assert user.enrolment_hash is not None
    assert len(reset) == 1
    assert b"pharma" not in reset[0]


def test_reenrolment_from_the_shell_prints_one_code_per_account(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    stolen = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    code, output = guard(
        "reenrol", "--account", "pharma@example.org", "--reason", "phishing", "--json"
    )
    assert code == 0, output
    (item,) = json.loads(output)
    assert item["account"].startswith("account ")
    assert len(item["enrolment_code"]) >= 20
    assert client.get(ME, headers=stolen).status_code == 401
    assert guard("reenrol", "--account", "nobody@example.org", "--reason", "x")[0] != 0


def test_a_frozen_portal_shows_nothing_while_the_api_goes_on(
    world: tuple[TestClient, Platform, dict[str, str]],
) -> None:
    client, platform, accounts = world
    api = sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    home = portal_sign_in(client, platform, "pharma@example.org", accounts["pharma@example.org"])
    assert client.get(home).status_code == 200
    assert guard("freeze", "--portal", "pro", "--reason", "page scraped")[0] == 0
    assert client.get(home).status_code == 503
    assert "pharma" not in client.get(home).text
    check = client.post("/api/v1/eligibility", json=card_body(person(1)), headers=api)
    assert check.status_code == 200  # billing software and the API are not the portal
    assert guard("freeze", "--portal", "nowhere", "--reason", "x")[0] != 0
    assert guard("unfreeze", "--portal", "pro")[0] == 0
    assert client.get(home).status_code == 200
