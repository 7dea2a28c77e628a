"""Remittance advices: read back from what a run recorded, as JSON or as a PDF.

A run writes each professional's advice as JSON (``runs``); the API, the CLI and (later) the
portal build the very same document from the database on demand, and render it as a PDF with
WeasyPrint. A professional sees its own remittances, of closed runs only: another's, or one of a
run still being written, is "not found".
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from operator import itemgetter
from typing import Any

import jinja2
from sqlalchemy import Select, String, select, type_coerce
from sqlalchemy.orm import Session

from rempart.claims.models import Invoice, InvoiceLine
from rempart.db import table_of, transaction
from rempart.errors import IntegrityFailure, NotFound
from rempart.identity.auth import Principal
from rempart.integrity import journal
from rempart.payments import documents, rules
from rempart.payments.models import PaymentItem, PaymentRun, Remittance
from rempart.platform import Platform

_INVOICES = table_of(Invoice)
_LINES = table_of(InvoiceLine)
_ITEMS = table_of(PaymentItem)
_STREAM = 5_000


@dataclass(frozen=True)
class RemittanceSummary:
    """One line of a professional's list of remittances."""

    id: uuid.UUID
    run_reference: str
    run_date: date
    execution_date: date
    end_to_end_id: str | None
    amount: int
    invoices: int
    lines: int


def run_info(run: PaymentRun) -> documents.RunInfo:
    return documents.RunInfo(
        run.id,
        run.number,
        rules.run_reference(run.number),
        run.run_date,
        run.cutoff,
        run.execution_date,
        run.collection_date,
    )


def payee_info(row: Remittance) -> documents.RemittanceInfo:
    return documents.RemittanceInfo(
        row.id,
        row.am_number,
        row.creditor_name,
        row.end_to_end_id,
        row.amount,
        row.iban_hint,
        row.bic,
    )


def invoices_of(
    session: Session, run_id: uuid.UUID, remittance_id: uuid.UUID | None = None
) -> Iterator[tuple[uuid.UUID, list[documents.InvoiceRow]]]:
    """Per remittance of the run (or the one given): its invoices and their lines, in order.
    One streamed query, whatever the run's size; ids, dates and times are read as the driver
    gives them and written as text (a run reads a million lines: no object per value)."""
    query: Select[Any] = (
        select(
            type_coerce(_ITEMS.c.remittance_id, String),
            type_coerce(_INVOICES.c.id, String),
            _INVOICES.c.invoice_number,
            _INVOICES.c.outcome,
            type_coerce(_INVOICES.c.submitted_at, String),
            _ITEMS.c.amount,
            _LINES.c.position,
            _LINES.c.act_code,
            _LINES.c.domain,
            type_coerce(_LINES.c.care_date, String),
            _LINES.c.quantity,
            _LINES.c.billed,
            _LINES.c.amc_amount,
            _LINES.c.accepted,
            _LINES.c.reject_codes,
        )
        .join(_INVOICES, _INVOICES.c.id == _ITEMS.c.invoice_id)
        .join(_LINES, _LINES.c.invoice_id == _INVOICES.c.id)
        .where(_ITEMS.c.run_id == run_id)
        .order_by(
            _ITEMS.c.remittance_id, _INVOICES.c.submitted_at, _INVOICES.c.id, _LINES.c.position
        )
    )
    if remittance_id is not None:
        query = query.where(_ITEMS.c.remittance_id == remittance_id)
    rows = session.connection().execution_options(yield_per=_STREAM).execute(query)
    line = documents.LineRow
    for rid, group in itertools.groupby(rows, key=itemgetter(0)):
        invoices = []
        for (invoice_id, number, outcome, submitted, amount), lines in itertools.groupby(
            group, key=itemgetter(1, 2, 3, 4, 5)
        ):
            invoices.append(
                documents.InvoiceRow(
                    uuid_text(invoice_id),
                    number,
                    outcome,
                    instant_text(submitted),
                    amount,
                    [
                        line(p, act, dom, date_text(day), q, billed, paid, bool(ok), codes)
                        for _, _, _, _, _, _, p, act, dom, day, q, billed, paid, ok, codes in lines
                    ],
                )
            )
        yield uuid.UUID(uuid_text(rid)), invoices


# Values read without the ORM's types (``type_coerce(..., String)``): SQLite gives its stored text,
# PostgreSQL's driver its own objects. Both become the text the documents show.


def uuid_text(value: Any) -> str:
    """``3f2a…`` (SQLite keeps 32 hex digits) or a UUID: the canonical form with hyphens."""
    if isinstance(value, str):
        if len(value) == 32:
            return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
        return value
    return str(value)


def date_text(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def instant_text(value: Any) -> str:
    """An instant in UTC, to the second: ``2026-03-10T09:00:00+00:00``."""
    if isinstance(value, str):  # SQLite: "YYYY-MM-DD HH:MM:SS.ffffff", in UTC
        return f"{value[:10]}T{value[11:19]}+00:00"
    moment: datetime = value
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def document(
    run: documents.RunInfo, row: Remittance, invoices: list[documents.InvoiceRow]
) -> dict[str, Any]:
    """The advice of ``row``; its invoices must add up to its transfer (else stored data was
    altered: the document is refused rather than shown wrong)."""
    try:
        return documents.remittance(run, payee_info(row), invoices)
    except ValueError:
        raise IntegrityFailure(
            f"remittances row {row.id}: its invoices do not add up to its amount"
        ) from None


# --- reading back -------------------------------------------------------------------------------


def list_remittances(
    platform: Platform, caller: Principal, limit: int = 50
) -> list[RemittanceSummary]:
    """The caller's remittances, newest run first (closed runs only)."""
    with transaction(platform.sessions) as session:
        rows = session.execute(
            select(Remittance, PaymentRun)
            .join(PaymentRun, PaymentRun.id == Remittance.run_id)
            .where(
                Remittance.professional_id == _professional_of(caller),
                PaymentRun.status == "closed",
            )
            .order_by(PaymentRun.number.desc())
            .limit(limit)
        ).all()
        found = []
        for remittance, run in rows:
            journal.check_row(session, remittance)
            found.append(
                RemittanceSummary(
                    remittance.id,
                    rules.run_reference(run.number),
                    run.run_date,
                    run.execution_date,
                    remittance.end_to_end_id,
                    remittance.amount,
                    remittance.invoices,
                    remittance.lines,
                )
            )
        return found


def get_remittance(
    platform: Platform, caller: Principal, remittance_id: uuid.UUID
) -> dict[str, Any]:
    """One of the caller's remittance advices, as the run wrote it."""
    with transaction(platform.sessions) as session:
        return _document(session, _owned(session, caller, remittance_id))


def remittance_for(platform: Platform, run_number: int, am_number: str) -> dict[str, Any]:
    """The advice of a professional in a run, for the operator's CLI."""
    with transaction(platform.sessions) as session:
        row = session.scalar(
            select(Remittance)
            .join(PaymentRun, PaymentRun.id == Remittance.run_id)
            .where(PaymentRun.number == run_number, Remittance.am_number == am_number)
        )
        if row is None:
            raise NotFound("this professional has no remittance in this run")
        return _document(session, row)


def _document(session: Session, row: Remittance) -> dict[str, Any]:
    journal.check_row(session, row)
    run = session.get(PaymentRun, row.run_id)
    assert run is not None
    journal.check_row(session, run)
    invoices = next((found for _, found in invoices_of(session, run.id, row.id)), [])
    return document(run_info(run), row, invoices)


def _owned(session: Session, caller: Principal, remittance_id: uuid.UUID) -> Remittance:
    row = session.get(Remittance, remittance_id)
    run = session.get(PaymentRun, row.run_id) if row is not None else None
    if (
        row is None
        or run is None
        or row.professional_id != _professional_of(caller)
        or run.status != "closed"
    ):
        raise NotFound("no such remittance")  # another's is not found: no oracle of ids
    return row


def _professional_of(caller: Principal) -> uuid.UUID:
    if caller.professional_id is None:
        raise NotFound("no such remittance")
    return caller.professional_id


# --- PDF ----------------------------------------------------------------------------------------


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("rempart.payments", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["euros"] = lambda amount: f"{amount.replace('.', ',')} €"
    return environment


def render_html(doc: dict[str, Any]) -> str:
    return _templates().get_template("remittance.html.j2").render(doc=doc)


def render_pdf(doc: dict[str, Any]) -> bytes:
    """The advice as a PDF, for people (software reads the JSON)."""
    from weasyprint import HTML  # loads Pango: paid by the requests that render PDFs only

    pdf: bytes = HTML(string=render_html(doc)).write_pdf()
    return pdf
