"""Test data builders shared by the integration tests."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, true

from rempart.db import Base, table_of, transaction
from rempart.identifiers import luhn_complete, make_french_iban, make_nir
from rempart.identity import totp
from rempart.identity.models import User
from rempart.identity.services import add_user
from rempart.integrity import journal
from rempart.platform import Platform
from rempart.registry import services
from rempart.registry.member_file import COLUMNS

AMC = "99000001"
OTHER_AMC = "99000002"

BASE_PLAN = {
    "code": "BASE",
    "name": "Base",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {"PHAR": {"br_total_pct": 100}, "MED": {"br_total_pct": 100}},
}


@dataclass(frozen=True)
class Person:
    """One row of a member file, with unusual names so that a leak is never a coincidence."""

    member_number: str
    nir: str
    last_name: str
    first_name: str
    birth_date: str
    birth_rank: str = "1"
    relationship: str = "insured"
    plan_code: str = "BASE"
    start_date: str = "2025-01-01"
    end_date: str = ""
    suspended_domains: str = ""

    def row(self) -> list[str]:
        return [getattr(self, c) for c in COLUMNS]

    def but(self, **changes: str) -> Person:
        return replace(self, **changes)


def person(n: int) -> Person:
    """The n-th synthetic person: valid NIR, names and birth date unique to n."""
    born = date(1950 + n % 50, 1 + n % 12, 1 + n % 28)
    return Person(
        member_number=f"M{n:07d}",
        nir=make_nir(1 + n % 2, born.year, born.month, "75", f"{n % 999 + 1:03d}", n % 999 + 1),
        last_name=f"Quenouille{n:04d}x",
        first_name=f"Zephyrin{n:04d}y",
        birth_date=born.isoformat(),
    )


def member_file(people: list[Person], header: tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(p.row() for p in people)
    return out.getvalue().encode()


def add_insurer(platform: Platform, amc: str = AMC, plan: dict[str, object] | None = None) -> None:
    services.add_tenant(platform, amc, f"Insurer {amc}")
    services.load_plan(platform, amc, json.dumps(plan or BASE_PLAN).encode())


PHARMACIST_AM = "751234567"
OPTICIAN_AM = "751234568"
PASSWORD = "le chat dort sur le radiateur"


def add_professionals(platform: Platform) -> None:
    """A pharmacist and an optician, with valid identifiers and bank details."""
    iban = make_french_iban("30004", "00001", "12345678901")
    rows = [
        f"{PHARMACIST_AM},{luhn_complete('1000000001')},,Pharmacie,pharmacist,false,{iban},BNPAFRPPXXX,",
        f"{OPTICIAN_AM},{luhn_complete('1000000002')},,Optique,optician,false,{iban},BNPAFRPPXXX,",
    ]
    data = (
        "am_number,rpps,finess,name,profession,optam,iban,bic,networks\n" + "\n".join(rows) + "\n"
    )
    report = services.import_professionals(platform, io.BytesIO(data.encode()))
    assert not report.errors


def add_account(platform: Platform, role: str, email: str, **binding: str) -> str:
    """An account with a password and TOTP; returns its TOTP secret."""
    created = add_user(
        platform,
        role,
        email,
        actor="test",
        password=PASSWORD,
        enrol_totp=True,
        am_number=binding.get("am_number"),
        amc_number=binding.get("amc_number"),
    )
    assert created.totp_uri is not None
    return parse_qs(urlparse(created.totp_uri).query)["secret"][0]


def set_rows(
    platform: Platform,
    model: type[Base],
    where: ColumnElement[bool] | None = None,
    **values: Any,
) -> None:
    """Change rows the way the application does (MACs renewed, journalled): time passing,
    an operator's decision. Tampering tests write through ``platform.engine`` instead."""
    with transaction(platform.sessions) as session:
        journal.update_where(session, table_of(model), true() if where is None else where, **values)


def sign_in(client: TestClient, platform: Platform, email: str, secret: str) -> dict[str, str]:
    """Log in with password and TOTP; returns the Authorization header of the session."""
    set_rows(platform, User, totp_last_step=None)  # several sign-ins within one TOTP step
    mfa = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    code = totp.code_at(secret, datetime.now(UTC))
    granted = client.post(
        "/api/v1/auth/mfa/totp", json={"mfa_token": mfa["mfa_token"], "code": code}
    )
    assert granted.status_code == 200, granted.text
    return {"Authorization": f"Bearer {granted.json()['access_token']}"}


FHIR = "https://rempart.dev/fhir"


def fhir_card(who: Person, amc: str = AMC, rank: int = 1) -> dict[str, Any]:
    """The elements of Rempart's FHIR profile that carry a card (docs/fhir.md)."""
    insurer = {"identifier": {"system": f"{FHIR}/NamingSystem/amc-number", "value": amc}}
    return {
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "birthDate": who.birth_date,
                "multipleBirthInteger": rank,
            },
            {
                "resourceType": "Coverage",
                "id": "coverage",
                "status": "active",
                "subscriberId": who.member_number,
                "beneficiary": {"reference": "#patient"},
                "payor": [insurer],
            },
        ],
        "patient": {"reference": "#patient"},
        "insurer": insurer,
        "created": "2026-01-01",
        "status": "active",
    }


def fhir_eligibility(
    who: Person, domain: str, care_date: str, amc: str = AMC, rank: int = 1
) -> dict[str, Any]:
    """A CoverageEligibilityRequest: one card, one care domain, one care date."""
    return {
        "resourceType": "CoverageEligibilityRequest",
        **fhir_card(who, amc, rank),
        "purpose": ["validation", "benefits"],
        "servicedDate": care_date,
        "insurance": [{"coverage": {"reference": "#coverage"}}],
        "item": [
            {"category": {"coding": [{"system": f"{FHIR}/CodeSystem/care-domain", "code": domain}]}}
        ],
    }


def fhir_line(
    domain: str, care_date: str, billed: str, br: str, amo_rate: int, act: str = "C"
) -> dict[str, Any]:
    """A Claim.item: money as JSON numbers, as FHIR writes them."""
    return {
        "productOrService": {"coding": [{"system": f"{FHIR}/CodeSystem/act-code", "code": act}]},
        "category": {"coding": [{"system": f"{FHIR}/CodeSystem/care-domain", "code": domain}]},
        "servicedDate": care_date,
        "quantity": {"value": 1},
        "net": {"value": float(billed), "currency": "EUR"},
        "extension": [
            {
                "url": f"{FHIR}/StructureDefinition/br",
                "valueMoney": {"value": float(br), "currency": "EUR"},
            },
            {"url": f"{FHIR}/StructureDefinition/amo-rate", "valueUnsignedInt": amo_rate},
        ],
    }


def fhir_claim(
    who: Person, lines: list[dict[str, Any]], use: str = "predetermination", amc: str = AMC
) -> dict[str, Any]:
    """A Claim for ``who``; items are numbered in order."""
    return {
        "resourceType": "Claim",
        **fhir_card(who, amc),
        "use": use,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "provider": {"display": "the practice"},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "#coverage"}}],
        "item": [{"sequence": n, **line} for n, line in enumerate(lines, start=1)],
    }
