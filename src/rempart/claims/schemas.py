"""Calculation (CLC) requests and answers: amounts are decimal strings in euros ("9.00")."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from rempart.registry.plan_format import format_money, parse_money


def _cents(value: object) -> int:
    return parse_money(value)  # ValueError says why: money is a string such as "12.50"


_EUROS = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{1,2})?$", "examples": ["9.00"]}
# In: a decimal string in euros, validated to integer cents. Out: cents, written as euros.
Money = Annotated[int, BeforeValidator(_cents), WithJsonSchema(_EUROS)]
Cents = Annotated[
    int, PlainSerializer(format_money, return_type=str, when_used="json"), WithJsonSchema(_EUROS)
]


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    act_code: str = Field(min_length=1, max_length=10)
    domain: str = Field(min_length=3, max_length=4)
    care_date: date
    quantity: int = Field(ge=1, le=9999)
    billed: Money
    br: Money
    amo_rate: int = Field(ge=0, le=100)
    amo_paid: Money | None = None
    optam: bool | None = None
    basket: str | None = Field(default=None, max_length=10)
    price_limit: Money | None = None
    item_type: str | None = Field(default=None, max_length=20)


class CalculationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amc_number: str = Field(pattern=r"^[A-Za-z0-9]{1,10}$")
    member_number: str = Field(pattern=r"^[A-Za-z0-9]{1,20}$")
    birth_date: date
    birth_rank: int = Field(ge=1, le=9)
    engagement: str | None = Field(default=None, max_length=40)
    prior_agreement: str | None = Field(default=None, max_length=40)
    lines: list[LineIn] = Field(min_length=1, max_length=99)


class LineOut(BaseModel):
    amc_amount: Cents
    amo_amount: Cents
    reject_codes: list[str]
    explanation: str


class CalculationResponse(BaseModel):
    lines: list[LineOut]
    total_amc: Cents
