"""Invoices (DRE): adjudicated line by line, booked, answered once, cancelled if unpaid.

The use cases of the API; the batch path they share with file ingestion is ``claims.batch``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rempart import cursors
from rempart.claims import prior_agreements, state
from rempart.claims.batch import (
    Biller,
    InvoiceView,
    Outcome,
    Refusal,
    Submission,
    event_of,
    process,
    view_of,
)
from rempart.claims.engine import Line
from rempart.claims.models import Invoice, InvoiceLine, as_line
from rempart.db import transaction, utcnow
from rempart.errors import Conflict, Forbidden, InvalidInput, NotFound
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.integrity import journal
from rempart.ledger.events import Tag
from rempart.ledger.recorder import Recorder
from rempart.ledger.services import append_events
from rempart.platform import Platform

MAX_BATCH = 500
MAX_PAGE = 100
# What the professional's own page of an invoice shows of its lines, besides the adjudication.
DETAIL_FIELDS = ("act_code", "care_date", "billed", "amc_amount", "reject_codes")


@dataclass(frozen=True)
class InvoiceSummary:
    """An invoice in the professional's list: nothing of the patient, not even a pseudonym."""

    id: uuid.UUID
    invoice_number: str
    submitted_at: datetime
    status: str
    lines: int
    billed: int  # cents, all lines
    total_amc: int
    paid_at: datetime | None


@dataclass(frozen=True)
class InvoicePage:
    """A page of invoices, newest first; ``next`` is the cursor of the next page, if any."""

    invoices: tuple[InvoiceSummary, ...]
    next: str | None


@dataclass(frozen=True)
class InvoiceRecord:
    """One invoice as its professional sees it: the adjudication and the lines as billed."""

    view: InvoiceView
    invoice_number: str
    submitted_at: datetime
    paid_at: datetime | None
    prior_agreement: str | None
    billed: tuple[Line, ...]

    @property
    def cancellable(self) -> bool:
        return self.view.status != "cancelled" and self.paid_at is None


def submit_invoice(
    platform: Platform, quotas: Quotas, caller: Principal, submission: Submission, client: Client
) -> InvoiceView:
    """Adjudicate and book one invoice (or answer a retry), or raise why it was not taken."""
    (outcome,) = submit_batch(platform, quotas, caller, [submission], client)
    if isinstance(outcome, Refusal):
        raise outcome.error
    return outcome


def submit_batch(
    platform: Platform,
    quotas: Quotas,
    caller: Principal,
    submissions: Sequence[Submission],
    client: Client,
) -> list[Outcome]:
    """Adjudicate and book a professional's invoices in one transaction, in the order given."""
    if not 1 <= len(submissions) <= MAX_BATCH:
        raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} invoices", field="invoices")
    if caller.professional_id is None or caller.profession is None:
        raise Forbidden("this professional may not bill")
    biller = Biller.of(caller)
    with transaction(platform.sessions) as session:
        return process(session, platform, [(biller, s) for s in submissions], quotas, client)


def get_invoice(
    platform: Platform, recorder: Recorder, caller: Principal, invoice_id: uuid.UUID, client: Client
) -> InvoiceView:
    """One of the caller's invoices, as it stands (another professional's is not found)."""
    with transaction(platform.sessions) as session:
        row = _owned(session, caller, invoice_id)
        view = view_of(session, row, row.status)
    recorder.record(event_of(Tag.CLAIM_READ, caller, client, row, "read", utcnow()))
    return view


def cancel_invoice(
    platform: Platform, caller: Principal, invoice_id: uuid.UUID, client: Client
) -> InvoiceView:
    """Cancel an unpaid invoice: its counters are given back, its lines no longer duplicate, and
    the prior agreement it used is usable again."""
    now = utcnow()
    with transaction(platform.sessions) as session:
        state.lock(session, ())  # SQLite: the write lock before the first read
        found = _owned(session, caller, invoice_id)
        if found.beneficiary_id is not None:
            state.lock(session, [found.beneficiary_id.bytes])
        # Read again under a row lock: of two cancels at once, the second sees the first's.
        row = session.get(Invoice, invoice_id, with_for_update=True, populate_existing=True)
        assert row is not None
        if row.status == "cancelled":
            raise Conflict("this invoice is already cancelled")
        if row.paid_at is not None:
            raise Conflict("this invoice is paid: it can no longer be cancelled")
        row.status, row.cancelled_at = "cancelled", now
        state.release(session, state.INVOICE, row.id)
        # The prior agreement it used, if any, is granted again with its reservation.
        prior_agreements.restore(session, row.id, now)
        view = view_of(session, row, row.status)
        append_events(session, [event_of(Tag.INVOICE, caller, client, row, "cancelled", now)])
    return view


def read_invoice(
    platform: Platform, recorder: Recorder, caller: Principal, invoice_id: uuid.UUID, client: Client
) -> InvoiceRecord:
    """``get_invoice`` with the lines as billed (act, care date, amounts), its number and dates:
    the professional portal's page of an invoice. The read is recorded as ``get_invoice``'s,
    naming the fields shown."""
    with transaction(platform.sessions) as session:
        row = _owned(session, caller, invoice_id)
        view = view_of(session, row, row.status)
        billed = tuple(as_line(line) for line in lines_of(session, [row.id])[row.id])
    event = event_of(Tag.CLAIM_READ, caller, client, row, "read", utcnow())
    recorder.record(replace(event, fields=DETAIL_FIELDS) if row.pseudonym else event)
    return InvoiceRecord(
        view, row.invoice_number, row.submitted_at, row.paid_at, row.prior_agreement, billed
    )


def list_invoices(
    platform: Platform, caller: Principal, limit: int, before: str | None
) -> InvoicePage:
    """The caller's invoices, newest first, ``limit`` at most, after the cursor ``before``:
    number, date, status and totals. Nothing of any patient is read (no card field, no
    pseudonym, no act), so nothing is recorded in the ledger; each row is checked against its
    MAC all the same."""
    if caller.professional_id is None:
        raise Forbidden("this professional may not bill")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", field="limit")
    cursor = cursors.decode(before) if before else None
    query = select(Invoice).where(Invoice.professional_id == caller.professional_id)
    if cursor is not None:
        at, last_id = cursor
        query = query.where(
            or_(
                Invoice.submitted_at < at,
                and_(Invoice.submitted_at == at, Invoice.id < last_id),
            )
        )
    order = (Invoice.submitted_at.desc(), Invoice.id.desc())
    with transaction(platform.sessions) as session:
        rows = session.scalars(query.order_by(*order).limit(limit + 1)).all()
        more, rows = len(rows) > limit, rows[:limit]
        for row in rows:
            journal.check_row(session, row)
        lines = lines_of(session, [row.id for row in rows])
    summaries = tuple(
        InvoiceSummary(
            row.id,
            row.invoice_number,
            row.submitted_at,
            row.status,
            len(lines[row.id]),
            sum(line.billed for line in lines[row.id]),
            row.total_amc,
            row.paid_at,
        )
        for row in rows
    )
    return InvoicePage(
        summaries, cursors.encode(rows[-1].submitted_at, rows[-1].id) if more and rows else None
    )


def lines_of(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[InvoiceLine]]:
    """The lines of these invoices, in order, each checked against its MAC."""
    found: dict[uuid.UUID, list[InvoiceLine]] = {invoice_id: [] for invoice_id in ids}
    if not ids:
        return found
    query = select(InvoiceLine).where(InvoiceLine.invoice_id.in_(ids))
    for line in session.scalars(query.order_by(InvoiceLine.invoice_id, InvoiceLine.position)):
        journal.check_row(session, line)
        found[line.invoice_id].append(line)
    return found


def _owned(session: Session, caller: Principal, invoice_id: uuid.UUID) -> Invoice:
    """The caller's invoice, checked against its MAC; another professional's is "not found"
    (no oracle of which ids exist)."""
    row = session.get(Invoice, invoice_id)
    if row is None or row.professional_id != caller.professional_id:
        raise NotFound("no such invoice")
    journal.check_row(session, row)
    return row
