"""Calculation (CLC), prior agreement (PEC) and invoice (DRE) requests and answers: amounts are
decimal strings in euros ("9.00")."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

from rempart.claims.batch import Submission
from rempart.claims.engine import Line
from rempart.registry.plan_format import format_money, parse_money
from rempart.rights.services import Card


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


# Invoices (DRE) ---------------------------------------------------------------------------------

InvoiceStatus = Literal["accepted", "partial", "rejected", "cancelled"]
# Opaque to us, chosen by the software: printable ASCII, no spaces.
IDEMPOTENCY_KEY = r"^[!-~]{1,100}$"


class InvoiceRequest(CalculationRequest):
    """A calculation's body plus the professional's own invoice number."""

    invoice_number: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,29}$")

    def submission(self, idempotency_key: str | None) -> Submission:
        return Submission(
            card=Card(self.amc_number, self.member_number, self.birth_date, self.birth_rank),
            lines=tuple(Line(**line.model_dump()) for line in self.lines),
            invoice_number=self.invoice_number,
            engagement=self.engagement,
            prior_agreement=self.prior_agreement,
            idempotency_key=idempotency_key,
        )


class BatchInvoice(InvoiceRequest):
    idempotency_key: str | None = Field(default=None, pattern=IDEMPOTENCY_KEY)


class InvoiceBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    invoices: list[BatchInvoice] = Field(min_length=1, max_length=500)


class IngestLine(BatchInvoice):
    """One line of an ingestion file: an invoice and the billing number of who bills it."""

    am_number: str = Field(pattern=r"^[0-9]{9}$")


class InvoiceResponse(BaseModel):
    id: uuid.UUID
    status: InvoiceStatus
    lines: list[LineOut]
    total_amc: Cents


class BatchProblem(BaseModel):
    """Why one invoice of a batch was not taken (RFC 9457's status, title and detail)."""

    status: int
    title: str
    detail: str


class BatchResult(BaseModel):
    index: int  # the invoice's position in the request, from 0
    invoice: InvoiceResponse | None = None
    error: BatchProblem | None = None


class BatchReport(BaseModel):
    accepted: int
    partial: int
    rejected: int
    replayed: int  # retries answered with their first answer (counted once, when first taken)
    refused: int  # not taken: see each result's error
    total_amc: Cents
    reject_codes: dict[str, int]  # invoice lines per reject code
    results: list[BatchResult]


# Prior agreements (PEC) ------------------------------------------------------------------------

AgreementStatus = Literal["granted", "rejected", "consumed", "cancelled", "expired"]


class PriorAgreementRequest(BaseModel):
    """A quote: the card and the lines of the care to come (no engagement, no reference)."""

    model_config = ConfigDict(extra="forbid")

    amc_number: str = Field(pattern=r"^[A-Za-z0-9]{1,10}$")
    member_number: str = Field(pattern=r"^[A-Za-z0-9]{1,20}$")
    birth_date: date
    birth_rank: int = Field(ge=1, le=9)
    lines: list[LineIn] = Field(min_length=1, max_length=99)

    def card(self) -> Card:
        return Card(self.amc_number, self.member_number, self.birth_date, self.birth_rank)

    def engine_lines(self) -> list[Line]:
        return [Line(**line.model_dump()) for line in self.lines]


class PriorAgreementResponse(BaseModel):
    """``reference`` and the validity are null when nothing was agreed (``rejected``)."""

    reference: str | None
    status: AgreementStatus
    valid_from: date | None
    valid_until: date | None
    lines: list[LineOut]
    total_amc: Cents


class PriorAgreementPage(BaseModel):
    agreements: list[PriorAgreementResponse]
    next: str | None  # give it as ``before`` for the next page; null on the last one
