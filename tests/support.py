"""Test data builders shared by the integration tests."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from datetime import date

from rempart.identifiers import make_nir
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
