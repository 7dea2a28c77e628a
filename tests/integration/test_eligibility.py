"""The rights check (IDB) from the attacker's side: nothing to scrape, no oracle, no forgery."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rempart.app import create_app
from rempart.ledger.models import LedgerEntry
from rempart.platform import Platform
from rempart.registry.lookups import active_tenant, insured_by_card
from rempart.registry.member_import import ImportOptions, import_members
from rempart.registry.models import Professional
from rempart.rights.rules import engagement_matches
from tests.support import (
    AMC,
    BASE_PLAN,
    OPTICIAN_AM,
    PHARMACIST_AM,
    Person,
    add_account,
    add_insurer,
    add_professionals,
    member_file,
    person,
    sign_in,
    today,
)

PLAN: dict[str, Any] = copy.deepcopy(BASE_PLAN)
PLAN["guarantees"]["OPTI"] = {"amount": "300.00", "per": "equipment", "prior_agreement": True}
ALICE = person(1)
BOB = person(2).but(end_date=(today() - timedelta(days=10)).isoformat())  # rights ended
CAROL = person(3).but(suspended_domains="PHAR")


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, Platform]]:
    add_insurer(platform, plan=PLAN)
    add_professionals(platform)
    report = import_members(
        platform, AMC, io.BytesIO(member_file([ALICE, BOB, CAROL])), ImportOptions()
    )
    assert report.inserted == 3
    with TestClient(create_app(platform.settings, platform)) as client:
        yield client, platform


def card(who: Person, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "amc_number": AMC,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": 1,
        "domain": "PHAR",
        "care_date": today().isoformat(),
    }
    return {**body, **changes}


@pytest.fixture
def pharmacist(api: tuple[TestClient, Platform]) -> dict[str, str]:
    client, platform = api
    secret = add_account(platform, "professional", "pharma@example.org", am_number=PHARMACIST_AM)
    return sign_in(client, platform, "pharma@example.org", secret)


def test_open_rights_give_the_rate_and_an_engagement_and_nothing_personal(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    response = client.post("/api/v1/eligibility", json=card(ALICE), headers=pharmacist)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "domain", "rate", "prior_agreement_required", "engagement"}
    assert (body["status"], body["rate"], body["prior_agreement_required"]) == (
        "open",
        "100%",
        False,
    )
    assert body["engagement"]["valid_until"] == (today() + timedelta(days=30)).isoformat()
    for personal in (ALICE.nir, ALICE.last_name, ALICE.first_name, ALICE.birth_date):
        assert personal not in response.text


def test_an_unknown_card_and_closed_rights_are_answered_alike(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, _ = api
    answers = [
        client.post("/api/v1/eligibility", json=body, headers=pharmacist)
        for body in (
            card(ALICE, member_number="M9999999"),  # no such card
            card(ALICE, birth_rank=2),  # no such person on the card
            card(BOB),  # rights ended
            card(CAROL),  # domain suspended
            card(ALICE, amc_number="NOSUCHAMC"),  # no such insurer
        )
    ]
    assert {(a.status_code, a.text, a.headers["content-length"]) for a in answers} == {
        (
            200,
            json.dumps(
                {
                    "status": "closed",
                    "domain": "PHAR",
                    "rate": None,
                    "prior_agreement_required": False,
                    "engagement": None,
                },
                separators=(",", ":"),
            ),
            answers[0].headers["content-length"],
        )
    }


def test_a_professional_checks_only_the_domains_of_its_profession(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, platform = api
    refused = client.post(
        "/api/v1/eligibility", json=card(ALICE, domain="OPTI"), headers=pharmacist
    )
    assert refused.status_code == 403
    secret = add_account(platform, "professional", "optique@example.org", am_number=OPTICIAN_AM)
    optician = sign_in(client, platform, "optique@example.org", secret)
    body = client.post(
        "/api/v1/eligibility", json=card(ALICE, domain="OPTI"), headers=optician
    ).json()
    assert (body["status"], body["rate"], body["prior_agreement_required"]) == ("open", "PEC", True)


def test_the_engagement_is_bound_to_patient_professional_domain_and_day(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, platform = api
    number = client.post("/api/v1/eligibility", json=card(ALICE), headers=pharmacist).json()[
        "engagement"
    ]["number"]
    again = client.post("/api/v1/eligibility", json=card(ALICE), headers=pharmacist).json()[
        "engagement"
    ]["number"]
    assert number == again
    yesterday = (today() - timedelta(days=1)).isoformat()
    other_day = client.post(
        "/api/v1/eligibility", json=card(ALICE, care_date=yesterday), headers=pharmacist
    )
    assert other_day.json()["engagement"]["number"] != number
    with platform.sessions() as session:
        key = platform.keyring.platform_secret(session, "engagement")
        tenant = active_tenant(session, AMC)
        assert tenant is not None
        insured = insured_by_card(
            session,
            platform.keyring,
            tenant,
            ALICE.member_number,
            date.fromisoformat(ALICE.birth_date),
            1,
        )
        assert insured is not None
        pro = session.scalar(select(Professional.id).where(Professional.am_number == PHARMACIST_AM))
        assert pro is not None
    assert engagement_matches(number, key, insured.beneficiary_id.hex, pro.hex, "PHAR", today())
    assert not engagement_matches(number, key, insured.beneficiary_id.hex, pro.hex, "MED", today())
    assert not engagement_matches(
        number, key, insured.beneficiary_id.hex, pro.hex, "PHAR", today() - timedelta(days=1)
    )
    assert not engagement_matches(
        number[:-1] + ("A" if number[-1] != "A" else "B"),
        key,
        insured.beneficiary_id.hex,
        pro.hex,
        "PHAR",
        today(),
    )


def test_every_check_is_recorded_with_a_pseudonym_and_nothing_personal(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str]
) -> None:
    client, platform = api
    for body in (card(ALICE), card(ALICE), card(BOB), card(ALICE, member_number="M9999999")):
        assert client.post("/api/v1/eligibility", json=body, headers=pharmacist).status_code == 200
    with platform.sessions() as session:
        entries = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.tag == "beneficiary:rights:read")
            .order_by(LedgerEntry.seq)
        ).all()
    events = [json.loads(e.event) for e in entries]
    assert [e["outcome"] for e in events] == ["open", "open", "closed", "unknown"]
    assert events[0]["beneficiary"] == events[1]["beneficiary"] != events[2]["beneficiary"]
    assert events[3]["beneficiary"] is None
    assert all(e["organisation"] == PHARMACIST_AM for e in events)
    for entry in entries:
        for personal in (ALICE.nir, ALICE.last_name, ALICE.birth_date, BOB.nir, BOB.last_name):
            assert personal.encode() not in entry.event


def test_only_a_professional_session_may_check_rights(api: tuple[TestClient, Platform]) -> None:
    client, platform = api
    assert client.post("/api/v1/eligibility", json=card(ALICE)).status_code == 401
    secret = add_account(platform, "amc", "gestion@mutuelle.example", amc_number=AMC)
    insurer = sign_in(client, platform, "gestion@mutuelle.example", secret)
    assert client.post("/api/v1/eligibility", json=card(ALICE), headers=insurer).status_code == 403
    secret = add_account(platform, "operator", "ops@rempart.example")
    operator = sign_in(client, platform, "ops@rempart.example", secret)
    assert client.post("/api/v1/eligibility", json=card(ALICE), headers=operator).status_code == 403


@pytest.mark.parametrize(
    "changes",
    [
        {"nir": "253072B07300470"},
        {"care_date": "2019-01-01"},
        {"domain": "XXXX"},
        {"birth_rank": 0},
        {"member_number": "M1; DROP TABLE"},
    ],
)
def test_malformed_checks_are_refused_without_echo(
    api: tuple[TestClient, Platform], pharmacist: dict[str, str], changes: dict[str, object]
) -> None:
    client, _ = api
    response = client.post("/api/v1/eligibility", json=card(ALICE, **changes), headers=pharmacist)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "253072B07300470" not in response.text
    assert ALICE.birth_date not in response.text
