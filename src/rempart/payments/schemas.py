"""Requests and answers of the payments API: one model per audience (professionals, insurers,
operators). Money is a decimal string in euros ("9.00"); an IBAN is only ever answered as its
hint ("FR76…1234")."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from rempart.registry.plan_format import format_money

_EUROS = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "examples": ["9.00"]}
Cents = Annotated[
    int, PlainSerializer(format_money, return_type=str, when_used="json"), WithJsonSchema(_EUROS)
]


# --- professionals ------------------------------------------------------------------------------


class RemittanceOut(BaseModel):
    id: uuid.UUID
    run: str = Field(examples=["RMP000012"])
    run_date: date
    execution_date: date
    end_to_end_id: str | None = Field(description="null when nothing was due (no transfer)")
    amount: Cents
    invoices: int
    lines: int


class RemittanceList(BaseModel):
    remittances: list[RemittanceOut]


class BankDetailsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    iban: str = Field(min_length=15, max_length=42, description="The new account (SEPA zone)")
    bic: str = Field(min_length=8, max_length=11)


class BankDetailsConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(
        min_length=6, max_length=20, description="The code of the letter sent to the practice"
    )


class BankDetailsCancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


class ChangeOut(BaseModel):
    id: uuid.UUID
    status: str = Field(description="pending (awaiting the code), confirmed or cancelled")
    iban_hint: str = Field(examples=["FR76…1234"])
    bic: str
    requested_at: datetime
    code_expires_at: datetime
    usable_from: datetime | None = Field(
        description="when payments go to this account (after the cooling-off period)"
    )
    attempts_left: int


class BankDetailsOut(BaseModel):
    iban_hint: str = Field(examples=["FR76…1234"])
    bic: str
    since: datetime | None = Field(description="null: the account of your convention")
    change: ChangeOut | None
    payments_held: bool = Field(description="true while a change is under way")


# --- insurers -----------------------------------------------------------------------------------


class StatementOut(BaseModel):
    id: uuid.UUID
    run: str = Field(examples=["RMP000012"])
    run_date: date
    collection_date: date
    method: str = Field(description="direct_debit, or invoice when no mandate was given")
    end_to_end_id: str | None
    amount: Cents
    claims: int
    lines: int


class StatementList(BaseModel):
    statements: list[StatementOut]


# --- operators ----------------------------------------------------------------------------------


class HeldOut(BaseModel):
    am_number: str
    reason: str
    until: datetime | None
    invoices: int
    amount: Cents


class InsurerTotal(BaseModel):
    amc_number: str
    claims: int
    amount: Cents


class RunOut(BaseModel):
    id: uuid.UUID
    reference: str = Field(examples=["RMP000012"])
    run_date: date
    cutoff: datetime
    execution_date: date
    collection_date: date
    status: str = Field(description="open, files_written or closed")
    opened_at: datetime
    closed_at: datetime | None
    invoices: int
    lines: int
    transfers: int
    transfer_total: Cents
    debits: int
    debit_total: Cents
    held: list[HeldOut]
    files: dict[str, str] = Field(description="SHA-256 of the SEPA files and of the manifest")
    by_insurer: list[InsurerTotal] = Field(description="on a single run's answer only")


class RunList(BaseModel):
    runs: list[RunOut]
