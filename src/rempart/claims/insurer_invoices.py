"""The invoices billed to an insurer, as its staff see them: newest first, a page at a time,
without the patient's identity (the invoice's date and number, the professional's billing
number, the care domains and dates, the amounts, the status, and whether it was paid).

An invoice is the insurer's when its ``amc_number`` is (the card's insurer, recorded when that
insurer was known to Rempart); the AMC number comes from the caller's session, never from the
request. Cards that matched no member of the insurer are listed too, refused: the insurer sees
who billed on its name. The list names no patient, so it records no access event; a member file
(``registry.member_files``) that shows a patient's invoices records its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from rempart import cursors
from rempart.claims.invoices import lines_of
from rempart.claims.models import Invoice
from rempart.db import transaction
from rempart.errors import Forbidden, InvalidInput
from rempart.identity.auth import Principal
from rempart.integrity import journal
from rempart.platform import Platform
from rempart.registry.models import Professional

PAGE = 50
MAX_PAGE = 100


@dataclass(frozen=True)
class InsurerInvoice:
    """One invoice as its insurer sees it; money in cents."""

    id: uuid.UUID
    invoice_number: str  # the professional's own number
    submitted_at: datetime
    am_number: str  # the professional's billing number
    domains: tuple[str, ...]
    first_care: date | None
    last_care: date | None
    billed: int  # what the lines billed, in all
    total_amc: int  # the AMC share accepted
    status: str  # accepted | partial | rejected | cancelled
    paid_at: datetime | None  # set by the payment run that paid the professional
    member: bool  # the card matched one of the insurer's beneficiaries

    @property
    def payment(self) -> str:
        """paid, due (accepted and not paid yet) or none (nothing to pay)."""
        if self.paid_at is not None:
            return "paid"
        if self.status in ("accepted", "partial") and self.total_amc > 0:
            return "due"
        return "none"


@dataclass(frozen=True)
class InvoicesPage:
    invoices: tuple[InsurerInvoice, ...]
    next: str | None  # the cursor of the next (older) page, if any


def list_invoices(
    platform: Platform, caller: Principal, before: str | None, limit: int = PAGE
) -> InvoicesPage:
    """The invoices billed to the caller's insurer, newest first, ``limit`` at most, after the
    cursor ``before`` (from a previous page)."""
    amc_number = _insurer(caller)
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", field="limit")
    cursor = cursors.decode(before) if before else None
    with transaction(platform.sessions) as session:
        query = _listed(amc_number)
        if cursor is not None:
            at, last_id = cursor
            query = query.where(
                or_(
                    Invoice.submitted_at < at,
                    and_(Invoice.submitted_at == at, Invoice.id < last_id),
                )
            )
        found = _views(session, query.limit(limit + 1))
    more, found = len(found) > limit, found[:limit]
    return InvoicesPage(
        tuple(found),
        cursors.encode(found[-1].submitted_at, found[-1].id) if more and found else None,
    )


def billed_for(
    session: Session, amc_number: str, beneficiaries: Sequence[uuid.UUID], limit: int
) -> list[tuple[uuid.UUID, InsurerInvoice]]:
    """The latest invoices of these beneficiaries of the insurer, newest first, ``limit`` at
    most, each with its beneficiary's id: for a member file, in the caller's transaction (which
    records the access)."""
    if not beneficiaries:
        return []
    query = (
        _listed(amc_number)
        .add_columns(Invoice.beneficiary_id)
        .where(Invoice.beneficiary_id.in_(list(beneficiaries)))
        .limit(limit)
    )
    rows = session.execute(query).all()
    views = _summaries(session, [(row[0], row[1]) for row in rows])
    return [(row[2], view) for row, view in zip(rows, views, strict=True)]


def _insurer(caller: Principal) -> str:
    if caller.role != "amc" or not caller.organisation:
        raise Forbidden("only an insurer's staff see its invoices")
    return caller.organisation


def _listed(amc_number: str) -> Select[Invoice, str]:
    return (
        select(Invoice, Professional.am_number)
        .join(Professional, Professional.id == Invoice.professional_id)
        .where(Invoice.amc_number == amc_number)
        .order_by(Invoice.submitted_at.desc(), Invoice.id.desc())
    )


def _views(session: Session, query: Select[Invoice, str]) -> list[InsurerInvoice]:
    return _summaries(session, [(row[0], row[1]) for row in session.execute(query).all()])


def _summaries(session: Session, rows: Sequence[tuple[Invoice, str]]) -> list[InsurerInvoice]:
    """Each invoice with its lines summed up; every row checked against its integrity MAC."""
    lines = lines_of(session, [invoice.id for invoice, _ in rows])
    found = []
    for invoice, am_number in rows:
        journal.check_row(session, invoice)
        own = lines[invoice.id]
        days = [line.care_date for line in own]
        found.append(
            InsurerInvoice(
                id=invoice.id,
                invoice_number=invoice.invoice_number,
                submitted_at=invoice.submitted_at,
                am_number=am_number,
                domains=tuple(sorted({line.domain for line in own})),
                first_care=min(days, default=None),
                last_care=max(days, default=None),
                billed=sum(line.billed for line in own),
                total_amc=invoice.total_amc,
                status=invoice.status,
                paid_at=invoice.paid_at,
                member=invoice.beneficiary_id is not None,
            )
        )
    return found
