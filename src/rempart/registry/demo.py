"""Synthetic but valid demo data: insurers, plans, members, professionals; deterministic per seed.

The data go through the same files and imports as real data, so the demo exercises the real path.
Names come from Faker's fr_FR locale; NIRs, RPPS, FINESS and IBANs carry valid check digits.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from faker import Faker

from rempart.identifiers import luhn_complete, make_french_iban, make_nir
from rempart.registry.member_file import COLUMNS as MEMBER_COLUMNS
from rempart.registry.professional_file import COLUMNS as PROFESSIONAL_COLUMNS

TENANTS = (("75000001", "Mutuelle des Remparts"), ("13000002", "Prévoyance du Littoral"))
RIGHTS_START = date(2025, 1, 1)
# Real French banks' codes and BICs, so that the demo's bank details look like real ones.
BANKS = (
    ("30004", "BNPAFRPPXXX"),
    ("30003", "SOGEFRPPXXX"),
    ("30002", "CRLYFRPPXXX"),
    ("20041", "PSSTFRPPXXX"),
)
DEPARTMENTS = ("75", "69", "13", "33", "59", "31", "44", "67", "2A", "2B")
# How many professionals of each kind the demo has for 1,000 members (at least one of each).
PROFESSION_SHARE = {
    "pharmacist": 8,
    "gp": 10,
    "specialist": 6,
    "dentist": 4,
    "optician": 3,
    "audiologist": 1,
    "laboratory": 2,
    "nurse": 6,
    "physiotherapist": 4,
    "hospital": 2,
    "transport": 2,
}

CONFORT: dict[str, Any] = {
    "code": "CONFORT",
    "name": "Confort 2025",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {
        "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
        "MED": {"br_total_pct": 200},
        "LABO": {"br_total_pct": 100},
        "RADL": {"br_total_pct": 100},
        "AUXM": {"br_total_pct": 100},
        "DESO": {"br_total_pct": 100},
        "DEPR": {"br_total_pct": 300, "ceiling": {"amount": "1500.00", "period": "calendar_year"}},
        "OPTI": {
            "amount": "300.00",
            "per": "equipment",
            "frame_cap": "100.00",
            "renewal_months": 24,
            "renewal_months_under_16": 12,
            "prior_agreement": True,
        },
        "AUDI": {
            "amount": "1460.00",
            "per": "item",
            "cap_incl_amo": "1700.00",
            "renewal_months": 48,
            "prior_agreement": True,
        },
        "HOSP": {"br_total_pct": 100, "daily_fee": True},
        "TRAN": {"br_total_pct": 100},
    },
}
ESSENTIEL: dict[str, Any] = {
    "code": "ESSENTIEL",
    "name": "Essentiel 2025",
    "responsible": True,
    "valid_from": "2025-01-01",
    "valid_to": None,
    "guarantees": {
        "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
        "MED": {"br_total_pct": 100},
        "LABO": {"br_total_pct": 100},
        "AUXM": {"br_total_pct": 100},
        "DESO": {"br_total_pct": 100},
        "DEPR": {"br_total_pct": 125},
        "OPTI": {
            "amount": "100.00",
            "per": "equipment",
            "frame_cap": "50.00",
            "renewal_months": 24,
            "renewal_months_under_16": 12,
            "prior_agreement": True,
        },
        "HOSP": {"br_total_pct": 100, "daily_fee": True},
    },
}
PLANS = (CONFORT, ESSENTIEL)


@dataclass(frozen=True)
class DemoFiles:
    """Everything the demo loads, as the files an insurer and the operator would send."""

    plans: tuple[bytes, ...]
    professionals: bytes
    members: dict[str, bytes]  # AMC number -> member file


def demo_files(members: int, seed: int) -> DemoFiles:
    members_by_tenant = {
        amc: _csv(
            MEMBER_COLUMNS,
            member_rows(
                members // len(TENANTS) + (i < members % len(TENANTS)), seed + i, prefix=str(i + 1)
            ),
        )
        for i, (amc, _) in enumerate(TENANTS)
    }
    return DemoFiles(
        plans=tuple(json.dumps(p, ensure_ascii=False, indent=2).encode() for p in PLANS),
        professionals=_csv(
            PROFESSIONAL_COLUMNS, professional_rows(max(members, 1000) // 1000, seed)
        ),
        members=members_by_tenant,
    )


def _csv(columns: tuple[str, ...], rows: Iterator[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def member_rows(count: int, seed: int, prefix: str = "1") -> Iterator[list[str]]:
    """Rows of a member file: each member has an insured person, maybe a spouse and children."""
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    for n in range(count):
        number = f"{prefix}{n + 1:09d}"
        plan = "CONFORT" if rng.random() < 0.6 else "ESSENTIEL"
        last_name = fake.last_name()
        adult_born = _birth_date(rng, 1945, 2004)
        sex = rng.choice((1, 2))
        yield _person(
            rng, fake, number, "insured", sex, last_name, adult_born, 1, plan, with_nir=True
        )
        if rng.random() < 0.5:
            spouse_born = _birth_date(rng, 1945, 2004)
            yield _person(
                rng,
                fake,
                number,
                "spouse",
                3 - sex,
                last_name,
                spouse_born,
                2 if spouse_born == adult_born else 1,  # same birthday: ranks tell them apart
                plan,
                with_nir=rng.random() < 0.8,
            )
        children = rng.choice((0, 0, 1, 2, 2, 3))
        born = _birth_date(rng, max(adult_born.year + 18, 2008), 2024) if children else None
        rank = 0
        for c in range(children):
            assert born is not None
            if c > 0 and rng.random() < 0.1:
                rank += 1  # twins: same birth date, next birth rank
            else:
                rank = 1
                born = born + timedelta(days=rng.randint(400, 1500))
                if born >= RIGHTS_START:
                    break
            yield _person(
                rng,
                fake,
                number,
                "child",
                rng.choice((1, 2)),
                last_name,
                born,
                rank,
                plan,
                with_nir=False,
            )


def _person(
    rng: random.Random,
    fake: Faker,
    number: str,
    relationship: str,
    sex: int,
    last_name: str,
    born: date,
    rank: int,
    plan: str,
    *,
    with_nir: bool,
) -> list[str]:
    first = fake.first_name_male() if sex == 1 else fake.first_name_female()
    nir = ""
    if with_nir:
        department = rng.choice(DEPARTMENTS)
        commune = f"{rng.randint(1, 999):03d}"
        nir = make_nir(sex, born.year, born.month, department, commune, rng.randint(1, 999))
    end = ""
    suspended = "OPTI" if rng.random() < 0.02 else ""
    return [
        number,
        nir,
        last_name,
        first,
        born.isoformat(),
        str(rank),
        relationship,
        plan,
        max(RIGHTS_START, born).isoformat(),
        end,
        suspended,
    ]


def _birth_date(rng: random.Random, first_year: int, last_year: int) -> date:
    start = date(first_year, 1, 1)
    return start + timedelta(days=rng.randint(0, (date(last_year, 12, 31) - start).days))


def professional_rows(per_share: int, seed: int) -> Iterator[list[str]]:
    """Professionals of every kind, with valid identifiers and bank accounts."""
    fake = Faker("fr_FR")
    fake.seed_instance(seed + 1000)
    rng = random.Random(seed + 1000)
    serial = 0
    for profession, share in PROFESSION_SHARE.items():
        for _ in range(max(1, share * per_share)):
            serial += 1
            am_number = f"{rng.choice((75, 69, 13, 33))}{serial:07d}"
            facility = profession in ("hospital", "laboratory", "transport")
            rpps = "" if facility else luhn_complete(f"10{rng.randint(0, 10**8 - 1):08d}")
            finess = (
                luhn_complete(f"{rng.choice((75, 69, 13))}0{rng.randint(0, 99999):05d}")
                if facility
                else ""
            )
            name = _professional_name(fake, profession)
            bank, bic = rng.choice(BANKS)
            iban = make_french_iban(
                bank, f"{rng.randint(0, 99999):05d}", f"{rng.randint(0, 10**11 - 1):011d}"
            )
            optam = "true" if profession in ("gp", "specialist") and rng.random() < 0.7 else "false"
            networks = (
                "KALIVIA"
                if profession in ("optician", "audiologist", "dentist") and rng.random() < 0.5
                else ""
            )
            yield [am_number, rpps, finess, name, profession, optam, iban, bic, networks]


def _professional_name(fake: Faker, profession: str) -> str:
    city = fake.city()
    return {
        "pharmacist": f"Pharmacie {fake.last_name()}",
        "optician": f"Optique {fake.last_name()}",
        "audiologist": f"Audition {city}",
        "laboratory": f"Laboratoire de biologie de {city}",
        "hospital": f"Centre hospitalier de {city}",
        "transport": f"Ambulances de {city}",
    }.get(profession, f"{fake.first_name()} {fake.last_name()}")
