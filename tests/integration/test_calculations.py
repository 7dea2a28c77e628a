"""Calculations (CLC) over HTTP: DOMAIN.md's worked examples to the cent, and no oracle."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rempart.app import create_app
from rempart.identifiers import luhn_complete, make_french_iban
from rempart.platform import Platform
from rempart.registry import services
from rempart.registry.member_import import ImportOptions, import_members
from tests.support import AMC, Person, add_account, member_file, person, sign_in, today

BASE = {
    "code": "BASE",
    "name": "Base",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {
        "MED": {"br_total_pct": 100},
        "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
        "DESO": {"br_total_pct": 100},
    },
}
CONFORT = {
    "code": "CONFORT",
    "name": "Confort",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {
        "MED": {"br_total_pct": 200},
        "OPTI": {"amount": "300.00", "per": "equipment", "frame_cap": "100.00"},
        "AUDI": {"amount": "1460.00", "per": "item", "cap_incl_amo": "1700.00"},
    },
}
ON_BASE = person(1)
ON_CONFORT = person(2).but(plan_code="CONFORT")
PROFESSIONS = {
    "gp": "751000001",
    "specialist": "751000002",
    "pharmacist": "751000003",
    "optician": "751000004",
    "audiologist": "751000005",
    "dentist": "751000006",
}


@pytest.fixture
def api(platform: Platform) -> Iterator[tuple[TestClient, Platform]]:
    services.add_tenant(platform, AMC, "Mutuelle")
    for plan in (BASE, CONFORT):
        services.load_plan(platform, AMC, json.dumps(plan).encode())
    import_members(platform, AMC, io.BytesIO(member_file([ON_BASE, ON_CONFORT])), ImportOptions())
    iban = make_french_iban("30004", "00001", "12345678901")
    rows = [
        f"{am},{luhn_complete(f'100000000{i}')},,Dr {p},{p},true,{iban},BNPAFRPPXXX,"
        for i, (p, am) in enumerate(PROFESSIONS.items())
    ]
    data = (
        "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n" + "\n".join(rows) + "\n"
    )
    assert services.import_professionals(platform, io.BytesIO(data.encode())).inserted == 6
    with TestClient(create_app(platform.settings, platform)) as client:
        yield client, platform


def as_(api: tuple[TestClient, Platform], profession: str) -> dict[str, str]:
    client, platform = api
    email = f"{profession}@example.org"
    return sign_in(
        client,
        platform,
        email,
        add_account(platform, "professional", email, am_number=PROFESSIONS[profession]),
    )


def line(domain: str, billed: str, br: str, amo_rate: int, **extra: object) -> dict[str, object]:
    return {
        "act_code": "C",
        "domain": domain,
        "care_date": today().isoformat(),
        "quantity": 1,
        "billed": billed,
        "br": br,
        "amo_rate": amo_rate,
        **extra,
    }


def calculate(
    api: tuple[TestClient, Platform],
    headers: dict[str, str],
    who: Person,
    lines: list[dict[str, object]],
) -> dict[str, Any]:
    client, _ = api
    body = {
        "amc_number": AMC,
        "member_number": who.member_number,
        "birth_date": who.birth_date,
        "birth_rank": 1,
        "lines": lines,
    }
    response = client.post("/api/v1/calculations", json=body, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def amounts(result: dict[str, Any]) -> list[str]:
    return [line["amc_amount"] for line in result["lines"]]


def test_example_1_gp_consultation(api: tuple[TestClient, Platform]) -> None:
    result = calculate(api, as_(api, "gp"), ON_BASE, [line("MED", "30.00", "30.00", 70)])
    assert amounts(result) == ["9.00"]
    assert result["total_amc"] == "9.00"


def test_example_2_optam_specialist(api: tuple[TestClient, Platform]) -> None:
    result = calculate(
        api, as_(api, "specialist"), ON_CONFORT, [line("MED", "70.00", "31.50", 70, optam=True)]
    )
    assert amounts(result) == ["40.95"]  # the patient pays 70.00 - 22.05 - 40.95 = 7.00


def test_example_3_drugs_and_the_15_percent_exclusion(api: tuple[TestClient, Platform]) -> None:
    result = calculate(
        api,
        as_(api, "pharmacist"),
        ON_BASE,
        [line("PHAR", "10.00", "10.00", 30), line("PHAR", "10.00", "10.00", 15)],
    )
    assert amounts(result) == ["7.00", "0.00"]
    assert result["lines"][1]["reject_codes"] == ["NOT_COVERED"]


def test_example_4_class_b_glasses(api: tuple[TestClient, Platform]) -> None:
    lines = [
        line("OPTI", "150.00", "0.05", 60, amo_paid="0.03", item_type="frame"),
        line("OPTI", "120.00", "0.05", 60, amo_paid="0.03", item_type="lens"),
        line("OPTI", "120.00", "0.05", 60, amo_paid="0.03", item_type="lens"),
    ]
    result = calculate(api, as_(api, "optician"), ON_CONFORT, lines)
    assert amounts(result) == ["100.00", "119.97", "80.03"]
    assert result["total_amc"] == "300.00"  # patient: 390.00 - 0.09 - 300.00 = 89.91


def test_example_5_class_i_hearing_aid_100_percent_sante(api: tuple[TestClient, Platform]) -> None:
    aid = line(
        "AUDI",
        "950.00",
        "400.00",
        60,
        basket="100PS",
        price_limit="950.00",
        item_type="hearing_aid",
    )
    assert amounts(calculate(api, as_(api, "audiologist"), ON_CONFORT, [aid])) == ["710.00"]


def test_example_6_dental_filling(api: tuple[TestClient, Platform]) -> None:
    assert amounts(
        calculate(api, as_(api, "dentist"), ON_BASE, [line("DESO", "29.30", "29.30", 60)])
    ) == ["11.72"]


def test_an_unknown_card_is_answered_as_closed_rights(api: tuple[TestClient, Platform]) -> None:
    headers = as_(api, "gp")
    ended = person(3).but(end_date=(today() - timedelta(days=3)).isoformat())
    _, platform = api
    import_members(platform, AMC, io.BytesIO(member_file([ended])), ImportOptions(delta=True))
    unknown = calculate(api, headers, person(9), [line("MED", "30.00", "30.00", 70)])
    closed = calculate(api, headers, ended, [line("MED", "30.00", "30.00", 70)])
    assert unknown == closed  # to the byte: the calculation tells no one who is a member
    assert closed["lines"][0]["reject_codes"] == ["RIGHTS_CLOSED"]


def test_money_must_be_a_decimal_string(api: tuple[TestClient, Platform]) -> None:
    client, _ = api
    body = {
        "amc_number": AMC,
        "member_number": ON_BASE.member_number,
        "birth_date": ON_BASE.birth_date,
        "birth_rank": 1,
        "lines": [{**line("MED", "30.00", "30.00", 70), "billed": 30.0}],  # a float
    }
    response = client.post("/api/v1/calculations", json=body, headers=as_(api, "gp"))
    assert response.status_code == 422
    assert any("lines.0.billed" in e["field"] for e in response.json()["errors"])
