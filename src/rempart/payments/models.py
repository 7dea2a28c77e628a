"""Tables of payments: runs, what each run took, the transfers and debits it made, and the
bank-details changes that decide where professionals are paid.

Exactly once is kept by the database: ``payment_items.invoice_id`` is unique, so an invoice is
in one run at most, whatever two processes try; and every row a run writes is written in the
transaction that opens it (``runs.open_run``), so a crash leaves either the whole run or nothing.

Money is integer cents. The professionals' new IBANs are sealed under the platform's data key
(like the registry's); insurers' debit accounts are a company's account, public on its letters,
and kept in clear, under the row MAC like every business row.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
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

from rempart.db import Base, Protected, UTCDateTime, utcnow
from rempart.registry.models import new_id

RUN_STATUSES = ("open", "files_written", "closed")


class PaymentRun(Protected, Base):
    """One payment run: a closed period (invoices submitted before ``cutoff``), its files.

    ``open``: its invoices are taken (and marked paid), its files not yet all written;
    ``files_written``: every file is written and its digest recorded; ``closed``: done.
    """

    __tablename__ = "payment_runs"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'files_written', 'closed')", name="status"),
        CheckConstraint("(status = 'open') = (files_written_at IS NULL)", name="files_written_at"),
        CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_at"),
        CheckConstraint("transfer_total >= 0 AND debit_total >= 0", name="totals"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # RMP000012
    run_date: Mapped[date] = mapped_column(Date)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime())  # invoices submitted before it
    execution_date: Mapped[date] = mapped_column(Date)  # the transfers' requested date
    collection_date: Mapped[date] = mapped_column(Date)  # the debits' requested date
    status: Mapped[str] = mapped_column(String(15))
    opened_by: Mapped[str] = mapped_column(String(60))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    files_written_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    invoices: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    transfers: Mapped[int] = mapped_column(Integer)
    transfer_total: Mapped[int] = mapped_column(BigInteger)
    debits: Mapped[int] = mapped_column(Integer)
    debit_total: Mapped[int] = mapped_column(BigInteger)
    # Professionals held (bank details under change, frozen): JSON, for the run's report.
    held: Mapped[str] = mapped_column(Text)
    # SHA-256 of each file written (JSON: name -> digest): a rewrite after a crash must match.
    files: Mapped[str | None] = mapped_column(Text)


class Remittance(Protected, Base):
    """What a run pays one professional: one SEPA credit transfer (none when nothing is due,
    e.g. every invoice rejected) and the remittance advice that lists each invoice and line."""

    __tablename__ = "remittances"
    __table_args__ = (
        UniqueConstraint("run_id", "professional_id"),
        CheckConstraint("amount >= 0", name="amount"),
        CheckConstraint("(amount > 0) = (end_to_end_id IS NOT NULL)", name="transfer"),
        Index("ix_remittances_professional", "professional_id", "run_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_runs.id"))
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    am_number: Mapped[str] = mapped_column(String(9))
    creditor_name: Mapped[str] = mapped_column(String(70))  # as written in the file (SEPA set)
    # Which account: a bank-details change, or (null) the account of the convention.
    bank_change_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_changes.id"))
    iban_hint: Mapped[str] = mapped_column(String(12))
    bic: Mapped[str] = mapped_column(String(11))
    end_to_end_id: Mapped[str | None] = mapped_column(String(35), unique=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    invoices: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)


class Settlement(Protected, Base):
    """What a run advanced for one insurer's members, to recover by direct debit (when the
    insurer gave a mandate) or by invoice."""

    __tablename__ = "settlements"
    __table_args__ = (
        UniqueConstraint("run_id", "tenant_id"),
        CheckConstraint("amount >= 0", name="amount"),
        CheckConstraint(
            "(end_to_end_id IS NULL) = (mandate_id IS NULL)"
            " AND (mandate_id IS NULL) = (debtor_iban IS NULL)",
            name="debit",
        ),
        Index("ix_settlements_tenant", "tenant_id", "run_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_runs.id"))
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    amc_number: Mapped[str] = mapped_column(String(10))
    debtor_name: Mapped[str] = mapped_column(String(70))  # as written in the file (SEPA set)
    amount: Mapped[int] = mapped_column(BigInteger)
    invoices: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    # The debit, as the mandate stood when the run opened (null: recovered by invoice).
    end_to_end_id: Mapped[str | None] = mapped_column(String(35), unique=True)
    mandate_id: Mapped[str | None] = mapped_column(String(35))
    mandate_signed_on: Mapped[date | None] = mapped_column(Date)
    debtor_iban: Mapped[str | None] = mapped_column(String(34))
    debtor_bic: Mapped[str | None] = mapped_column(String(11))


class PaymentItem(Protected, Base):
    """An invoice taken by a run: unique, so that no invoice is ever in two runs."""

    __tablename__ = "payment_items"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount"),
        Index("ix_payment_items_run", "run_id", "remittance_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payment_runs.id"))
    invoice_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("invoices.id"), unique=True)
    remittance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("remittances.id"))
    settlement_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("settlements.id"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)  # the invoice's accepted total, in cents
    lines: Mapped[int] = mapped_column(SmallInteger)


class BankChange(Protected, Base):
    """A professional's request to be paid to another account: requested under step-up
    authentication, confirmed with a code sent out of band, usable after a cooling-off period."""

    __tablename__ = "bank_changes"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'confirmed', 'cancelled')", name="status"),
        CheckConstraint(
            "(status = 'confirmed') = (confirmed_at IS NOT NULL AND usable_from IS NOT NULL)",
            name="confirmed",
        ),
        CheckConstraint("(status = 'cancelled') = (cancelled_at IS NOT NULL)", name="cancelled"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_bank_changes_professional", "professional_id", "requested_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    iban_enc: Mapped[bytes] = mapped_column(LargeBinary)  # sealed under the platform's key
    iban_hint: Mapped[str] = mapped_column(String(12))
    bic: Mapped[str] = mapped_column(String(11))
    key_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10))
    # HMAC of the code under a platform secret: the database alone cannot confirm a change.
    code_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    code_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(SmallInteger, default=0)
    requested_by: Mapped[str] = mapped_column(String(60))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_by: Mapped[str | None] = mapped_column(String(60))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    usable_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[str | None] = mapped_column(String(60))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(200))


class OutgoingMessage(Protected, Base):
    """A letter or notice for the out-of-band channel (the practice's postal address on its
    convention, its other accounts): the mail room takes them from here. Sealed: a confirmation
    code must not be readable in a dump."""

    __tablename__ = "bank_change_messages"
    __table_args__ = (
        CheckConstraint("kind IN ('code', 'notice')", name="kind"),
        Index("ix_bank_change_messages_unsent", "sent_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    change_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bank_changes.id"))
    kind: Mapped[str] = mapped_column(String(10))  # code: the letter; notice: an information
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DebitMandate(Protected, Base):
    """An insurer's SEPA direct-debit mandate: the account its settlements are collected from."""

    __tablename__ = "debit_mandates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), unique=True)
    mandate_id: Mapped[str] = mapped_column(String(35))
    signed_on: Mapped[date] = mapped_column(Date)
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str] = mapped_column(String(11))
    set_by: Mapped[str] = mapped_column(String(60))
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
