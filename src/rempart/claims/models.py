"""Tables of claims: invoices (DRE) and their lines, prior agreements (PEC) and their lines, and
the counters they book.

An invoice names its beneficiary by id and by the ledger's keyed pseudonym, never by card fields:
the member number, birth date and rank only travel in the request. Money is integer cents.

The counters are kept apart from the invoices so that other sources can book them too: a prior
agreement (PEC) reserves a renewal the same way an invoice uses one (``source_kind``).
Agreements, like invoices, hold the beneficiary's id and pseudonym and never a card field.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from rempart.claims.engine import Line
from rempart.db import Base, Protected, UTCDateTime, utcnow
from rempart.registry.models import new_id

STATUSES = ("accepted", "partial", "rejected", "cancelled")
AGREEMENT_STATUSES = ("granted", "consumed", "cancelled")
SOURCE_KINDS = ("invoice", "prior_agreement")
_SOURCE_CHECK = "source_kind IN ('invoice', 'prior_agreement')"


class Invoice(Protected, Base):
    """One invoice as adjudicated: ``outcome`` never changes, ``status`` becomes cancelled."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("outcome IN ('accepted', 'partial', 'rejected')", name="outcome"),
        CheckConstraint(
            "status IN ('accepted', 'partial', 'rejected', 'cancelled')", name="status"
        ),
        CheckConstraint("status = outcome OR status = 'cancelled'", name="status_outcome"),
        CheckConstraint(
            "(status = 'cancelled' AND cancelled_at IS NOT NULL)"
            " OR (status <> 'cancelled' AND cancelled_at IS NULL)",
            name="cancelled",
        ),
        CheckConstraint("total_amc >= 0", name="total_amc"),
        CheckConstraint("(idempotency_key IS NULL) = (request_digest IS NULL)", name="idempotency"),
        # The duplicate check reads a patient's invoices from one professional.
        Index("ix_invoices_beneficiary", "beneficiary_id", "professional_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"), index=True)
    # Null when the card matched no one: the invoice is then answered as closed rights.
    beneficiary_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("beneficiaries.id"))
    amc_number: Mapped[str | None] = mapped_column(String(10))  # the insurer, when known
    pseudonym: Mapped[str | None] = mapped_column(String(32))  # as in the ledger's events
    invoice_number: Mapped[str] = mapped_column(String(30))
    # The payment guarantee verified for every line (rights closed later do not matter).
    guaranteed: Mapped[bool] = mapped_column(Boolean)
    prior_agreement: Mapped[str | None] = mapped_column(String(40))  # the reference quoted
    outcome: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10))
    total_amc: Mapped[int] = mapped_column(BigInteger)
    # HMACs under a platform secret: of (professional, Idempotency-Key), of the request.
    idempotency_key: Mapped[bytes | None] = mapped_column(LargeBinary(32), unique=True)
    request_digest: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    submitted_by: Mapped[str] = mapped_column(String(60))  # the actor, as in the ledger
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # set by payment runs


class AdjudicatedLine:
    """The columns of a line as sent and as the engine valued it: an invoice's, a quote's."""

    act_code: Mapped[str] = mapped_column(String(20))
    domain: Mapped[str] = mapped_column(String(4))
    care_date: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    billed: Mapped[int] = mapped_column(BigInteger)
    br: Mapped[int] = mapped_column(BigInteger)
    amo_rate: Mapped[int] = mapped_column(SmallInteger)
    amo_paid: Mapped[int | None] = mapped_column(BigInteger)
    optam: Mapped[bool | None] = mapped_column(Boolean)
    basket: Mapped[str | None] = mapped_column(String(20))
    price_limit: Mapped[int | None] = mapped_column(BigInteger)
    item_type: Mapped[str | None] = mapped_column(String(30))
    amc_amount: Mapped[int] = mapped_column(BigInteger)
    amo_amount: Mapped[int] = mapped_column(BigInteger)
    reject_codes: Mapped[str] = mapped_column(String(100))  # ";"-separated, "" when none
    explanation: Mapped[str] = mapped_column(Text)


def _line_checks() -> tuple[CheckConstraint, ...]:
    """The checks of an ``AdjudicatedLine`` table (new objects: a constraint has one table)."""
    return (
        CheckConstraint("quantity >= 1", name="quantity"),
        CheckConstraint("billed >= 0 AND br >= 0", name="money"),
        # Rule 1 of DOMAIN.md, kept by the database too: never below 0, never above billed − AMO.
        CheckConstraint(
            "amc_amount >= 0 AND amo_amount >= 0 AND amc_amount + amo_amount <= billed",
            name="rule_1",
        ),
    )


class InvoiceLine(AdjudicatedLine, Protected, Base):
    """A line as billed and as adjudicated; ``accepted``: not refused (a partial line is)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        UniqueConstraint("invoice_id", "position"),
        *_line_checks(),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    accepted: Mapped[bool] = mapped_column(Boolean)


class Booking(Protected, Base):
    """AMC cents counted against a beneficiary's ceilings, per domain and care date."""

    __tablename__ = "accumulator_bookings"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint(_SOURCE_CHECK, name="source_kind"),
        Index("ix_accumulator_bookings_beneficiary", "beneficiary_id", "care_date"),
        Index("ix_accumulator_bookings_source", "source_id", "source_kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("beneficiaries.id"))
    domain: Mapped[str] = mapped_column(String(4))
    care_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    source_kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[uuid.UUID] = mapped_column()
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RenewalUse(Protected, Base):
    """An equipment or item fitted (or reserved by a prior agreement) on a care date."""

    __tablename__ = "renewal_uses"
    __table_args__ = (
        CheckConstraint(_SOURCE_CHECK, name="source_kind"),
        Index("ix_renewal_uses_beneficiary", "beneficiary_id", "renewal_key"),
        Index("ix_renewal_uses_source", "source_id", "source_kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("beneficiaries.id"))
    renewal_key: Mapped[str] = mapped_column(String(40))  # "OPTI", "AUDI:hearing_aid_left"
    care_date: Mapped[date] = mapped_column(Date)
    source_kind: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[uuid.UUID] = mapped_column()
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PriorAgreement(Protected, Base):
    """A prior agreement (PEC) granted to a professional for a beneficiary's quote.

    Only granted agreements are stored (a refused request leaves no row, only its access event).
    ``status``: ``granted`` until an invoice consumes it or the professional cancels it; expired is
    not stored, it is ``valid_until`` passed. ``reserved`` is what it reserves in the renewal
    counters (JSON: renewal key -> care date), kept to restore the reservation when the invoice
    that consumed it is cancelled.
    """

    __tablename__ = "prior_agreements"
    __table_args__ = (
        CheckConstraint("status IN ('granted', 'consumed', 'cancelled')", name="status"),
        CheckConstraint(
            "(status = 'cancelled' AND cancelled_at IS NOT NULL)"
            " OR (status <> 'cancelled' AND cancelled_at IS NULL)",
            name="cancelled",
        ),
        CheckConstraint(
            "(status = 'consumed' AND consumed_at IS NOT NULL AND consumed_by IS NOT NULL)"
            " OR (status <> 'consumed' AND consumed_at IS NULL AND consumed_by IS NULL)",
            name="consumed",
        ),
        CheckConstraint("valid_from <= valid_until", name="validity"),
        CheckConstraint("total_amc >= 0", name="total_amc"),
        # A professional's agreements, newest first.
        Index("ix_prior_agreements_professional", "professional_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(40), unique=True)  # HMAC-derived, see services
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    amc_number: Mapped[str] = mapped_column(String(10))
    pseudonym: Mapped[str] = mapped_column(String(32))  # as in the ledger's events
    status: Mapped[str] = mapped_column(String(10))
    total_amc: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[date] = mapped_column(Date)  # the day it was granted
    valid_until: Mapped[date] = mapped_column(Date)  # the last day of care it covers
    reserved: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(60))  # the actor, as in the ledger
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consumed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("invoices.id"), index=True)


class PriorAgreementLine(AdjudicatedLine, Protected, Base):
    """A quoted line as asked and as valued; ``agreed``: not refused (its amount is the cap)."""

    __tablename__ = "prior_agreement_lines"
    __table_args__ = (
        UniqueConstraint("agreement_id", "position"),
        *_line_checks(),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agreement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("prior_agreements.id"))
    position: Mapped[int] = mapped_column(SmallInteger)
    agreed: Mapped[bool] = mapped_column(Boolean)


def as_line(row: AdjudicatedLine) -> Line:
    """A stored line (billed or quoted) as the engine takes it."""
    return Line(
        row.act_code,
        row.domain,
        row.care_date,
        row.quantity,
        row.billed,
        row.br,
        row.amo_rate,
        row.amo_paid,
        row.optam,
        row.basket,
        row.price_limit,
        row.item_type,
    )
