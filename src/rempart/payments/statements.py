"""Settlement with the insurers: what each run advanced for an insurer's members, claim by
claim, and how it is recovered: a SEPA core direct debit under the insurer's mandate, or an
invoice when it gave none.

An insurer's account is a company's, printed on its letters: it is kept in clear, under the row
MAC (a changed account or mandate is detected like any altered row) and set by an operator only,
on the record.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, String, select, type_coerce
from sqlalchemy.orm import Session

from rempart.claims.models import Invoice
from rempart.dates import paris_day
from rempart.db import table_of, transaction, utcnow
from rempart.errors import IntegrityFailure, InvalidInput, NotFound
from rempart.identifiers import InvalidIdentifier, validate_bic, validate_iban
from rempart.identity.auth import Principal
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.payments import documents, rules
from rempart.payments.models import DebitMandate, PaymentItem, PaymentRun, Remittance, Settlement
from rempart.payments.remittance import instant_text, run_info, uuid_text
from rempart.platform import Platform
from rempart.registry.models import Tenant

_INVOICES = table_of(Invoice)
_ITEMS = table_of(PaymentItem)
_REMITTANCES = table_of(Remittance)
_STREAM = 5_000


@dataclass(frozen=True)
class MandateView:
    amc_number: str
    mandate_id: str
    signed_on: date
    iban: str
    bic: str


@dataclass(frozen=True)
class StatementSummary:
    id: uuid.UUID
    run_reference: str
    run_date: date
    collection_date: date
    method: str  # direct_debit | invoice
    end_to_end_id: str | None
    amount: int
    claims: int
    lines: int


def set_mandate(
    platform: Platform,
    amc_number: str,
    mandate_id: str,
    signed_on: date,
    iban: str,
    bic: str,
    actor: str,
) -> MandateView:
    """Record (or replace) the insurer's direct-debit mandate; runs use it from their next one."""
    try:
        iban = validate_iban(iban)
    except InvalidIdentifier as exc:
        raise InvalidInput(exc.reason, field="iban") from None
    try:
        bic = validate_bic(bic)
    except InvalidIdentifier as exc:
        raise InvalidInput(exc.reason, field="bic") from None
    if iban[:2] not in rules.SEPA_COUNTRIES:
        raise InvalidInput("the account must be in a country of the SEPA schemes", field="iban")
    if rules.clean_reference(mandate_id) != mandate_id or len(mandate_id) > 35:
        raise InvalidInput(
            "a mandate reference is 1 to 35 characters of the SEPA set, without spaces",
            field="mandate_id",
        )
    now = utcnow()
    if signed_on > paris_day(now):
        raise InvalidInput("a mandate is signed today or before", field="signed_on")
    with transaction(platform.sessions) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc_number))
        if tenant is None:
            raise NotFound(f"no insurer with AMC number {amc_number}")
        row = session.scalar(select(DebitMandate).where(DebitMandate.tenant_id == tenant.id))
        if row is None:
            row = DebitMandate(tenant_id=tenant.id)
            session.add(row)
        else:
            journal.check_row(session, row)
        row.mandate_id, row.signed_on, row.iban, row.bic = mandate_id, signed_on, iban, bic
        row.set_by, row.set_at = actor, now
        append_events(
            session,
            [
                AccessEvent(
                    at=now,
                    tag=Tag.DEBIT_MANDATE_SET,
                    actor=actor,
                    outcome="set",
                    purpose=f"debit mandate {mandate_id} of {amc_number}",
                    tenant=amc_number,
                )
            ],
        )
    return MandateView(amc_number, mandate_id, signed_on, iban, bic)


def mandates_for(
    session: Session, tenant_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, DebitMandate], list[uuid.UUID]]:
    """The insurers' mandates whose rows pass their MAC check (in the run's transaction), and
    the insurers whose mandate row does not."""
    rows = session.scalars(select(DebitMandate).where(DebitMandate.tenant_id.in_(tenant_ids)))
    found, altered = {}, []
    for row in rows:
        try:
            journal.check_row(session, row)
        except IntegrityFailure:
            altered.append(row.tenant_id)
            continue
        found[row.tenant_id] = row
    return found, altered


def settlement_info(row: Settlement) -> documents.SettlementInfo:
    return documents.SettlementInfo(
        row.id, row.amc_number, row.debtor_name, row.amount, row.end_to_end_id, row.mandate_id
    )


def claims_of(
    session: Session, run_id: uuid.UUID, settlement_id: uuid.UUID | None = None
) -> Iterator[tuple[uuid.UUID, list[documents.ClaimRow]]]:
    """Per settlement of the run (or the one given): its claims, in order; streamed."""
    query: Select[Any] = (
        select(
            type_coerce(_ITEMS.c.settlement_id, String),
            type_coerce(_INVOICES.c.id, String),
            _REMITTANCES.c.am_number,
            _INVOICES.c.invoice_number,
            type_coerce(_INVOICES.c.submitted_at, String),
            _INVOICES.c.pseudonym,
            _ITEMS.c.lines,
            _ITEMS.c.amount,
        )
        .join(_INVOICES, _INVOICES.c.id == _ITEMS.c.invoice_id)
        .join(_REMITTANCES, _REMITTANCES.c.id == _ITEMS.c.remittance_id)
        .where(_ITEMS.c.run_id == run_id, _ITEMS.c.settlement_id.is_not(None))
        .order_by(_ITEMS.c.settlement_id, _INVOICES.c.submitted_at, _INVOICES.c.id)
    )
    if settlement_id is not None:
        query = query.where(_ITEMS.c.settlement_id == settlement_id)
    rows = session.connection().execution_options(yield_per=_STREAM).execute(query)
    claim = documents.ClaimRow
    for sid, group in itertools.groupby(rows, key=itemgetter(0)):
        claims = [
            claim(uuid_text(i), am, number, instant_text(at), who, n, amount)
            for _, i, am, number, at, who, n, amount in group
        ]
        yield uuid.UUID(uuid_text(sid)), claims


def document(
    run: documents.RunInfo, row: Settlement, claims: list[documents.ClaimRow]
) -> dict[str, Any]:
    try:
        return documents.statement(run, settlement_info(row), claims)
    except ValueError:
        raise IntegrityFailure(
            f"settlements row {row.id}: its claims do not add up to its amount"
        ) from None


# --- reading back (insurers) --------------------------------------------------------------------


def list_statements(
    platform: Platform, caller: Principal, limit: int = 50
) -> list[StatementSummary]:
    """The caller's insurer's statements, newest run first (closed runs only)."""
    with transaction(platform.sessions) as session:
        rows = session.execute(
            select(Settlement, PaymentRun)
            .join(PaymentRun, PaymentRun.id == Settlement.run_id)
            .where(Settlement.tenant_id == _tenant_of(caller), PaymentRun.status == "closed")
            .order_by(PaymentRun.number.desc())
            .limit(limit)
        ).all()
        found = []
        for settlement, run in rows:
            journal.check_row(session, settlement)
            found.append(
                StatementSummary(
                    settlement.id,
                    rules.run_reference(run.number),
                    run.run_date,
                    run.collection_date,
                    "direct_debit" if settlement.end_to_end_id else "invoice",
                    settlement.end_to_end_id,
                    settlement.amount,
                    settlement.invoices,
                    settlement.lines,
                )
            )
        return found


def get_statement(
    platform: Platform, caller: Principal, settlement_id: uuid.UUID
) -> dict[str, Any]:
    """One of the caller's insurer's statements, as the run wrote it."""
    with transaction(platform.sessions) as session:
        row = session.get(Settlement, settlement_id)
        run = session.get(PaymentRun, row.run_id) if row is not None else None
        if (
            row is None
            or run is None
            or row.tenant_id != _tenant_of(caller)
            or run.status != "closed"
        ):
            raise NotFound("no such statement")
        journal.check_row(session, row)
        journal.check_row(session, run)
        claims = next((found for _, found in claims_of(session, run.id, row.id)), [])
        return document(run_info(run), row, claims)


def _tenant_of(caller: Principal) -> uuid.UUID:
    if caller.tenant_id is None:
        raise NotFound("no such statement")
    return caller.tenant_id
