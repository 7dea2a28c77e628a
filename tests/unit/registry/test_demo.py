"""The demo data: deterministic per seed, and every file goes through the real readers cleanly."""

from __future__ import annotations

import collections
import io
from functools import cache

import pytest

from rempart.registry.csv_rows import RowError
from rempart.registry.demo import TENANTS, DemoFiles, demo_files
from rempart.registry.member_file import MemberRow, read_member_file
from rempart.registry.plan_format import PROFESSIONS, parse_plan
from rempart.registry.professional_file import ProfessionalRow, read_professional_file

AMC_NUMBERS = [amc for amc, _ in TENANTS]


@cache
def files(members: int = 50, seed: int = 7) -> DemoFiles:
    return demo_files(members=members, seed=seed)


@cache
def member_rows(members: int, seed: int, amc: str) -> list[MemberRow | RowError]:
    return list(read_member_file(io.BytesIO(files(members, seed).members[amc])))


@cache
def professional_rows(members: int = 50, seed: int = 7) -> list[ProfessionalRow | RowError]:
    return list(read_professional_file(io.BytesIO(files(members, seed).professionals)))


def _errors(rows: list[MemberRow | RowError] | list[ProfessionalRow | RowError]) -> list[str]:
    return [f"line {r.line} {r.column}: {r.reason}" for r in rows if isinstance(r, RowError)]


def test_demo_files_are_deterministic_for_a_seed() -> None:
    first = demo_files(members=50, seed=7)
    second = demo_files(members=50, seed=7)

    assert first.members == second.members
    assert first.professionals == second.professionals
    assert first.plans == second.plans


def test_another_seed_gives_other_data() -> None:
    ours, theirs = demo_files(members=50, seed=7), demo_files(members=50, seed=8)

    for amc in AMC_NUMBERS:
        assert ours.members[amc] != theirs.members[amc]
    assert ours.professionals != theirs.professionals


def test_there_is_one_member_file_per_tenant() -> None:
    assert sorted(files().members) == sorted(AMC_NUMBERS)


@pytest.mark.parametrize(("members", "expected"), [(50, [25, 25]), (51, [26, 25]), (1, [1, 0])])
def test_members_are_shared_between_the_tenants(members: int, expected: list[int]) -> None:
    counts = []
    for amc in AMC_NUMBERS:
        rows = member_rows(members, 7, amc)
        counts.append(len({r.member_number for r in rows if isinstance(r, MemberRow)}))

    assert counts == expected


@pytest.mark.parametrize(("members", "seed"), [(50, 7), (2306, 12)])
@pytest.mark.parametrize("amc", AMC_NUMBERS)
def test_every_member_row_parses_without_error(members: int, seed: int, amc: str) -> None:
    rows = member_rows(members, seed, amc)

    assert _errors(rows) == []
    assert len(rows) == files(members, seed).members[amc].count(b"\n") - 1
    insured = [r for r in rows if isinstance(r, MemberRow) and r.relationship == "insured"]
    assert len(insured) == members // 2
    assert all(r.nir is not None for r in insured)


def test_every_professional_row_parses_without_error() -> None:
    rows = professional_rows()

    assert _errors(rows) == []
    assert len(rows) == files().professionals.count(b"\n") - 1


# (members, seed): the default demo, and a larger one (seed 12) where the first tenant's member
# 1000001153 draws the same birth date for the insured and the spouse, both written with rank 1.
@pytest.mark.parametrize(("members", "seed"), [(50, 7), (2306, 12)])
@pytest.mark.parametrize("amc", AMC_NUMBERS)
def test_no_two_beneficiaries_share_a_rights_check_key(members: int, seed: int, amc: str) -> None:
    rows = [r for r in member_rows(members, seed, amc) if isinstance(r, MemberRow)]

    keys = collections.Counter((r.member_number, r.birth_date, r.birth_rank) for r in rows)

    assert rows
    assert [key for key, count in keys.items() if count > 1] == []


def test_there_is_a_professional_of_every_profession() -> None:
    rows = [r for r in professional_rows() if isinstance(r, ProfessionalRow)]

    assert {r.profession for r in rows} == PROFESSIONS


def test_professionals_have_distinct_billing_numbers() -> None:
    rows = [r for r in professional_rows() if isinstance(r, ProfessionalRow)]

    assert len({r.am_number for r in rows}) == len(rows)


def test_every_demo_plan_parses() -> None:
    plans = [parse_plan(raw) for raw in files().plans]

    assert sorted(plan.code for plan in plans) == ["CONFORT", "ESSENTIEL"]


@pytest.mark.parametrize("amc", AMC_NUMBERS)
def test_members_only_reference_the_demo_plans(amc: str) -> None:
    codes = {parse_plan(raw).code for raw in files().plans}

    used = {r.plan_code for r in member_rows(50, 7, amc) if isinstance(r, MemberRow)}

    assert used
    assert used <= codes
