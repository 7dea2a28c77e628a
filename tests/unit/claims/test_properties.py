"""Properties of the engine over random plans and invoices: rule 1, and caps never exceeded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.claims.engine import (
    HUNDRED_PERCENT_SANTE,
    Adjudication,
    Beneficiary,
    Context,
    Line,
    add_months,
    adjudicate,
)
from rempart.claims.money import euros
from rempart.registry.plan_format import parse_plan
from rempart.registry.rights import Period

START, END = date(2025, 1, 1), date(2027, 12, 31)
PROFESSION = {"MED": "hospital", "DEPR": "hospital", "HOSP": "hospital", "OPTI": "optician"}
PROFESSION |= {"AUDI": "audiologist", "PHAR": "pharmacist"}

money = st.integers(0, 300_000)
percents = st.integers(0, 400)
rates = st.sampled_from([0, 15, 30, 60, 70, 80, 100])
days = st.dates(START, END)
Guarantee = dict[str, Any]


def run(
    domain: str,
    guarantee: Guarantee,
    lines: Sequence[Line],
    bookings: tuple[tuple[date, int], ...] = (),
    agreed: dict[int, int] | None = None,
) -> Adjudication:
    plan = parse_plan(
        {
            "code": "P",
            "name": "Random",
            "responsible": True,
            "valid_from": START.isoformat(),
            "guarantees": {domain: guarantee},
        }
    )
    beneficiary = Beneficiary(date(1980, 1, 1), (Period("P", START, None),), {domain: bookings})
    context = Context(beneficiary, PROFESSION[domain], lambda _c, _d: plan, prior_agreement=agreed)
    return adjudicate(lines, context)


@st.composite
def guarantees(draw: st.DrawFn, domain: str) -> Guarantee:
    """Any mix of components and caps the plan format allows in ``domain``."""
    guarantee: Guarantee = {}
    for key in ("br_total_pct", "br_extra_pct", "actual_cost_pct"):
        if draw(st.booleans()):
            guarantee[key] = draw(percents)
    if draw(st.booleans()):
        guarantee["amount"] = euros(draw(money))
        guarantee["per"] = draw(st.sampled_from(["act", "item", "equipment", "day"]))
    if domain == "HOSP" and draw(st.booleans()):
        guarantee["daily_fee"] = True
    if len(guarantee) == 0:
        guarantee["br_total_pct"] = draw(percents)
    if domain == "OPTI" and draw(st.booleans()):
        guarantee["frame_cap"] = euros(draw(money))
    if draw(st.booleans()):
        guarantee["cap_incl_amo"] = euros(draw(money))
    if draw(st.booleans()):
        period = draw(st.sampled_from(["calendar_year", "rolling_12_months"]))
        guarantee["ceiling"] = {"amount": euros(draw(money)), "period": period}
    guarantee["exclude_amo_rates"] = draw(st.lists(rates, max_size=2, unique=True))
    return guarantee


@st.composite
def lines(draw: st.DrawFn, domain: str) -> Line:
    billed, br, rate = draw(money), draw(money), draw(rates)
    hundred = domain in {"OPTI", "AUDI", "DEPR"} and draw(st.integers(0, 4)) == 0
    acts = ["C", "PF", "FR"] + (["FJ"] if domain == "HOSP" else [])
    item_types = ["frame", "lens"] if domain == "OPTI" else [None, "left", "right"]
    return Line(
        act_code=draw(st.sampled_from(acts)),
        domain=domain,
        care_date=draw(days),
        quantity=draw(st.integers(1, 5)),
        billed=billed,
        br=br,
        amo_rate=rate,
        amo_paid=draw(st.none() | st.integers(0, billed)),
        optam=draw(st.sampled_from([None, True, False])),
        basket=HUNDRED_PERCENT_SANTE if hundred else None,
        price_limit=draw(money) if hundred else None,
        item_type=draw(st.sampled_from(item_types)),
    )


@st.composite
def invoices(draw: st.DrawFn) -> tuple[str, Guarantee, list[Line], dict[int, int]]:
    domain = draw(st.sampled_from(sorted(PROFESSION)))
    invoice = draw(st.lists(lines(domain), min_size=1, max_size=6))
    agreed = draw(st.dictionaries(st.integers(0, len(invoice) - 1), money, max_size=2))
    return domain, draw(guarantees(domain)), invoice, agreed


@settings(database=None, max_examples=200)
@given(invoices())
def test_the_amc_pays_between_0_and_billed_minus_amo_on_every_line(
    case: tuple[str, Guarantee, list[Line], dict[int, int]],
) -> None:
    domain, guarantee, invoice, agreed = case

    result = run(domain, guarantee, invoice, agreed=agreed)

    for line, line_result in zip(invoice, result.lines, strict=True):
        assert 0 <= line_result.amc_amount <= max(0, line.billed - line.amo)
        if line_result.rejected:
            assert line_result.amc_amount == 0
        else:
            assert line_result.explanation.endswith(f"AMC {euros(line_result.amc_amount)}.")
    assert result.total_amc == sum(r.amc_amount for r in result.lines)


def paid(invoice: Sequence[Line], result: Adjudication) -> list[tuple[Line, int]]:
    """The lines valued under the plan (not rejected, not 100 % Santé) and what they got."""
    return [
        (line, r.amc_amount)
        for line, r in zip(invoice, result.lines, strict=True)
        if not r.rejected and line.basket != HUNDRED_PERCENT_SANTE
    ]


@settings(database=None, max_examples=150)
@given(
    amount=money,
    frame_cap=st.none() | money,
    cap_incl_amo=st.none() | money,
    invoice=st.lists(lines("OPTI"), min_size=1, max_size=6),
)
def test_the_lines_of_an_equipment_never_share_more_than_its_amount_or_cap_incl_amo(
    amount: int, frame_cap: int | None, cap_incl_amo: int | None, invoice: list[Line]
) -> None:
    guarantee: Guarantee = {"amount": euros(amount), "per": "equipment"}
    if frame_cap is not None:
        guarantee["frame_cap"] = euros(frame_cap)
    if cap_incl_amo is not None:
        guarantee["cap_incl_amo"] = euros(cap_incl_amo)

    valued = paid(invoice, run("OPTI", guarantee, invoice))

    assert sum(amc for _, amc in valued) <= amount
    if cap_incl_amo is not None:
        amo = sum(line.amo for line, _ in valued)
        assert sum(amc for _, amc in valued) <= max(0, cap_incl_amo - amo)
    if frame_cap is not None:
        assert all(amc <= frame_cap for line, amc in valued if line.item_type == "frame")


@settings(database=None, max_examples=100)
@given(
    guarantee=guarantees("AUDI").filter(lambda g: g.get("per") != "equipment"),
    cap=money,
    invoice=st.lists(lines("AUDI"), min_size=1, max_size=4),
)
def test_amc_plus_amo_never_exceeds_cap_incl_amo_per_item(
    guarantee: Guarantee, cap: int, invoice: list[Line]
) -> None:
    result = run("AUDI", guarantee | {"cap_incl_amo": euros(cap)}, invoice)

    for line, amc in paid(invoice, result):
        assert amc == 0 or amc + line.amo <= cap


Event = tuple[date, int, bool]  # care date, cents, booked by this invoice


def windows(period: str, events: Sequence[Event]) -> list[list[Event]]:
    """The events of each window holding one: calendar years, or 12 months ending on an event."""
    if period == "calendar_year":
        years = {event[0].year for event in events}
        return [[e for e in events if e[0].year == year] for year in years]
    return [[e for e in events if e[0] <= end[0] < add_months(e[0], 12)] for end in events]


@settings(database=None, max_examples=200)
@given(
    percent=percents,
    ceiling=money,
    period=st.sampled_from(["calendar_year", "rolling_12_months"]),
    booked=st.lists(st.tuples(days, money), max_size=4),
    invoice=st.lists(lines("DEPR"), min_size=1, max_size=6),
)
def test_no_window_of_a_ceiling_is_pushed_past_it(
    percent: int,
    ceiling: int,
    period: str,
    booked: list[tuple[date, int]],
    invoice: list[Line],
) -> None:
    guarantee = {"br_total_pct": percent, "ceiling": {"amount": euros(ceiling), "period": period}}

    result = run("DEPR", guarantee, invoice, tuple(booked))

    new = list(result.bookings.get("DEPR", ()))
    assert sorted(new) == sorted(
        (line.care_date, amc) for line, amc in paid(invoice, result) if amc
    )
    events = [(day, cents, False) for day, cents in booked] + [(d, c, True) for d, c in new]
    for window in windows(period, events):
        before = sum(cents for _, cents, is_new in window if not is_new)
        added = sum(cents for _, cents, is_new in window if is_new)
        assert added == 0 or before + added <= ceiling
