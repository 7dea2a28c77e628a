"""The pure rules of prior agreements: matching invoice lines to agreed ones, validity, use,
references, and which lines an agreement may hold."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rempart.claims.engine import Beneficiary, Context, Line, LineResult, adjudicate
from rempart.claims.prior_agreements import (
    CONSUMED,
    GRANTED,
    REFERENCE_PREFIX,
    AgreedLine,
    Agreement,
    agreed_amounts,
    consumes,
    match_lines,
    only_agreements,
    reference_of,
    valid_until,
)
from rempart.registry.plan_format import Plan
from rempart.registry.rights import Period
from rempart.rights.rules import ENGAGEMENT_PREFIX

DAY = date(2026, 3, 10)
LAST = date(2026, 9, 10)
PRO, OTHER_PRO = uuid.uuid4(), uuid.uuid4()
PATIENT, OTHER_PATIENT = uuid.uuid4(), uuid.uuid4()


def line(item_type: str | None = "lens", domain: str = "OPTI", **changes: Any) -> Line:
    fields: dict[str, Any] = {
        "act_code": "C",
        "domain": domain,
        "care_date": DAY,
        "quantity": 1,
        "billed": 12000,
        "br": 5,
        "amo_rate": 60,
        "amo_paid": 3,
        "item_type": item_type,
    }
    return Line(**(fields | changes))


def agreed(item_type: str | None, amount: int, domain: str = "OPTI") -> AgreedLine:
    return AgreedLine(domain, "C", item_type, amount)


def agreement(status: str = GRANTED, until: date = LAST) -> Agreement:
    lines = (agreed("frame", 10000), agreed("lens", 11997), agreed("lens", 8003))
    return Agreement(uuid.uuid4(), PRO, PATIENT, status, DAY, until, lines)


def test_each_agreed_line_covers_one_billed_line_of_the_same_care_in_order() -> None:
    lines = [line("lens"), line("frame"), line("lens"), line("lens")]
    found = match_lines(lines, agreement().lines, DAY, LAST)
    # The first lens takes the first agreed lens; the third lens was never agreed.
    assert found == {0: 11997, 1: 10000, 2: 8003}


@pytest.mark.parametrize(
    "other",
    [
        line("lens", act_code="D"),
        line("lens", domain="AUDI"),
        line("contact_lens"),
        line(None, domain="AUDI"),
        line("lens", care_date=date(2026, 3, 9)),  # before it was granted
        line("lens", care_date=date(2026, 9, 11)),  # after its last day
    ],
)
def test_another_care_or_a_care_outside_the_validity_is_not_covered(other: Line) -> None:
    assert match_lines([other], agreement().lines, DAY, LAST) == {}


def test_the_first_and_last_days_are_within_the_validity() -> None:
    lines = [line("frame", care_date=DAY), line("lens", care_date=LAST)]
    assert match_lines(lines, agreement().lines, DAY, LAST) == {0: 10000, 1: 11997}


@given(st.lists(st.sampled_from(["frame", "lens", "contact_lens"]), max_size=8))
def test_no_agreed_line_is_used_twice(item_types: list[str]) -> None:
    terms = agreement().lines
    found = match_lines([line(kind) for kind in item_types], terms, DAY, LAST)
    for kind in ("frame", "lens"):
        billed = sum(1 for i in found if item_types[i] == kind)
        assert billed == min(item_types.count(kind), sum(1 for t in terms if t.item_type == kind))


@pytest.mark.parametrize(
    ("terms", "professional", "patient", "today", "usable"),
    [
        (agreement(), PRO, PATIENT, DAY, True),
        (agreement(), PRO, PATIENT, LAST, True),
        (agreement(), PRO, PATIENT, date(2026, 9, 11), False),  # expired
        (agreement(CONSUMED), PRO, PATIENT, DAY, False),
        (agreement("cancelled"), PRO, PATIENT, DAY, False),
        (agreement(), OTHER_PRO, PATIENT, DAY, False),
        (agreement(), PRO, OTHER_PATIENT, DAY, False),
        (agreement(), PRO, None, DAY, False),  # an unknown card
        (None, PRO, PATIENT, DAY, False),  # an unknown reference
    ],
)
def test_only_a_granted_agreement_of_this_professional_and_patient_in_time_caps_lines(
    terms: Agreement | None,
    professional: uuid.UUID,
    patient: uuid.UUID | None,
    today: date,
    usable: bool,
) -> None:
    found = agreed_amounts(terms, professional, patient, [line("frame")], today)
    assert found == ({0: 10000} if usable else None)


def test_an_invoice_uses_the_agreement_when_a_line_it_covers_is_paid() -> None:
    paid = LineResult(9000, 3, (), "")
    refused = LineResult(0, 3, ("RIGHTS_CLOSED",), "")
    partial = LineResult(500, 3, ("CEILING_REACHED",), "")
    assert consumes({0: 1}, [paid, refused])
    assert consumes({1: 1}, [refused, partial])
    assert not consumes({1: 1}, [paid, refused])
    assert not consumes({}, [paid])


def test_valid_six_months_the_last_day_of_a_shorter_month_when_needed() -> None:
    assert valid_until(DAY) == LAST
    assert valid_until(date(2026, 8, 31)) == date(2027, 2, 28)


def test_references_are_macs_bound_to_the_agreement_professional_and_patient() -> None:
    key, ident = b"k" * 32, uuid.uuid4()
    reference = reference_of(key, ident, PRO, PATIENT)
    assert reference.startswith(REFERENCE_PREFIX)
    assert not reference.startswith(ENGAGEMENT_PREFIX)
    assert len(reference) == 26
    assert reference[2:].isalnum()
    assert reference == reference_of(key, ident, PRO, PATIENT)
    others = {
        reference_of(b"K" * 32, ident, PRO, PATIENT),
        reference_of(key, uuid.uuid4(), PRO, PATIENT),
        reference_of(key, ident, OTHER_PRO, PATIENT),
        reference_of(key, ident, PRO, OTHER_PATIENT),
    }
    assert reference not in others
    assert len(others) == 4


PLAN = Plan.model_validate(
    {
        "code": "P",
        "name": "P",
        "responsible": True,
        "valid_from": "2025-01-01",
        "guarantees": {
            "OPTI": {
                "amount": "300.00",
                "per": "equipment",
                "renewal_months": 24,
                "prior_agreement": True,
            },
            "AUDI": {"amount": "1000.00", "per": "item", "renewal_months": 48},
        },
    }
)


def test_lines_of_domains_that_need_no_agreement_are_refused_and_reserve_nothing() -> None:
    periods = (Period("P", date(2025, 1, 1), None),)
    lines = [line("frame"), line("hearing_aid", domain="AUDI", billed=150000, br=40000)]
    context = Context(
        Beneficiary(date(1980, 1, 1), periods),
        "optician",
        lambda code, day: PLAN,
        for_prior_agreement=True,
    )
    valued = adjudicate(lines, context)
    # An optician does not bill AUDI: the engine's own refusal is kept as it is.
    results, renewals = only_agreements(lines, valued, periods, lambda code, day: PLAN)
    assert [r.reject_codes for r in results] == [(), ("INVALID_LINE",)]
    assert renewals == {"OPTI": DAY}
    audiologist = Context(
        Beneficiary(date(1980, 1, 1), periods),
        "audiologist",
        lambda code, day: PLAN,
        for_prior_agreement=True,
    )
    hearing = lines[1:]
    results, renewals = only_agreements(
        hearing, adjudicate(hearing, audiologist), periods, lambda code, day: PLAN
    )
    assert results[0].reject_codes == ("INVALID_LINE",)
    assert "needs no prior agreement" in results[0].explanation
    assert results[0].amc_amount == 0
    assert renewals == {}
