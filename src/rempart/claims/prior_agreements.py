"""Prior agreements (PEC, flow 5 of DOMAIN.md): a quote valued, agreed per line, its renewals
reserved; used once by an invoice, which is then paid at most what was agreed.

The rules, in docs/prior-agreements.md:

- **Valuing.** The quote's lines are valued by the adjudication engine, as an invoice's would be,
  with ``Context.for_prior_agreement`` (no agreement is required yet) and against the patient's
  counters. A line of a domain whose guarantee needs no agreement is refused (``INVALID_LINE``:
  invoice it directly). The agreement is granted when a line is not refused and is agreed for
  more than 0.00; only granted agreements are stored.
- **Reservation.** A granted agreement reserves the renewal counters its lines use (one
  equipment or item per period), never ceiling amounts: DOMAIN.md says a PEC "reserves renewal
  counters", and an amount reserved by an agreement that is never used would deprive the patient
  of the rest of a yearly ceiling for six months. Requests for one patient run one after the
  other (``state.lock``, as invoices do): of two requests for the same equipment, the second sees
  the first's reservation and is refused ``RENEWAL_TOO_SOON``.
- **Validity.** From the day it is granted to ``VALIDITY_MONTHS`` later, both included: the care
  dates of its lines and of the invoice lines that use it, and the day it is quoted, must be
  within it. An expired agreement reserves nothing any more (``state.load``).
- **Matching** (``match_lines``): an invoice line uses an agreed line of the same domain, act code
  and item type, each agreed line once, in line order; its amount is capped at the agreed one.
- **Consumption** (``consumes``): the first invoice of the same professional and patient that
  quotes the agreement while it is valid and is paid on a line it matched uses it up; the
  agreement's reservation is released and the invoice's own renewal use replaces it. Cancelling
  that invoice gives the agreement back, reservation included (``restore``).
- **References** are ``PA`` and 24 base32 characters: an HMAC (under a platform secret) of the
  agreement's random id, the professional and the patient. They cannot be guessed or forged,
  never begin with ``E1`` (engagement numbers do: the FHIR facade tells them apart so), and bind
  the agreement to whom it was granted: anyone else quoting it gets ``PRIOR_AGREEMENT_INVALID``.

The pure rules come first; the services below them own their transactions.
"""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from rempart import cursors
from rempart.claims import state
from rempart.claims.engine import (
    Adjudication,
    Beneficiary,
    Context,
    Line,
    LineResult,
    Reject,
    add_months,
    adjudicate,
)
from rempart.claims.models import PriorAgreement, PriorAgreementLine, as_line
from rempart.dates import paris_day
from rempart.db import table_of, transaction, utcnow
from rempart.errors import Conflict, Error, Forbidden, InvalidInput, NotFound
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.plan_format import DOMAINS, Plan
from rempart.registry.rights import Period, period_on
from rempart.rights.services import Card, Found, find_insured

VALIDITY_MONTHS = 6
REFERENCE_PREFIX = "PA"  # never "E1", the engagement numbers' prefix
REFERENCE_KEY = "agreement"  # the platform secret of references (10 characters at most)
MAX_REFERENCE = 40  # as stored, and as invoices and calculations take it
GRANTED, CONSUMED, CANCELLED = "granted", "consumed", "cancelled"
FIELDS = ("amc_amount", "reject_codes")
# What the professional's own page of an agreement shows of its lines, besides what was agreed.
DETAIL_FIELDS = ("act_code", "care_date", "billed", "amc_amount", "reject_codes")
MAX_PAGE = 100
_REFERENCE_INPUT = b"prior-agreement\x1f"
_AGREEMENTS = table_of(PriorAgreement)
_LINES = table_of(PriorAgreementLine)


# --- pure rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreedLine:
    """A line of an agreement that was agreed, and the AMC cents agreed for it."""

    domain: str
    act_code: str
    item_type: str | None
    amount: int

    def fits(self, line: Line) -> bool:
        """The same care: domain, act code and item type (a frame is not a lens)."""
        return (line.domain, line.act_code, line.item_type) == (
            self.domain,
            self.act_code,
            self.item_type,
        )


@dataclass(frozen=True)
class Agreement:
    """A stored agreement, as invoices and calculations quoting it need it."""

    id: uuid.UUID
    professional_id: uuid.UUID
    beneficiary_id: uuid.UUID
    status: str
    valid_from: date
    valid_until: date
    lines: tuple[AgreedLine, ...]

    def usable(self, professional_id: uuid.UUID, beneficiary_id: uuid.UUID, today: date) -> bool:
        """Granted (neither consumed nor cancelled), to this professional for this patient, and
        quoted on or before its last day."""
        return (
            self.status == GRANTED
            and self.professional_id == professional_id
            and self.beneficiary_id == beneficiary_id
            and today <= self.valid_until
        )


def valid_until(granted_on: date) -> date:
    """The last day of an agreement granted on ``granted_on``: six months later."""
    return add_months(granted_on, VALIDITY_MONTHS)


def match_lines(
    lines: Sequence[Line], agreed: Sequence[AgreedLine], first: date, last: date
) -> dict[int, int]:
    """Invoice line index -> agreed cents. In line order, each invoice line whose care date is
    within [first, last] takes the first agreed line not yet taken that ``fits`` it; each agreed
    line is taken once (two lenses agreed, two lenses billed; a third lens is not agreed)."""
    taken = [False] * len(agreed)
    found: dict[int, int] = {}
    for index, line in enumerate(lines):
        if not first <= line.care_date <= last:
            continue
        for position, candidate in enumerate(agreed):
            if not taken[position] and candidate.fits(line):
                taken[position] = True
                found[index] = candidate.amount
                break
    return found


def agreed_amounts(
    agreement: Agreement | None,
    professional_id: uuid.UUID,
    beneficiary_id: uuid.UUID | None,
    lines: Sequence[Line],
    today: date,
) -> dict[int, int] | None:
    """What ``Context.prior_agreement`` gets for ``lines`` quoting ``agreement``; None when the
    agreement is unknown, not usable by this professional for this patient, or expired."""
    if agreement is None or beneficiary_id is None:
        return None
    if not agreement.usable(professional_id, beneficiary_id, today):
        return None
    return match_lines(lines, agreement.lines, agreement.valid_from, agreement.valid_until)


def consumes(agreed: Mapping[int, int], results: Sequence[LineResult]) -> bool:
    """An invoice uses the agreement up when a line it matched is paid (not refused): an invoice
    refused on every agreed line (rights closed, a duplicate...) leaves the agreement usable."""
    return any(not results[index].rejected for index in agreed)


def reference_of(
    key: bytes, agreement_id: uuid.UUID, professional_id: uuid.UUID, beneficiary_id: uuid.UUID
) -> str:
    """``PA`` + base32 of 120 bits of HMAC-SHA-256 over the agreement, professional and patient."""
    message = _REFERENCE_INPUT + agreement_id.bytes + professional_id.bytes + beneficiary_id.bytes
    digest = hmac.digest(key, message, "sha256")[:15]
    return REFERENCE_PREFIX + base64.b32encode(digest).decode()


def only_agreements(
    lines: Sequence[Line],
    adjudication: Adjudication,
    periods: Sequence[Period],
    plan_for: Callable[[str, date], Plan | None],
) -> tuple[tuple[LineResult, ...], dict[str, date]]:
    """The results of a quote, with the lines of domains that need no agreement refused, and the
    renewals the agreement reserves (those of its other lines).

    Set aside after valuing, not before: a domain's lines share caps and counters with the lines
    of that domain only, and a domain either needs an agreement under a plan version or does not.
    """
    results = list(adjudication.lines)
    refused: set[str] = set()
    for index, (line, result) in enumerate(zip(lines, results, strict=True)):
        if result.rejected or line.domain not in DOMAINS:
            continue
        period = period_on(periods, line.care_date)
        plan = plan_for(period.plan_code, line.care_date) if period else None
        guarantee = plan.guarantee(line.domain) if plan else None
        if guarantee is not None and not guarantee.prior_agreement:
            code = Reject.INVALID_LINE
            reason = f"{line.domain} needs no prior agreement under this plan: invoice it directly"
            results[index] = LineResult(0, result.amo_amount, (code,), f"{code}: {reason}.")
            refused.add(line.domain)
    renewals = {
        key: day
        for key, day in adjudication.renewals.items()
        if key.split(":", 1)[0] not in refused
    }
    return tuple(results), renewals


# --- what the services answer -------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementView:
    """An agreement as answered: ``status`` granted, consumed, cancelled, expired, or rejected
    (nothing agreed: no reference, nothing stored)."""

    reference: str | None
    status: str
    valid_from: date | None
    valid_until: date | None
    lines: tuple[LineResult, ...]
    total_amc: int


@dataclass(frozen=True)
class Page:
    """A page of agreements, newest first; ``next`` is the cursor of the next page, if any."""

    agreements: tuple[AgreementView, ...]
    next: str | None


@dataclass(frozen=True)
class AgreementRecord:
    """One agreement as its professional sees it: the answer, the quote's lines as sent, when
    it was granted and the invoice that used it, if any."""

    view: AgreementView
    quoted: tuple[Line, ...]
    created_at: datetime
    consumed_by: uuid.UUID | None


# --- services -----------------------------------------------------------------------------------


def request_prior_agreement(
    platform: Platform,
    quotas: Quotas,
    caller: Principal,
    card: Card,
    lines: Sequence[Line],
    client: Client,
) -> AgreementView:
    """Value a quote and, when a line is agreed, store the agreement and reserve its renewals,
    with its access event, in one transaction."""
    if caller.professional_id is None or caller.profession is None:
        raise Forbidden("this professional may not bill")
    now = utcnow()
    today = paris_day(now)
    check_quote_dates([line.care_date for line in lines], today)
    refusal: Error | None = None
    with transaction(platform.sessions) as session:
        state.lock(session, ())  # SQLite: the write lock before the first read
        found = find_insured(platform, session, quotas, caller, card, client)
        if found.refusal is not None:
            # Refused, but on the record: committed before the refusal is raised (the guard's
            # decisions are written in this transaction too).
            refusal = found.refusal
            event = _event(Tag.PRIOR_AGREEMENT_CREATED, caller, client, now, found.outcome)
            append_events(session, [event])
        else:
            view = _grant(session, platform, caller, card, lines, found, client, now, today)
    if refusal is not None:
        raise refusal
    return view


def check_quote_dates(days: Iterable[date], today: date) -> None:
    """A prior agreement is asked before the care: care dates from today to its last day."""
    last = valid_until(today)
    if any(not today <= day <= last for day in days):
        raise InvalidInput(
            f"must be from today to the end of the agreement's validity ({VALIDITY_MONTHS} months)",
            field="care_date",
        )


def _grant(
    session: Session,
    platform: Platform,
    caller: Principal,
    card: Card,
    lines: Sequence[Line],
    found: Found,
    client: Client,
    now: datetime,
    today: date,
) -> AgreementView:
    assert caller.professional_id is not None
    assert caller.profession is not None
    insured = found.insured
    plans: dict[tuple[str, date], Plan | None] = {}

    def plan_for(code: str, day: date) -> Plan | None:
        if insured is None:
            return None
        if (code, day) not in plans:
            plans[(code, day)] = lookups.plan_in_force(session, insured.tenant_id, code, day)
        return plans[(code, day)]

    counters = state.State()
    if insured is not None:
        state.lock(session, [insured.beneficiary_id.bytes])
        days = [line.care_date for line in lines]
        counters = state.load(session, [insured.beneficiary_id], days, today)[
            insured.beneficiary_id
        ]
    periods = insured.periods if insured else ()
    context = Context(
        # An unknown card is valued as a person without rights: the same answer, to the byte,
        # as closed rights (no membership oracle); the ledger records which it was.
        beneficiary=Beneficiary(
            card.birth_date, periods, counters.bookings_for(lines), counters.last_renewal(lines)
        ),
        profession=caller.profession,
        plan_for=plan_for,
        for_prior_agreement=True,
    )
    results, renewals = only_agreements(lines, adjudicate(lines, context), periods, plan_for)
    # Something to agree: a line not refused, for more than nothing (a yearly ceiling used up
    # leaves CEILING_REACHED lines at 0.00, which would reserve the renewal for no money).
    granted = insured is not None and any(not r.rejected and r.amc_amount > 0 for r in results)
    if insured is None or not granted:
        outcome = "rejected" if insured else "unknown"
        event = _event(
            Tag.PRIOR_AGREEMENT_CREATED,
            caller,
            client,
            now,
            outcome,
            tenant=card.amc_number if found.tenant_known else None,
            beneficiary=insured.pseudonym if insured else None,
            fields=FIELDS if insured else ("reject_codes",),
        )
        append_events(session, [event])
        return AgreementView(None, "rejected", None, None, results, 0)
    agreement_id = uuid.uuid4()
    key = platform.keyring.platform_secret(session, REFERENCE_KEY)
    reference = reference_of(key, agreement_id, caller.professional_id, insured.beneficiary_id)
    total = sum(result.amc_amount for result in results if not result.rejected)
    last = valid_until(today)
    journal.insert_rows(
        session,
        _AGREEMENTS,
        [
            {
                "id": agreement_id,
                "reference": reference,
                "professional_id": caller.professional_id,
                "beneficiary_id": insured.beneficiary_id,
                "amc_number": card.amc_number,
                "pseudonym": insured.pseudonym,
                "status": GRANTED,
                "total_amc": total,
                "valid_from": today,
                "valid_until": last,
                "reserved": _encode_reserved(renewals),
                "created_by": caller.actor,
                "created_at": now,
                "cancelled_at": None,
                "consumed_at": None,
                "consumed_by": None,
            }
        ],
    )
    journal.insert_rows(
        session,
        _LINES,
        [
            {
                "id": uuid.uuid4(),
                "agreement_id": agreement_id,
                "position": position,
                **vars(line),
                "amc_amount": result.amc_amount if not result.rejected else 0,
                "amo_amount": result.amo_amount,
                "reject_codes": ";".join(result.reject_codes),
                "explanation": result.explanation,
                "agreed": not result.rejected,
            }
            for position, (line, result) in enumerate(zip(lines, results, strict=True))
        ],
    )
    state.book(session, [_reservation(insured.beneficiary_id, agreement_id, renewals)], now)
    event = _event(
        Tag.PRIOR_AGREEMENT_CREATED,
        caller,
        client,
        now,
        GRANTED,
        purpose=f"prior-agreement {agreement_id}",
        tenant=card.amc_number,
        beneficiary=insured.pseudonym,
        fields=FIELDS,
    )
    append_events(session, [event])
    return AgreementView(reference, GRANTED, today, last, results, total)


def get_prior_agreement(
    platform: Platform, caller: Principal, reference: str, client: Client
) -> AgreementView:
    """One of the caller's agreements, as it stands (another professional's is not found)."""
    now = utcnow()
    with transaction(platform.sessions) as session:
        state.lock(session, ())  # SQLite: this transaction writes the access event
        row = _owned(session, caller, reference)
        view = _views(session, [row], paris_day(now))[0]
        append_events(session, [_read_event(caller, client, now, row)])
    return view


def read_prior_agreement(
    platform: Platform, caller: Principal, reference: str, client: Client
) -> AgreementRecord:
    """``get_prior_agreement`` with the quote's lines as sent (act, care date, amounts): the
    professional portal's page of an agreement. The read is recorded as ``get_prior_agreement``'s,
    naming the fields shown."""
    now = utcnow()
    with transaction(platform.sessions) as session:
        state.lock(session, ())  # SQLite: this transaction writes the access event
        row = _owned(session, caller, reference)
        view = _views(session, [row], paris_day(now))[0]
        stored = session.scalars(
            select(PriorAgreementLine)
            .where(PriorAgreementLine.agreement_id == row.id)
            .order_by(PriorAgreementLine.position)
        ).all()
        quoted = tuple(as_line(line) for line in stored)  # checked by _views
        event = _read_event(caller, client, now, row)
        append_events(session, [replace(event, fields=DETAIL_FIELDS)])
    return AgreementRecord(view, quoted, row.created_at, row.consumed_by)


def list_prior_agreements(
    platform: Platform, caller: Principal, client: Client, limit: int, before: str | None
) -> Page:
    """The caller's agreements, newest first, ``limit`` at most, after the cursor ``before``."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", field="limit")
    cursor = cursors.decode(before) if before else None
    now = utcnow()
    with transaction(platform.sessions) as session:
        state.lock(session, ())  # SQLite: this transaction writes the access events
        query = select(PriorAgreement).where(
            PriorAgreement.professional_id == caller.professional_id
        )
        if cursor is not None:
            at, last_id = cursor
            query = query.where(
                or_(
                    PriorAgreement.created_at < at,
                    and_(PriorAgreement.created_at == at, PriorAgreement.id < last_id),
                )
            )
        rows = session.scalars(
            query.order_by(PriorAgreement.created_at.desc(), PriorAgreement.id.desc()).limit(
                limit + 1
            )
        ).all()
        more, rows = len(rows) > limit, rows[:limit]
        for row in rows:
            journal.check_row(session, row)
        views = _views(session, rows, paris_day(now))
        # Each agreement listed is a read of its patient's data: one event each.
        append_events(session, [_read_event(caller, client, now, row) for row in rows])
    next_cursor = cursors.encode(rows[-1].created_at, rows[-1].id) if more and rows else None
    return Page(tuple(views), next_cursor)


def cancel_prior_agreement(
    platform: Platform, caller: Principal, reference: str, client: Client
) -> AgreementView:
    """Cancel a granted agreement: its renewal reservations are released at once."""
    now = utcnow()
    today = paris_day(now)
    with transaction(platform.sessions) as session:
        state.lock(session, ())  # SQLite: the write lock before the first read
        found = _owned(session, caller, reference)
        state.lock(session, [found.beneficiary_id.bytes])  # as invoices that might consume it
        # Read again under a row lock: of two cancels at once, the second sees the first's.
        row = session.get(PriorAgreement, found.id, with_for_update=True, populate_existing=True)
        assert row is not None
        journal.check_row(session, row)
        if row.status == CANCELLED:
            raise Conflict("this prior agreement is already cancelled")
        if row.status == CONSUMED:
            raise Conflict("an invoice used this prior agreement: cancel the invoice first")
        if row.valid_until < today:
            raise Conflict("this prior agreement has expired: it holds nothing any more")
        row.status, row.cancelled_at = CANCELLED, now
        state.release(session, state.PRIOR_AGREEMENT, row.id)
        view = _views(session, [row], today)[0]
        event = _event(
            Tag.PRIOR_AGREEMENT_CANCELLED,
            caller,
            client,
            now,
            CANCELLED,
            purpose=f"prior-agreement {row.id}",
            tenant=row.amc_number,
            beneficiary=row.pseudonym,
            fields=("status",),
        )
        append_events(session, [event])
    return view


# --- what invoices and calculations call, in their transaction ----------------------------------


def quoted(session: Session, references: Iterable[str | None]) -> dict[str, Agreement]:
    """The stored agreements these references name (each checked against its MAC), by
    reference; unknown references are absent."""
    wanted = sorted({r for r in references if r and len(r) <= MAX_REFERENCE})
    if not wanted:
        return {}
    rows = session.scalars(select(PriorAgreement).where(PriorAgreement.reference.in_(wanted))).all()
    agreed: dict[uuid.UUID, list[AgreedLine]] = {row.id: [] for row in rows}
    if rows:
        lines = session.scalars(
            select(PriorAgreementLine)
            .where(
                PriorAgreementLine.agreement_id.in_(list(agreed)),
                PriorAgreementLine.agreed.is_(True),
            )
            .order_by(PriorAgreementLine.agreement_id, PriorAgreementLine.position)
        ).all()
        for line in lines:
            journal.check_row(session, line)
            agreed[line.agreement_id].append(
                AgreedLine(line.domain, line.act_code, line.item_type, line.amc_amount)
            )
    found = {}
    for row in rows:
        journal.check_row(session, row)
        found[row.reference] = Agreement(
            row.id,
            row.professional_id,
            row.beneficiary_id,
            row.status,
            row.valid_from,
            row.valid_until,
            tuple(agreed[row.id]),
        )
    return found


def consume(session: Session, used: Sequence[tuple[uuid.UUID, uuid.UUID]], now: datetime) -> None:
    """Mark agreements used by invoices (agreement id, invoice id) and release their
    reservations: each invoice booked its own renewal use instead. Call it once the invoices
    are written (``consumed_by`` refers to them)."""
    if not used:
        return
    changes = [
        {"id": agreement, "status": CONSUMED, "consumed_by": invoice, "consumed_at": now}
        for agreement, invoice in used
    ]
    journal.update_rows(session, _AGREEMENTS, changes)
    for agreement, _ in used:
        state.release(session, state.PRIOR_AGREEMENT, agreement)


def restore(session: Session, invoice_id: uuid.UUID, now: datetime) -> None:
    """The invoice ``invoice_id`` is cancelled: the agreement it used, if any, is granted again
    and reserves its renewals again (the caller holds the patient's lock)."""
    row = session.scalar(
        select(PriorAgreement).where(PriorAgreement.consumed_by == invoice_id).with_for_update()
    )
    if row is None:
        return
    journal.check_row(session, row)
    row.status, row.consumed_at, row.consumed_by = GRANTED, None, None
    reserved = {key: date.fromisoformat(day) for key, day in json.loads(row.reserved).items()}
    state.book(session, [_reservation(row.beneficiary_id, row.id, reserved)], now)


# --- helpers ------------------------------------------------------------------------------------


def _reservation(
    beneficiary_id: uuid.UUID, agreement_id: uuid.UUID, renewals: Mapping[str, date]
) -> state.Booked:
    reservation = Adjudication(lines=(), total_amc=0, bookings={}, renewals=dict(renewals))
    return state.Booked(beneficiary_id, reservation, state.PRIOR_AGREEMENT, agreement_id)


def _encode_reserved(renewals: Mapping[str, date]) -> str:
    return json.dumps({key: day.isoformat() for key, day in sorted(renewals.items())})


def _owned(session: Session, caller: Principal, reference: str) -> PriorAgreement:
    """The caller's agreement, checked against its MAC; another professional's is "not found"
    exactly as a reference that does not exist (no oracle of which references exist)."""
    row = None
    if len(reference) <= MAX_REFERENCE:
        row = session.scalar(select(PriorAgreement).where(PriorAgreement.reference == reference))
    if row is None or row.professional_id != caller.professional_id:
        raise NotFound("no such prior agreement")
    journal.check_row(session, row)
    return row


def _views(session: Session, rows: Sequence[PriorAgreement], today: date) -> list[AgreementView]:
    ids = [row.id for row in rows]
    lines: dict[uuid.UUID, list[LineResult]] = {row_id: [] for row_id in ids}
    if ids:
        stored = session.scalars(
            select(PriorAgreementLine)
            .where(PriorAgreementLine.agreement_id.in_(ids))
            .order_by(PriorAgreementLine.agreement_id, PriorAgreementLine.position)
        ).all()
        for line in stored:
            journal.check_row(session, line)
            codes = tuple(filter(None, line.reject_codes.split(";")))
            lines[line.agreement_id].append(
                LineResult(line.amc_amount, line.amo_amount, codes, line.explanation)
            )
    return [
        AgreementView(
            row.reference,
            status_of(row, today),
            row.valid_from,
            row.valid_until,
            tuple(lines[row.id]),
            row.total_amc,
        )
        for row in rows
    ]


def status_of(row: PriorAgreement, today: date) -> str:
    """As answered: a granted agreement past its last day is ``expired``."""
    if row.status == GRANTED and row.valid_until < today:
        return "expired"
    return row.status


def _read_event(
    caller: Principal, client: Client, now: datetime, row: PriorAgreement
) -> AccessEvent:
    return _event(
        Tag.PRIOR_AGREEMENT_READ,
        caller,
        client,
        now,
        "read",
        purpose=f"prior-agreement {row.id}",
        tenant=row.amc_number,
        beneficiary=row.pseudonym,
        fields=FIELDS,
    )


def _event(
    tag: Tag,
    caller: Principal,
    client: Client,
    at: datetime,
    outcome: str,
    purpose: str = "prior-agreement",
    tenant: str | None = None,
    beneficiary: str | None = None,
    fields: tuple[str, ...] = (),
) -> AccessEvent:
    return AccessEvent(
        at=at,
        tag=tag,
        actor=caller.actor,
        outcome=outcome,
        purpose=purpose,
        organisation=caller.organisation,
        tenant=tenant,
        beneficiary=beneficiary,
        fields=fields,
        ip=client.ip,
        user_agent=client.user_agent,
    )
