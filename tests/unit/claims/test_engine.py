"""The adjudication engine: one named row per component, cap, counter, rule and reject code."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rempart.claims.engine import (
    Adjudication,
    Beneficiary,
    Context,
    Line,
    LineResult,
    Reject,
    add_months,
    adjudicate,
    age_on,
    ceiling_left,
    non_optam_percent,
    renewal_key,
    renewal_months,
)
from rempart.claims.money import euros, percent_of, round_cents
from rempart.registry.plan_format import Ceiling, Guarantee, Plan, parse_money, parse_plan
from rempart.registry.rights import Period

DAY = date(2026, 3, 10)
ADULT = date(1980, 5, 17)
CHILD = date(2016, 6, 1)  # 9 on DAY
OPEN = (Period("P", date(2026, 1, 1), None),)
BILLS = {
    "PHAR": "pharmacist",
    "MED": "gp",
    "LABO": "laboratory",
    "RADL": "specialist",
    "AUXM": "nurse",
    "DESO": "dentist",
    "DEPR": "dentist",
    "DEOR": "dentist",
    "OPTI": "optician",
    "AUDI": "audiologist",
    "HOSP": "hospital",
    "TRAN": "transport",
}
Guarantees = Mapping[str, Mapping[str, Any]]


def cents(text: str) -> int:
    return parse_money(text)


def make_plan(
    guarantees: Guarantees, valid_from: str = "2026-01-01", valid_to: str | None = None
) -> Plan:
    return parse_plan(
        {
            "code": "P",
            "name": "Test plan",
            "responsible": True,
            "valid_from": valid_from,
            "valid_to": valid_to,
            "guarantees": {domain: dict(g) for domain, g in guarantees.items()},
        }
    )


def versions(*plans: Plan) -> Callable[[str, date], Plan | None]:
    """The plan_for of the context: the version of the code in force on the day."""

    def plan_for(code: str, day: date) -> Plan | None:
        return next(
            (
                p
                for p in plans
                if p.code == code
                and p.valid_from <= day
                and (p.valid_to is None or day <= p.valid_to)
            ),
            None,
        )

    return plan_for


def person(
    birth: date = ADULT,
    periods: tuple[Period, ...] = OPEN,
    bookings: Mapping[str, tuple[tuple[date, int], ...]] | None = None,
    last_renewal: Mapping[str, date] | None = None,
) -> Beneficiary:
    return Beneficiary(birth, periods, bookings or {}, last_renewal or {})


def line(
    domain: str = "MED",
    billed: str = "30.00",
    br: str | None = None,
    rate: int = 70,
    act: str = "C",
    day: date = DAY,
    quantity: int = 1,
    **fields: Any,
) -> Line:
    """A line in euros for readability; the BR is the billed amount unless given."""
    return Line(
        act_code=act,
        domain=domain,
        care_date=day,
        quantity=quantity,
        billed=cents(billed),
        br=cents(br if br is not None else billed),
        amo_rate=rate,
        **fields,
    )


def run(
    guarantees: Guarantees | Sequence[Plan],
    *lines: Line,
    beneficiary: Beneficiary | None = None,
    profession: str | None = None,
    unknown: bool = False,
    **options: Any,
) -> Adjudication:
    plans = [make_plan(guarantees)] if isinstance(guarantees, Mapping) else list(guarantees)
    context = Context(
        beneficiary=None if unknown else beneficiary or person(),
        profession=profession or BILLS[lines[0].domain],
        plan_for=versions(*plans),
        **options,
    )
    return adjudicate(lines, context)


def one(guarantees: Guarantees | Sequence[Plan], single: Line, **options: Any) -> LineResult:
    return run(guarantees, single, **options).lines[0]


def amounts(result: Adjudication) -> list[int]:
    return [r.amc_amount for r in result.lines]


# --- components (DOMAIN.md "Plans"): each alone, then together ------------------------------------


@pytest.mark.parametrize(
    ("guarantees", "the_line", "expected"),
    [
        pytest.param(
            {"MED": {"br_total_pct": 100}}, line(), "9.00", id="br_total_pct-pays-up-to-P%-of-br"
        ),
        pytest.param(
            {"MED": {"br_total_pct": 200}},
            line(billed="25.00", br="30.00"),
            "4.00",
            id="br_total_pct-stops-at-billed",
        ),
        pytest.param(
            {"MED": {"br_total_pct": 50}}, line(), "0.00", id="br_total_pct-below-the-amo-pays-0"
        ),
        pytest.param(
            {"MED": {"br_extra_pct": 50}},
            line(billed="70.00", br="31.50"),
            "15.75",
            id="br_extra_pct-on-top-of-the-amo",
        ),
        pytest.param(
            {"AUXM": {"amount": "5.00", "per": "act"}},
            line("AUXM", billed="60.00", br="45.00", rate=60, act="AMI", quantity=3),
            "15.00",
            id="amount-per-act-times-quantity",
        ),
        pytest.param(
            {"DEPR": {"amount": "100.00", "per": "item"}},
            line("DEPR", billed="500.00", br="200.00", rate=60, act="HBLD036", quantity=2),
            "100.00",
            id="amount-per-item-once-per-line",
        ),
        pytest.param(
            {"HOSP": {"amount": "20.00", "per": "day"}},
            line("HOSP", billed="1000.00", br="800.00", rate=80, act="GHS", quantity=3),
            "60.00",
            id="amount-per-day-times-days",
        ),
        pytest.param(
            {"OPTI": {"amount": "50.00", "per": "equipment"}},
            line("OPTI", billed="120.00", br="0.05", rate=60, item_type="lens"),
            "50.00",
            id="amount-per-equipment-on-a-single-line",
        ),
        pytest.param(
            {"DEPR": {"actual_cost_pct": 90}},
            line("DEPR", billed="100.00", br="50.00", rate=60, act="HBLD036"),
            "60.00",
            id="actual_cost_pct-of-billed-minus-the-amo",
        ),
        pytest.param(
            {"HOSP": {"br_total_pct": 100, "daily_fee": True}},
            line("HOSP", billed="40.00", br="0.00", rate=0, act="FJ", quantity=2),
            "40.00",
            id="daily_fee-covers-the-forfait-journalier-in-full",
        ),
        pytest.param(
            {"MED": {"br_total_pct": 100, "br_extra_pct": 20}},
            line(billed="50.00", br="30.00"),
            "15.00",
            id="components-add-up",
        ),
        pytest.param(
            {"MED": {"br_extra_pct": 300}}, line(), "9.00", id="rule-1-never-above-billed-minus-amo"
        ),
        pytest.param(
            {"MED": {"br_extra_pct": 50}},
            line(billed="10.00", br="0.05", rate=0),
            "0.03",
            id="rule-6-half-up-to-the-cent",
        ),
        pytest.param(
            {"MED": {"br_extra_pct": 50, "actual_cost_pct": 50}},
            line(billed="0.05", rate=0),
            "0.05",
            id="rule-6-the-line-is-rounded-once-not-each-component",
        ),
        pytest.param(
            {"MED": {"br_total_pct": 33}},
            line(billed="10.01", rate=0),
            "3.30",
            id="rule-6-rounds-down-below-the-half",
        ),
    ],
)
def test_each_component_follows_its_formula(
    guarantees: Guarantees, the_line: Line, expected: str
) -> None:
    result = one(guarantees, the_line)

    assert (result.amc_amount, result.reject_codes) == (cents(expected), ())


def test_the_amo_is_the_br_at_the_amo_rate_rounded_half_up_unless_given() -> None:
    assert line(billed="1.00", br="0.05", rate=70).amo == 4  # 3.5 cents
    assert line(billed="1.00", br="0.05", rate=70, amo_paid=3).amo == 3


# --- rule 2: non-OPTAM doctors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "applied"),
    [(300, 200), (220, 200), (200, 180), (150, 130), (120, 100), (110, 100), (100, 100), (80, 80)],
)
def test_non_optam_percent_is_20_points_less_between_100_and_200(
    percent: int, applied: int
) -> None:
    assert non_optam_percent(percent) == applied


@pytest.mark.parametrize(
    ("domain", "percent", "optam", "expected"),
    [
        pytest.param("MED", 200, False, "33.00", id="non-optam-200-applies-180"),
        pytest.param("MED", 300, False, "39.00", id="non-optam-300-applies-200"),
        pytest.param("MED", 110, False, "9.00", id="non-optam-keeps-the-ticket-moderateur"),
        pytest.param("MED", 200, True, "39.00", id="optam-keeps-200"),
        pytest.param("MED", 200, None, "39.00", id="unknown-optam-is-not-reduced"),
        pytest.param("DEPR", 200, False, "39.00", id="only-med-lines-are-reduced"),
    ],
)
def test_rule_2_reduces_br_total_pct_for_non_optam_doctors(
    domain: str, percent: int, optam: bool | None, expected: str
) -> None:
    the_line = line(domain, billed="100.00", br="30.00", act="CS", optam=optam)

    result = one({domain: {"br_total_pct": percent}}, the_line, profession="hospital")

    assert result.amc_amount == cents(expected)


def test_a_non_optam_line_says_which_percentage_was_applied() -> None:
    result = one({"MED": {"br_total_pct": 200}}, line(billed="100.00", optam=False))

    assert "br_total_pct 200, 180 for a non-OPTAM doctor" in result.explanation


# --- rule 3: 100 % Santé --------------------------------------------------------------------------


def hearing_aid(billed: str = "950.00", limit: str = "950.00", **fields: Any) -> Line:
    return line(
        "AUDI",
        billed=billed,
        br="400.00",
        rate=60,
        act="2355084",
        basket="100PS",
        price_limit=cents(limit),
        **fields,
    )


def test_a_100ps_line_billed_above_its_limit_is_rejected() -> None:
    result = one({"AUDI": {"br_total_pct": 100}}, hearing_aid(billed="950.01"))

    assert (result.amc_amount, result.reject_codes) == (0, ("PRICE_ABOVE_LIMIT",))


def test_a_100ps_line_ignores_ceilings_and_is_not_booked_against_them() -> None:
    ceiling = {"amount": "100.00", "period": "calendar_year"}
    owner = person(bookings={"AUDI": ((DAY, cents("100.00")),)})

    result = run(
        {"AUDI": {"br_total_pct": 100, "ceiling": ceiling}}, hearing_aid(), beneficiary=owner
    )

    assert (amounts(result), result.lines[0].reject_codes) == ([cents("710.00")], ())
    assert result.bookings == {}


def test_a_100ps_frame_leaves_the_equipment_amount_to_the_other_lenses() -> None:
    limit = cents("30.00")
    frame = line("OPTI", "30.00", "9.00", 60, item_type="frame", basket="100PS", price_limit=limit)
    lens = line("OPTI", billed="200.00", br="0.05", amo_paid=3, item_type="lens")

    result = run({"OPTI": {"amount": "300.00", "per": "equipment"}}, frame, lens, lens)

    assert amounts(result) == [cents("24.60"), cents("199.97"), cents("100.03")]


def test_a_100ps_line_is_still_capped_by_its_agreed_amount() -> None:
    result = one({"AUDI": {"br_total_pct": 100}}, hearing_aid(), prior_agreement={0: 50000})

    assert result.amc_amount == 50000


# --- caps -----------------------------------------------------------------------------------------


OPTI_300 = {"OPTI": {"amount": "300.00", "per": "equipment", "frame_cap": "100.00"}}


def frame(billed: str = "150.00") -> Line:
    return line("OPTI", billed=billed, br="0.05", amo_paid=3, act="F", item_type="frame")


def lens(billed: str = "120.00") -> Line:
    return line("OPTI", billed=billed, br="0.05", amo_paid=3, act="L", item_type="lens")


def test_frame_cap_caps_the_frame_and_not_the_lenses() -> None:
    guarantees = {"OPTI": {"amount": "900.00", "per": "equipment", "frame_cap": "100.00"}}

    result = run(guarantees, frame(), lens("300.00"))

    assert amounts(result) == [cents("100.00"), cents("299.97")]
    assert "frame_cap 100.00" in result.lines[0].explanation


def test_the_equipment_amount_is_used_up_in_line_order() -> None:
    result = run(OPTI_300, lens(), lens(), frame())

    assert amounts(result) == [cents("119.97"), cents("119.97"), cents("60.06")]


def test_the_equipment_amount_tops_up_the_other_components() -> None:
    guarantees = {"OPTI": {"actual_cost_pct": 10, "amount": "100.00", "per": "equipment"}}

    result = run(guarantees, lens("200.00"), lens("200.00"))

    assert amounts(result) == [cents("119.97"), cents("19.97")]


def test_cap_incl_amo_per_item_caps_amc_plus_amo_on_each_line() -> None:
    guarantees = {"AUDI": {"amount": "1460.00", "per": "item", "cap_incl_amo": "1700.00"}}
    aid = line("AUDI", billed="2000.00", br="500.00", rate=60, act="2335791", item_type="aid")

    result = run(guarantees, aid, aid)

    assert amounts(result) == [cents("1400.00"), cents("1400.00")]
    assert "cap_incl_amo 1700.00 − AMO 300.00 = 1400.00" in result.lines[0].explanation


def test_cap_incl_amo_per_equipment_is_shared_after_setting_the_amo_aside() -> None:
    guarantees = {"OPTI": {"amount": "300.00", "per": "equipment", "cap_incl_amo": "250.00"}}

    result = run(guarantees, frame("100.00"), lens(), lens())

    assert amounts(result) == [cents("99.97"), cents("119.97"), cents("29.97")]
    assert result.total_amc + 9 == cents("250.00")


def test_an_agreed_amount_caps_the_line_and_frees_the_equipment_for_the_next() -> None:
    result = run(OPTI_300, frame(), lens(), lens(), prior_agreement={0: cents("50.00")})

    assert amounts(result) == [cents("50.00"), cents("119.97"), cents("119.97")]


def test_an_agreed_amount_never_raises_the_line() -> None:
    result = one({"MED": {"br_total_pct": 100}}, line(), prior_agreement={0: cents("50.00")})

    assert result.amc_amount == cents("9.00")


def test_a_negative_agreed_amount_is_a_bug_of_the_caller() -> None:
    with pytest.raises(ValueError, match="never negative"):
        one({"MED": {"br_total_pct": 100}}, line(), prior_agreement={0: -1})


# --- ceilings -------------------------------------------------------------------------------------


def dental_ceiling(period: str = "calendar_year", amount: str = "1500.00") -> Guarantees:
    return {"DEPR": {"br_total_pct": 300, "ceiling": {"amount": amount, "period": period}}}


def crown(day: date = DAY) -> Line:
    """A crown worth 200.00 under DEPR 300: min(272.00, 300% × 120.00) − 72.00."""
    return line("DEPR", billed="272.00", br="120.00", rate=60, act="HBLD036", day=day)


def booked(*events: tuple[str, str]) -> Beneficiary:
    return person(bookings={"DEPR": tuple((date.fromisoformat(d), cents(a)) for d, a in events)})


@pytest.mark.parametrize(
    ("period", "events", "expected", "codes"),
    [
        pytest.param("calendar_year", [], "200.00", (), id="room-left-pays-in-full"),
        pytest.param(
            "calendar_year",
            [("2026-01-05", "1400.00")],
            "100.00",
            ("CEILING_REACHED",),
            id="partial-acceptance-keeps-what-is-left",
        ),
        pytest.param(
            "calendar_year",
            [("2026-01-05", "1500.00")],
            "0.00",
            ("CEILING_REACHED",),
            id="ceiling-used-up-pays-0",
        ),
        pytest.param(
            "calendar_year",
            [("2025-12-31", "1500.00")],
            "200.00",
            (),
            id="calendar-year-forgets-last-year",
        ),
        pytest.param(
            "calendar_year",
            [("2026-12-31", "1400.00")],
            "100.00",
            ("CEILING_REACHED",),
            id="calendar-year-counts-the-whole-year",
        ),
        pytest.param(
            "rolling_12_months",
            [("2025-12-31", "1400.00")],
            "100.00",
            ("CEILING_REACHED",),
            id="rolling-counts-last-december",
        ),
        pytest.param(
            "rolling_12_months",
            [("2025-03-11", "1400.00")],
            "100.00",
            ("CEILING_REACHED",),
            id="rolling-counts-12-months-less-a-day",
        ),
        pytest.param(
            "rolling_12_months",
            [("2025-03-10", "1500.00")],
            "200.00",
            (),
            id="rolling-forgets-12-months-ago",
        ),
        pytest.param(
            "rolling_12_months",
            [("2026-09-01", "1400.00")],
            "100.00",
            ("CEILING_REACHED",),
            id="rolling-late-invoice-fits-the-windows-of-later-bookings",
        ),
        pytest.param(
            "rolling_12_months",
            [("2025-06-01", "800.00"), ("2026-06-01", "800.00")],
            "200.00",
            (),
            id="rolling-windows-are-checked-apart",
        ),
    ],
)
def test_ceilings_accept_what_is_left_in_their_window(
    period: str, events: list[tuple[str, str]], expected: str, codes: tuple[str, ...]
) -> None:
    result = one(dental_ceiling(period), crown(), beneficiary=booked(*events))

    assert (result.amc_amount, result.reject_codes) == (cents(expected), codes)


def test_a_ceiling_is_shared_by_the_lines_of_an_invoice_in_line_order() -> None:
    result = run(dental_ceiling(amount="500.00"), crown(), crown(), crown())

    assert amounts(result) == [cents("200.00"), cents("200.00"), cents("100.00")]
    assert [r.reject_codes for r in result.lines] == [(), (), ("CEILING_REACHED",)]
    assert not result.lines[2].rejected
    assert result.bookings == {"DEPR": ((DAY, 20000), (DAY, 20000), (DAY, 10000))}


@pytest.mark.parametrize(
    ("period", "day", "events", "left"),
    [
        ("calendar_year", "2026-03-10", [("2026-01-01", 100), ("2025-12-31", 900)], 900),
        ("rolling_12_months", "2026-03-10", [("2025-03-11", 100), ("2025-03-10", 900)], 900),
        ("rolling_12_months", "2026-03-10", [("2027-03-09", 300), ("2027-03-10", 900)], 700),
        ("rolling_12_months", "2024-02-29", [("2025-02-27", 300), ("2025-02-28", 900)], 700),
        ("rolling_12_months", "2026-03-10", [("2026-01-01", 2000)], 0),
    ],
    ids=[
        "calendar-year",
        "rolling-past",
        "rolling-future",
        "rolling-from-february-29",
        "never-below-0",
    ],
)
def test_ceiling_left(period: str, day: str, events: list[tuple[str, int]], left: int) -> None:
    ceiling = Ceiling.model_validate({"amount": "10.00", "period": period})
    history = [(date.fromisoformat(d), amount) for d, amount in events]

    assert ceiling_left(ceiling, date.fromisoformat(day), history) == left


# --- renewal --------------------------------------------------------------------------------------


RENEWED = {
    "OPTI": {
        "amount": "300.00",
        "per": "equipment",
        "renewal_months": 24,
        "renewal_months_under_16": 12,
    }
}


@pytest.mark.parametrize(
    ("birth", "last", "day", "accepted"),
    [
        pytest.param(ADULT, "2024-03-11", "2026-03-10", False, id="adult-24-months-less-a-day"),
        pytest.param(ADULT, "2024-03-10", "2026-03-10", True, id="adult-24-months"),
        pytest.param(CHILD, "2025-03-11", "2026-03-10", False, id="under-16-12-months-less-a-day"),
        pytest.param(CHILD, "2025-03-10", "2026-03-10", True, id="under-16-12-months"),
        pytest.param(
            date(2010, 3, 10), "2025-03-10", "2026-03-10", False, id="16-on-the-care-date-is-adult"
        ),
        pytest.param(
            date(2010, 3, 11), "2025-03-10", "2026-03-10", True, id="16-the-next-day-is-under-16"
        ),
        pytest.param(
            ADULT, "2026-06-01", "2026-03-10", False, id="late-invoice-for-an-older-fitting"
        ),
        pytest.param(ADULT, "2026-03-10", "2026-03-10", False, id="second-invoice-same-day"),
    ],
)
def test_renewal_counts_from_the_last_accepted_one_by_age_on_the_care_date(
    birth: date, last: str, day: str, accepted: bool
) -> None:
    owner = person(birth, last_renewal={"OPTI": date.fromisoformat(last)})

    result = one(RENEWED, replace(lens(), care_date=date.fromisoformat(day)), beneficiary=owner)

    assert result.reject_codes == (() if accepted else ("RENEWAL_TOO_SOON",))


@pytest.mark.parametrize(
    ("birth", "months"), [(ADULT, 24), (date(2010, 3, 10), 24), (date(2010, 3, 11), 12)]
)
def test_renewal_months_go_by_age_on_the_care_date(birth: date, months: int) -> None:
    guarantee = Guarantee.model_validate(RENEWED["OPTI"])

    assert renewal_months(guarantee, birth, DAY) == months
    assert renewal_months(Guarantee.model_validate({"br_total_pct": 100}), birth, DAY) is None


def test_under_16_without_its_own_period_uses_renewal_months() -> None:
    guarantees = {"OPTI": {"amount": "300.00", "per": "equipment", "renewal_months": 24}}
    owner = person(CHILD, last_renewal={"OPTI": date(2025, 1, 1)})

    assert one(guarantees, lens(), beneficiary=owner).reject_codes == ("RENEWAL_TOO_SOON",)


def test_a_frame_and_its_lenses_are_one_equipment_recorded_once() -> None:
    owner = person(last_renewal={"OPTI": date(2023, 1, 1)})

    result = run(RENEWED, frame(), lens(), lens(), beneficiary=owner)

    assert [r.reject_codes for r in result.lines] == [(), (), ()]
    assert result.renewals == {"OPTI": DAY}


def test_a_second_equipment_on_another_day_of_the_same_invoice_is_too_soon() -> None:
    later = replace(lens(), care_date=date(2026, 9, 1))

    result = run(RENEWED, lens(), later)

    assert [r.reject_codes for r in result.lines] == [(), ("RENEWAL_TOO_SOON",)]


HEARING = {"AUDI": {"amount": "1000.00", "per": "item", "renewal_months": 48}}


def aid(item_type: str | None = "hearing_aid") -> Line:
    return line("AUDI", billed="1500.00", br="400.00", rate=60, act="A", item_type=item_type)


def test_two_hearing_aids_on_one_invoice_are_one_fitting() -> None:
    result = run(HEARING, aid(), aid())

    assert amounts(result) == [cents("1000.00"), cents("1000.00")]
    assert result.renewals == {"AUDI:hearing_aid": DAY}


def test_items_of_different_types_renew_apart() -> None:
    owner = person(last_renewal={"AUDI:hearing_aid_left": date(2025, 1, 1)})

    result = run(HEARING, aid("hearing_aid_left"), aid("hearing_aid_right"), beneficiary=owner)

    assert [r.reject_codes for r in result.lines] == [("RENEWAL_TOO_SOON",), ()]
    assert result.renewals == {"AUDI:hearing_aid_right": DAY}


@pytest.mark.parametrize(
    ("guarantee", "item_type", "key"),
    [
        ({"amount": "1.00", "per": "item"}, "hearing_aid_left", "AUDI:hearing_aid_left"),
        ({"amount": "1.00", "per": "item"}, None, "AUDI"),
        ({"amount": "1.00", "per": "equipment"}, "frame", "AUDI"),
        ({"br_total_pct": 100}, "frame", "AUDI"),
    ],
    ids=["per-item-with-type", "per-item-without-type", "per-equipment", "no-amount"],
)
def test_renewal_key(guarantee: dict[str, Any], item_type: str | None, key: str) -> None:
    assert renewal_key("AUDI", Guarantee.model_validate(guarantee), item_type) == key


def test_a_line_under_a_prior_agreement_was_checked_when_it_was_granted() -> None:
    owner = person(last_renewal={"OPTI": DAY})

    result = one(RENEWED, lens(), beneficiary=owner, prior_agreement={0: 30000})

    assert result.reject_codes == ()


def test_a_rejected_line_renews_nothing() -> None:
    result = run({"OPTI": {**RENEWED["OPTI"], "prior_agreement": True}}, lens())

    assert (result.lines[0].reject_codes, result.renewals) == (("PRIOR_AGREEMENT_REQUIRED",), {})


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        ("2026-01-31", 1, "2026-02-28"),
        ("2024-02-29", 12, "2025-02-28"),
        ("2026-03-10", 24, "2028-03-10"),
        ("2026-11-30", 3, "2027-02-28"),
        ("2026-03-10", -12, "2025-03-10"),
    ],
)
def test_add_months_keeps_the_day_or_the_end_of_the_month(
    day: str, months: int, expected: str
) -> None:
    assert add_months(date.fromisoformat(day), months) == date.fromisoformat(expected)


def test_age_on_counts_whole_years() -> None:
    assert [age_on(date(2010, 3, 10), date(2026, 3, d)) for d in (9, 10)] == [15, 16]
    assert age_on(date(2008, 2, 29), date(2026, 2, 28)) == 17


# --- reject codes ---------------------------------------------------------------------------------


def test_the_reject_codes_are_those_of_domain_md() -> None:
    assert {code.value for code in Reject} == {
        "UNKNOWN_BENEFICIARY",
        "RIGHTS_CLOSED",
        "DOMAIN_NOT_COVERED",
        "NOT_COVERED",
        "PRIOR_AGREEMENT_REQUIRED",
        "PRIOR_AGREEMENT_INVALID",
        "CEILING_REACHED",
        "RENEWAL_TOO_SOON",
        "DUPLICATE",
        "PRICE_ABOVE_LIMIT",
        "PROFESSIONAL_NOT_CONTRACTED",
        "ENGAGEMENT_INVALID",
        "INVALID_LINE",
    }


COVER: Guarantees = {
    "MED": {"br_total_pct": 100},
    "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
    "OPTI": {"amount": "300.00", "per": "equipment", "prior_agreement": True},
    "HOSP": {"br_total_pct": 100},
    "DEPR": {"br_total_pct": 100, "ceiling": {"amount": "10.00", "period": "calendar_year"}},
}
ENDED = (Period("P", date(2025, 1, 1), date(2026, 2, 28)),)


@pytest.mark.parametrize(
    ("run_line", "code"),
    [
        pytest.param(lambda: one(COVER, line(), unknown=True), "UNKNOWN_BENEFICIARY", id="unknown"),
        pytest.param(
            lambda: one(COVER, line(), engagement_invalid=True),
            "ENGAGEMENT_INVALID",
            id="engagement-invalid",
        ),
        pytest.param(
            lambda: one(COVER, line(), beneficiary=person(periods=ENDED)),
            "RIGHTS_CLOSED",
            id="rights-ended",
        ),
        pytest.param(
            lambda: one(COVER, line(), beneficiary=person(periods=())),
            "RIGHTS_CLOSED",
            id="no-rights-at-all",
        ),
        pytest.param(
            lambda: one(
                COVER,
                line(),
                beneficiary=person(periods=(replace(OPEN[0], suspended_domains=("MED",)),)),
            ),
            "RIGHTS_CLOSED",
            id="domain-suspended",
        ),
        pytest.param(
            lambda: one(COVER, line("DESO", act="HBMD038")),
            "DOMAIN_NOT_COVERED",
            id="domain-absent-from-the-plan",
        ),
        pytest.param(lambda: one([], line()), "DOMAIN_NOT_COVERED", id="no-plan-version-in-force"),
        pytest.param(
            lambda: one(COVER, line(act="PF")), "NOT_COVERED", id="participation-forfaitaire"
        ),
        pytest.param(lambda: one(COVER, line("PHAR", act="FR")), "NOT_COVERED", id="franchise"),
        pytest.param(
            lambda: one(COVER, line("PHAR", act="3400930000000", rate=15)),
            "NOT_COVERED",
            id="excluded-amo-rate",
        ),
        pytest.param(
            lambda: one(COVER, line("HOSP", act="FJ", rate=0)),
            "NOT_COVERED",
            id="forfait-journalier-without-daily-fee",
        ),
        pytest.param(
            lambda: one({"HOSP": {"daily_fee": True}}, line("HOSP", act="GHS")),
            "NOT_COVERED",
            id="only-daily-fee-for-another-act",
        ),
        pytest.param(
            lambda: one(COVER, lens()), "PRIOR_AGREEMENT_REQUIRED", id="prior-agreement-required"
        ),
        pytest.param(
            lambda: one(COVER, lens(), prior_agreement_invalid=True),
            "PRIOR_AGREEMENT_INVALID",
            id="prior-agreement-invalid",
        ),
        pytest.param(
            lambda: one(
                RENEWED, lens(), beneficiary=person(last_renewal={"OPTI": date(2025, 3, 10)})
            ),
            "RENEWAL_TOO_SOON",
            id="renewal-too-soon",
        ),
        pytest.param(
            lambda: one({"AUDI": {"br_total_pct": 100}}, hearing_aid(billed="951.00")),
            "PRICE_ABOVE_LIMIT",
            id="price-above-limit",
        ),
        pytest.param(lambda: one(COVER, line(quantity=0)), "INVALID_LINE", id="invalid-line"),
    ],
)
def test_each_reject_code_refuses_the_line_with_0(
    run_line: Callable[[], LineResult], code: str
) -> None:
    result = run_line()

    assert (result.amc_amount, result.reject_codes, result.rejected) == (0, (code,), True)
    assert result.explanation.startswith(f"{code}: ")


def test_ceiling_reached_is_the_one_code_that_keeps_an_amount() -> None:
    result = one(COVER, line("DEPR", act="HBLD036", billed="50.00", rate=60))

    assert (result.amc_amount, result.reject_codes, result.rejected) == (
        1000,
        ("CEILING_REACHED",),
        False,
    )


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(line(quantity=0), id="quantity-0"),
        pytest.param(line(quantity=10_000), id="quantity-too-large"),
        pytest.param(replace(line(), billed=-1), id="negative-billed"),
        pytest.param(replace(line(), br=-1), id="negative-br"),
        pytest.param(line(amo_paid=-1), id="negative-amo-paid"),
        pytest.param(replace(line(), billed=10**12), id="money-above-the-maximum"),
        pytest.param(line(amo_paid=3001), id="amo-paid-above-billed"),
        pytest.param(line(billed="10.00", br="30.00"), id="computed-amo-above-billed"),
        pytest.param(line(rate=101), id="amo-rate-above-100"),
        pytest.param(line(rate=-1), id="negative-amo-rate"),
        pytest.param(line("DENT"), id="unknown-domain"),
        pytest.param(line(act=""), id="empty-act-code"),
        pytest.param(line(act="pf"), id="lower-case-act-code"),
        pytest.param(line(act="C 1"), id="act-code-with-a-space"),
        pytest.param(line("MED", act="FJ"), id="forfait-journalier-outside-hosp"),
        pytest.param(line("OPTI"), id="optics-line-without-item-type"),
        pytest.param(line("OPTI", item_type="Frame"), id="item-type-not-lower-case"),
        pytest.param(line(basket="100ps"), id="basket-not-upper-case"),
        pytest.param(line(basket="100PS", price_limit=3000), id="100ps-outside-its-domains"),
        pytest.param(line("AUDI", basket="100PS"), id="100ps-without-price-limit"),
        pytest.param(line(price_limit=-1), id="negative-price-limit"),
    ],
)
def test_structurally_wrong_lines_are_invalid(bad: Line) -> None:
    result = one(COVER, bad, profession="hospital")

    assert (result.amc_amount, result.reject_codes) == (0, ("INVALID_LINE",))


def test_a_professional_bills_only_the_domains_of_its_profession() -> None:
    result = run(COVER, line("MED"), line("HOSP", act="GHS"), profession="pharmacist")

    assert [r.reject_codes for r in result.lines] == [("INVALID_LINE",), ("INVALID_LINE",)]
    assert "a pharmacist does not bill MED" in result.lines[0].explanation
    assert run(COVER, line("MED"), line("HOSP", act="GHS"), profession="hospital").total_amc == 1800


def test_an_unknown_profession_is_a_bug_of_the_caller() -> None:
    with pytest.raises(ValueError, match="unknown profession"):
        run(COVER, line(), profession="wizard")


def test_the_first_failing_check_gives_the_one_code() -> None:
    result = one(COVER, line(act="PF"), beneficiary=person(periods=ENDED))

    assert result.reject_codes == ("RIGHTS_CLOSED",)


def test_a_rejected_line_consumes_no_equipment_amount() -> None:
    guarantees = {"OPTI": {**OPTI_300["OPTI"], "exclude_amo_rates": [15]}}
    excluded = replace(lens("250.00"), amo_rate=15)

    result = run(guarantees, excluded, lens("400.00"))

    assert amounts(result) == [0, cents("300.00")]


# --- engagement and prior agreement ---------------------------------------------------------------


def test_closed_rights_are_still_paid_under_an_engagement() -> None:
    result = one(COVER, line(), beneficiary=person(periods=ENDED), engagement_valid=True)

    assert (result.amc_amount, result.reject_codes) == (900, ())


def test_a_suspended_domain_is_still_paid_under_an_engagement() -> None:
    suspended = (replace(OPEN[0], suspended_domains=("MED",)),)

    result = one(COVER, line(), beneficiary=person(periods=suspended), engagement_valid=True)

    assert result.amc_amount == 900


def test_an_engagement_cannot_pay_a_line_from_before_any_rights() -> None:
    later = (Period("P", date(2026, 6, 1), None),)

    result = one(COVER, line(), beneficiary=person(periods=later), engagement_valid=True)

    assert result.reject_codes == ("RIGHTS_CLOSED",)


def test_valuing_a_prior_agreement_quote_requires_no_agreement() -> None:
    result = one(COVER, lens(), for_prior_agreement=True)

    assert (result.amc_amount, result.reject_codes) == (cents("119.97"), ())


def test_a_granted_prior_agreement_lets_the_line_through() -> None:
    result = one(COVER, lens(), prior_agreement={0: cents("119.97")})

    assert (result.amc_amount, result.reject_codes) == (cents("119.97"), ())


# --- plan versions --------------------------------------------------------------------------------


def test_each_line_is_valued_under_the_version_in_force_on_its_care_date() -> None:
    before = make_plan({"MED": {"br_total_pct": 100}}, valid_to="2026-06-30")
    after = make_plan({"MED": {"br_total_pct": 200}}, valid_from="2026-07-01")
    june, july = date(2026, 6, 30), date(2026, 7, 1)

    lines = [line(billed="70.00", br="30.00", day=day) for day in (june, july)]

    result = run([before, after], *lines)

    assert amounts(result) == [cents("9.00"), cents("39.00")]


def test_a_version_not_in_force_given_by_plan_for_is_a_bug_of_the_caller() -> None:
    stale = make_plan({"MED": {"br_total_pct": 100}}, valid_to="2026-01-31")
    context = Context(person(), "gp", lambda _code, _day: stale)

    with pytest.raises(ValueError, match="not in force"):
        adjudicate([line()], context)


# --- the adjudication as a whole ------------------------------------------------------------------


def test_the_adjudication_totals_and_books_only_what_is_paid() -> None:
    result = run(COVER, line(), line(act="PF", billed="2.00"), line(billed="50.00", br="30.00"))

    assert amounts(result) == [900, 0, 900]
    assert result.total_amc == 1800
    assert result.bookings == {"MED": ((DAY, 900), (DAY, 900))}
    assert [r.amo_amount for r in result.lines] == [2100, 140, 2100]


def test_identical_lines_of_one_invoice_are_not_duplicates() -> None:
    result = run(COVER, line(), line())

    assert amounts(result) == [900, 900]


def test_an_empty_invoice_pays_nothing() -> None:
    context = Context(person(), "gp", versions(make_plan(COVER)))

    assert adjudicate([], context) == Adjudication((), 0, {}, {})


def test_money_helpers_round_half_up_and_print_euros() -> None:
    assert [round_cents(percent_of(50, c)) for c in (1, 3, 5)] == [1, 2, 3]
    assert (euros(4095), euros(percent_of(33, 1001))) == ("40.95", "3.30")


def test_the_engine_imports_only_the_standard_library_and_pure_rules_and_reads_no_clock() -> None:
    allowed = {"rempart.claims.money", "rempart.registry.plan_format", "rempart.registry.rights"}
    clock = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
    for name in ("engine", "money"):
        source = Path(__file__).parents[3] / "src" / "rempart" / "claims" / f"{name}.py"
        nodes = list(ast.walk(ast.parse(source.read_text())))
        imported = {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)}
        called = {
            n.func.attr
            for n in nodes
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
        }
        foreign = {m for m in imported if m.split(".")[0] not in sys.stdlib_module_names}
        assert foreign <= allowed, name
        assert called.isdisjoint(clock), name
