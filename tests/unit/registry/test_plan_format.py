"""The plan file format: the DOMAIN.md example, round trips, and every refusal located."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from rempart.errors import InvalidDocument, Problem
from rempart.registry.plan_format import (
    DOMAINS,
    MAX_MONEY_CENTS,
    PROFESSION_DOMAINS,
    PROFESSIONS,
    Guarantee,
    Plan,
    format_money,
    parse_money,
    parse_plan,
    plan_to_json,
)

# The example of DOMAIN.md, verbatim.
EXAMPLE = """{
  "code": "CONFORT", "name": "Confort 2025", "responsible": true,
  "valid_from": "2025-01-01", "valid_to": null,
  "guarantees": {
    "PHAR": {"br_total_pct": 100, "exclude_amo_rates": [15]},
    "MED":  {"br_total_pct": 200},
    "DESO": {"br_total_pct": 100},
    "DEPR": {"br_total_pct": 300, "ceiling": {"amount": "1500.00", "period": "calendar_year"}},
    "OPTI": {"amount": "300.00", "per": "equipment", "frame_cap": "100.00",
             "renewal_months": 24, "renewal_months_under_16": 12, "prior_agreement": true},
    "AUDI": {"amount": "1460.00", "per": "item", "cap_incl_amo": "1700.00",
             "renewal_months": 48, "prior_agreement": true},
    "HOSP": {"br_total_pct": 100, "daily_fee": true}
  }
}"""

Doc = dict[str, Any]


def example() -> Doc:
    loaded: Doc = json.loads(EXAMPLE)
    return loaded


def problems_of(raw: bytes | str | Doc) -> list[Problem]:
    with pytest.raises(InvalidDocument) as caught:
        parse_plan(raw)
    return caught.value.problems


def test_the_domain_example_parses_to_the_expected_values() -> None:
    plan = parse_plan(EXAMPLE)

    assert (plan.code, plan.name, plan.responsible) == ("CONFORT", "Confort 2025", True)
    assert (plan.valid_from, plan.valid_to) == (date(2025, 1, 1), None)
    assert list(plan.guarantees) == ["PHAR", "MED", "DESO", "DEPR", "OPTI", "AUDI", "HOSP"]
    phar, depr = plan.guarantees["PHAR"], plan.guarantees["DEPR"]
    assert (phar.br_total_pct, phar.exclude_amo_rates) == (100, (15,))
    assert depr.br_total_pct == 300
    assert depr.ceiling is not None
    assert (depr.ceiling.amount_cents, depr.ceiling.period) == (150000, "calendar_year")
    opti = plan.guarantees["OPTI"]
    assert (opti.amount_cents, opti.per, opti.frame_cap) == (30000, "equipment", 10000)
    assert (opti.renewal_months, opti.renewal_months_under_16, opti.prior_agreement) == (
        24,
        12,
        True,
    )
    audi = plan.guarantees["AUDI"]
    assert (audi.amount_cents, audi.per, audi.cap_incl_amo) == (146000, "item", 170000)
    assert (audi.renewal_months, audi.renewal_months_under_16) == (48, None)
    hosp = plan.guarantees["HOSP"]
    assert (hosp.br_total_pct, hosp.daily_fee, hosp.prior_agreement) == (100, True, False)


@pytest.mark.parametrize(
    "raw",
    [EXAMPLE, EXAMPLE.encode(), example()],
    ids=["str", "bytes", "mapping"],
)
def test_text_bytes_and_decoded_json_give_the_same_plan(raw: bytes | str | Doc) -> None:
    assert parse_plan(raw) == parse_plan(EXAMPLE)


def test_plan_to_json_gives_back_the_domain_example_exactly() -> None:
    assert plan_to_json(parse_plan(EXAMPLE)) == example()


def test_a_plan_survives_a_round_trip_through_its_file_format() -> None:
    doc = example()
    doc["valid_to"] = "2025-12-31"
    doc["guarantees"]["MED"] = {"br_extra_pct": 50, "actual_cost_pct": 10, "prior_agreement": False}
    doc["guarantees"]["TRAN"] = {
        "amount": "0.05",
        "per": "day",
        "ceiling": {"amount": "12.5", "period": "rolling_12_months"},
    }
    plan = parse_plan(doc)

    assert parse_plan(plan_to_json(plan)) == plan
    assert parse_plan(json.dumps(plan_to_json(plan))) == plan
    assert plan_to_json(plan)["guarantees"] == {
        **example()["guarantees"],
        "MED": {"br_extra_pct": 50, "actual_cost_pct": 10},
        "TRAN": {
            "amount": "0.05",
            "per": "day",
            "ceiling": {"amount": "12.50", "period": "rolling_12_months"},
        },
    }


def test_guarantee_gives_the_domain_guarantee_or_none_when_not_covered() -> None:
    plan = parse_plan(EXAMPLE)

    assert plan.guarantee("OPTI") is plan.guarantees["OPTI"]
    assert plan.guarantee("TRAN") is None
    with pytest.raises(ValueError, match="unknown care domain"):
        plan.guarantee("OPTIQUE")


def test_plans_are_frozen() -> None:
    plan = parse_plan(EXAMPLE)
    with pytest.raises(ValidationError):
        plan.code = "OTHER"  # type: ignore[misc]


def _set(path: str, value: object) -> Callable[[Doc], None]:
    """A change to the example: set ``value`` at the dotted ``path``."""

    def change(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _drop(path: str) -> Callable[[Doc], None]:
    def change(doc: Doc) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]

    return change


MONEY_SHAPE = 'money must be a decimal string such as "12.50"'


@pytest.mark.parametrize(
    ("change", "location", "reason"),
    [
        pytest.param(
            _set("guarantees.OPTI.amount", 300.0), "guarantees.OPTI.amount", MONEY_SHAPE, id="float"
        ),
        pytest.param(
            _set("guarantees.OPTI.amount", 300), "guarantees.OPTI.amount", MONEY_SHAPE, id="int"
        ),
        pytest.param(
            _set("guarantees.OPTI.frame_cap", "3,00"),
            "guarantees.OPTI.frame_cap",
            MONEY_SHAPE,
            id="comma",
        ),
        pytest.param(
            _set("guarantees.OPTI.amount", "300.005"),
            "guarantees.OPTI.amount",
            "at most 2 decimals",
            id="3-decimals",
        ),
        pytest.param(
            _set("guarantees.AUDI.cap_incl_amo", "-1.00"),
            "guarantees.AUDI.cap_incl_amo",
            "must not be negative",
            id="negative",
        ),
        pytest.param(
            _set("guarantees.DEPR.ceiling.amount", "1000000000.00"),
            "guarantees.DEPR.ceiling.amount",
            "must not exceed 999999999.99",
            id="huge",
        ),
        pytest.param(
            _set("guarantees.DENT", {"br_total_pct": 100}),
            "guarantees.DENT",
            "unknown care domain; valid codes: AUDI, AUXM, DEOR, DEPR, DESO, HOSP, LABO, MED",
            id="unknown-domain",
        ),
        pytest.param(
            _set("colour", "blue"),
            "colour",
            "unknown field; the fields are: code, name",
            id="extra",
        ),
        pytest.param(
            _set("guarantees.MED.colour", "blue"),
            "guarantees.MED.colour",
            "unknown field; the fields are: br_total_pct, br_extra_pct, amount, per,",
            id="extra-in-guarantee",
        ),
        pytest.param(
            _set("guarantees.DEPR.ceiling.colour", "blue"),
            "guarantees.DEPR.ceiling.colour",
            "unknown field; the fields are: amount, period",
            id="extra-in-ceiling",
        ),
        pytest.param(
            _drop("guarantees.OPTI.per"),
            "guarantees.OPTI.per",
            "is required with amount",
            id="amount-without-per",
        ),
        pytest.param(
            _set("guarantees.MED.per", "act"),
            "guarantees.MED.amount",
            "is required with per",
            id="per-without-amount",
        ),
        pytest.param(
            _set("guarantees.OPTI.per", "pair"),
            "guarantees.OPTI.per",
            'must be one of "act", "item", "equipment" or "day"',
            id="unknown-per",
        ),
        pytest.param(
            _set("guarantees.AUDI.frame_cap", "100.00"),
            "guarantees.AUDI.frame_cap",
            "applies only to OPTI",
            id="frame-cap-outside-opti",
        ),
        pytest.param(
            _set("guarantees.MED.daily_fee", True),
            "guarantees.MED.daily_fee",
            "applies only to HOSP",
            id="daily-fee-outside-hosp",
        ),
        pytest.param(
            _set("guarantees.MED", {}), "guarantees.MED", "covers nothing", id="empty-guarantee"
        ),
        pytest.param(
            _set("guarantees.HOSP", {"daily_fee": False, "prior_agreement": True}),
            "guarantees.HOSP",
            "covers nothing",
            id="only-false-flags",
        ),
        pytest.param(
            _set("guarantees.MED", [200]),
            "guarantees.MED",
            "must be a JSON object",
            id="guarantee-not-object",
        ),
        pytest.param(
            _set("valid_to", "2024-12-31"),
            "valid_to",
            "must not be before valid_from",
            id="valid-to-before-valid-from",
        ),
        pytest.param(
            _set("valid_from", "2025-02-30"), "valid_from", "must be a date", id="impossible-date"
        ),
        pytest.param(
            _set("valid_from", "20250101"), "valid_from", "must be a date", id="compact-date"
        ),
        pytest.param(
            _set("guarantees.MED.br_total_pct", True),
            "guarantees.MED.br_total_pct",
            "a percentage must be a JSON integer",
            id="bool-percentage",
        ),
        pytest.param(
            _set("guarantees.MED.br_total_pct", 200.0),
            "guarantees.MED.br_total_pct",
            "a percentage must be a JSON integer",
            id="float-percentage",
        ),
        pytest.param(
            _set("guarantees.MED.br_total_pct", 1001),
            "guarantees.MED.br_total_pct",
            "a percentage must be between 0 and 1000",
            id="percentage-too-high",
        ),
        pytest.param(
            _set("guarantees.PHAR.exclude_amo_rates", [15, 15]),
            "guarantees.PHAR.exclude_amo_rates",
            "each AMO rate may be listed only once",
            id="duplicate-amo-rate",
        ),
        pytest.param(
            _set("guarantees.PHAR.exclude_amo_rates", [15, 101]),
            "guarantees.PHAR.exclude_amo_rates.1",
            "an AMO rate must be between 0 and 100",
            id="amo-rate-too-high",
        ),
        pytest.param(
            _set("guarantees.OPTI.renewal_months", 0),
            "guarantees.OPTI.renewal_months",
            "must be between 1 and 120",
            id="renewal-zero",
        ),
        pytest.param(
            _drop("guarantees.OPTI.renewal_months"),
            "guarantees.OPTI.renewal_months_under_16",
            "requires renewal_months",
            id="under-16-alone",
        ),
        pytest.param(
            _set("guarantees.DEPR.ceiling.period", "month"),
            "guarantees.DEPR.ceiling.period",
            'must be one of "calendar_year" or "rolling_12_months"',
            id="unknown-period",
        ),
        pytest.param(
            _set("guarantees.OPTI.prior_agreement", "yes"),
            "guarantees.OPTI.prior_agreement",
            "must be true or false",
            id="flag-not-bool",
        ),
        pytest.param(_set("code", "confort"), "code", "1 to 20 characters", id="code-lowercase"),
        pytest.param(_set("code", "C" * 21), "code", "1 to 20 characters", id="code-too-long"),
        pytest.param(_set("name", "  "), "name", "1 to 200 characters", id="name-blank"),
        pytest.param(_set("name", "n" * 201), "name", "1 to 200 characters", id="name-too-long"),
        pytest.param(_drop("responsible"), "responsible", "is required", id="missing-field"),
    ],
)
def test_each_bad_plan_is_refused_with_its_location_and_reason(
    change: Callable[[Doc], None], location: str, reason: str
) -> None:
    doc = example()
    change(doc)

    problems = problems_of(json.dumps(doc))

    assert [p.location for p in problems] == [location]
    assert reason in problems[0].reason


@pytest.mark.parametrize(
    ("raw", "location", "reason"),
    [
        ('{"code": "A",\n  "name": }', "line 2, column 11", "invalid JSON: Expecting value"),
        ('{"code": "A",}', "line 1, column 14", "invalid JSON"),
        ("", "line 1, column 1", "invalid JSON"),
        (b'{"name": "\xff"}', "byte offset 10", "must be UTF-8"),
        ("[]", "(document)", "a plan must be a JSON object"),
        ('"CONFORT"', "(document)", "a plan must be a JSON object"),
        ("null", "(document)", "a plan must be a JSON object"),
    ],
    ids=["syntax", "trailing-comma", "empty", "not-utf8", "array", "string", "null"],
)
def test_a_file_that_is_not_a_json_object_is_refused_with_its_position(
    raw: bytes | str, location: str, reason: str
) -> None:
    problems = problems_of(raw)

    assert [p.location for p in problems] == [location]
    assert reason in problems[0].reason


def test_a_key_given_twice_is_refused_rather_than_silently_overwritten() -> None:
    text = EXAMPLE.replace(
        '"MED":  {"br_total_pct": 200},', '"MED": {}, "MED": {"br_total_pct": 200},'
    )

    assert problems_of(text) == [Problem("(document)", 'the key "MED" appears twice in one object')]


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    doc = example()
    doc["colour"] = "blue"
    doc["valid_to"] = "2024-01-01"
    guarantees = doc["guarantees"]
    guarantees["OPTI"]["amount"] = 300.0
    guarantees["OPTI"]["bonus"] = True
    guarantees["AUDI"]["frame_cap"] = "50.00"
    guarantees["MED"] = {"per": "act"}
    guarantees["XRAY"] = {"br_total_pct": 100}
    guarantees["PHAR"]["exclude_amo_rates"] = [True]

    problems = problems_of(json.dumps(doc))

    assert sorted(p.location for p in problems) == [
        "colour",
        "guarantees.AUDI.frame_cap",
        "guarantees.MED",
        "guarantees.MED.amount",
        "guarantees.OPTI.amount",
        "guarantees.OPTI.bonus",
        "guarantees.PHAR.exclude_amo_rates.0",
        "guarantees.XRAY",
        "valid_to",
    ]


def test_problems_never_repeat_the_values_of_the_file() -> None:
    doc = example()
    doc["code"] = "SECRET value"
    doc["name"] = ""
    doc["valid_from"] = "SECRET-date"
    doc["guarantees"]["OPTI"]["amount"] = "SECRET-amount"
    doc["guarantees"]["OPTI"]["per"] = "SECRET-per"

    with pytest.raises(InvalidDocument) as caught:
        parse_plan(doc)

    assert len(caught.value.problems) == 5
    assert "SECRET" not in caught.value.diagnostics()


def test_the_domain_rules_hold_for_plans_built_in_code() -> None:
    with pytest.raises(ValidationError, match="applies only to OPTI"):
        Plan(
            code="C",
            name="Built in code",
            responsible=True,
            valid_from=date(2025, 1, 1),
            guarantees={"DESO": Guarantee(br_total_pct=100, frame_cap="10.00")},
        )
    with pytest.raises(ValidationError, match="is required with amount"):
        Guarantee(amount="10.00")


def test_every_domain_is_billed_by_some_profession() -> None:
    assert frozenset().union(*PROFESSION_DOMAINS.values()) == DOMAINS
    assert len(DOMAINS) == 12
    professions = "audiologist dentist gp hospital laboratory nurse optician pharmacist"
    assert sorted(PROFESSIONS) == sorted(
        f"{professions} physiotherapist specialist transport".split()
    )
    assert PROFESSION_DOMAINS["hospital"] == {"MED", "LABO", "RADL", "DESO", "DEPR", "DEOR", "HOSP"}
    assert PROFESSION_DOMAINS["specialist"] == {"MED", "RADL"}


@pytest.mark.parametrize(
    ("text", "cents"),
    [("0", 0), ("0.05", 5), ("12.5", 1250), ("1500.00", 150000), ("999999999.99", MAX_MONEY_CENTS)],
)
def test_money_strings_parse_to_cents(text: str, cents: int) -> None:
    assert parse_money(text) == cents


@pytest.mark.parametrize(
    "value", [12.5, 12, None, True, "", "1.", ".5", " 1.00", "1e3", "1_000", "١٢", "-0.01", "1.005"]
)
def test_anything_but_a_plain_decimal_string_is_not_money(value: object) -> None:
    with pytest.raises(ValueError, match="money"):
        parse_money(value)


@given(st.integers(min_value=0, max_value=MAX_MONEY_CENTS))
def test_cents_survive_a_round_trip_through_the_money_string(cents: int) -> None:
    assert parse_money(format_money(cents)) == cents


@given(st.decimals(min_value=0, max_value=Decimal("999999999.99"), places=2))
def test_a_two_decimal_amount_parses_to_its_exact_cents(amount: Decimal) -> None:
    assert parse_money(f"{amount:f}") == int(amount * 100)
