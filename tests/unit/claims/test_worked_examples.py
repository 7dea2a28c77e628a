"""The six worked examples of DOMAIN.md, to the cent, written out with their raw figures."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import pytest

from rempart.claims.engine import Adjudication, Beneficiary, Context, Line, adjudicate
from rempart.registry.plan_format import Plan, parse_plan
from rempart.registry.rights import Period

DAY = date(2026, 3, 10)
ADULT = Beneficiary(birth_date=date(1980, 5, 17), periods=(Period("P", date(2026, 1, 1), None),))
# The example plan of DOMAIN.md ("Plans"), verbatim.
CONFORT: Mapping[str, object] = {
    "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
    "MED": {"br_total_pct": 200},
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
}


def plan(guarantees: Mapping[str, object]) -> Plan:
    return parse_plan(
        {
            "code": "P",
            "name": "Example",
            "responsible": True,
            "valid_from": "2026-01-01",
            "guarantees": dict(guarantees),
        }
    )


def run(
    profession: str,
    guarantees: Mapping[str, object],
    *lines: Line,
    agreed: Mapping[int, int] | None = None,
) -> Adjudication:
    version = plan(guarantees)
    context = Context(ADULT, profession, lambda _code, _day: version, prior_agreement=agreed)
    return adjudicate(lines, context)


def test_example_1_gp_consultation_under_med_100_pays_9_00() -> None:
    line = Line("G", "MED", DAY, 1, billed=3000, br=3000, amo_rate=70)

    result = run("gp", {"MED": {"br_total_pct": 100}}, line).lines[0]

    assert (result.amo_amount, result.amc_amount, result.reject_codes) == (2100, 900, ())


def test_example_2_optam_specialist_under_med_200_pays_40_95_and_leaves_7_00() -> None:
    line = Line("CS", "MED", DAY, 1, billed=7000, br=3150, amo_rate=70, optam=True)

    result = run("specialist", {"MED": {"br_total_pct": 200}}, line).lines[0]

    assert (result.amo_amount, result.amc_amount) == (2205, 4095)
    assert line.billed - result.amo_amount - result.amc_amount == 700
    assert result.explanation == (
        "MED br_total_pct 200: min(70.00, 200% × 31.50) − 22.05 = 40.95; AMC 40.95."
    )


def test_example_3_drug_at_30_percent_pays_7_00_and_at_an_excluded_15_percent_nothing() -> None:
    guarantees = {"PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]}}
    at_30 = Line("3400930000000", "PHAR", DAY, 1, billed=1000, br=1000, amo_rate=30)
    at_15 = Line("3400930000000", "PHAR", DAY, 1, billed=1000, br=1000, amo_rate=15)

    first, second = run("pharmacist", guarantees, at_30, at_15).lines

    assert (first.amo_amount, first.amc_amount, first.reject_codes) == (300, 700, ())
    assert (second.amc_amount, second.reject_codes) == (0, ("NOT_COVERED",))


def glasses() -> tuple[Line, Line, Line]:
    frame = Line("2223342", "OPTI", DAY, 1, 15000, 5, 60, amo_paid=3, item_type="frame")
    lens = Line("2203240", "OPTI", DAY, 1, 12000, 5, 60, amo_paid=3, item_type="lens")
    return frame, lens, lens


def test_example_4_class_b_glasses_use_the_300_00_in_line_order_patient_pays_89_91() -> None:
    guarantees = {"OPTI": {"amount": "300.00", "per": "equipment", "frame_cap": "100.00"}}
    lines = glasses()

    result = run("optician", guarantees, *lines)

    assert [r.amc_amount for r in result.lines] == [10000, 11997, 8003]
    assert [r.amo_amount for r in result.lines] == [3, 3, 3]
    assert result.total_amc == 30000
    billed = sum(line.billed for line in lines)
    assert billed - sum(r.amo_amount for r in result.lines) - result.total_amc == 8991


def test_example_4_holds_under_the_full_confort_plan_with_its_prior_agreement() -> None:
    result = run("optician", CONFORT, *glasses(), agreed={0: 10000, 1: 11997, 2: 8003})

    assert [r.amc_amount for r in result.lines] == [10000, 11997, 8003]
    assert result.renewals == {"OPTI": DAY}


@pytest.mark.parametrize(
    "guarantees",
    [
        {"AUDI": {"amount": "100.00", "per": "item"}},
        {"AUDI": {"br_total_pct": 100}},
        {"AUDI": {"br_extra_pct": 10, "exclude_amo_rates": [60]}},
        {"AUDI": {"amount": "1460.00", "per": "item", "cap_incl_amo": "500.00"}},
    ],
    ids=["small-amount", "ticket-moderateur-only", "excluded-amo-rate", "low-cap-incl-amo"],
)
def test_example_5_class_i_hearing_aid_pays_710_00_whatever_the_plan(
    guarantees: Mapping[str, object],
) -> None:
    line = Line("2355084", "AUDI", DAY, 1, 95000, 40000, 60, basket="100PS", price_limit=95000)

    result = run("audiologist", guarantees, line).lines[0]

    assert (result.amo_amount, result.amc_amount, result.reject_codes) == (24000, 71000, ())


def test_example_6_dental_filling_under_deso_100_pays_11_72() -> None:
    line = Line("HBMD038", "DESO", DAY, 1, billed=2930, br=2930, amo_rate=60)

    result = run("dentist", {"DESO": {"br_total_pct": 100}}, line).lines[0]

    assert (result.amo_amount, result.amc_amount) == (1758, 1172)
