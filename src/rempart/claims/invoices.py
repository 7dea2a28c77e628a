"""Invoices (DRE): adjudicated line by line, booked, answered once, cancelled if unpaid.

The use cases of the API; the batch path they share with file ingestion is ``claims.batch``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

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
from rempart.claims.models import Invoice
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


def _owned(session: Session, caller: Principal, invoice_id: uuid.UUID) -> Invoice:
    """The caller's invoice, checked against its MAC; another professional's is "not found"
    (no oracle of which ids exist)."""
    row = session.get(Invoice, invoice_id)
    if row is None or row.professional_id != caller.professional_id:
        raise NotFound("no such invoice")
    journal.check_row(session, row)
    return row
