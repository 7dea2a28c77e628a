"""A batch of invoices, adjudicated, booked and recorded in the caller's transaction.

One path serves the API (one invoice or a batch) and file ingestion. In order, for the whole
batch:

1. the idempotency keys are locked and looked up: a key seen before answers its first answer
   again (same body) or a conflict (another body);
2. each card is counted against the caller's quotas (API only), then looked up;
3. the beneficiaries are locked (``state.lock``), and their counters, already-accepted lines and
   the prior agreements the invoices quote read once;
4. each invoice is adjudicated in the order given, against counters that include the invoices
   before it in the batch; a line already accepted for the same patient, professional, care
   date, act and amount is a ``DUPLICATE``; the lines a usable prior agreement covers are capped
   at their agreed amounts, and the invoice that is paid on one of them uses the agreement up
   (``prior_agreements``: the next invoice quoting it is paid nothing for it);
5. invoices, lines, counters, the agreements used and one access event per invoice are written
   together: an invoice is never booked without its record in the ledger, nor recorded without
   being booked.

Problems that concern one invoice of a batch (a conflict, a quota, a suspended insurer, a care
date out of range) refuse that invoice only, as a ``Refusal``.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeAlias

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.claims import prior_agreements, state
from rempart.claims.engine import Beneficiary, Line, LineResult, Reject, adjudicate
from rempart.claims.models import Invoice, InvoiceLine
from rempart.claims.services import valuation_context
from rempart.dates import paris_day
from rempart.db import table_of, utcnow
from rempart.errors import Conflict, Error, InvalidInput, Unavailable
from rempart.guard import containment
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.models import Tenant
from rempart.registry.plan_format import Plan
from rempart.rights.services import Card, admit_card, check_care_dates

IDEMPOTENCY_KEY = "idempotent"  # the platform secret of idempotency digests (10 chars max)
_INVOICES = table_of(Invoice)
_LINES = table_of(InvoiceLine)
_DUPLICATE = f"{Reject.DUPLICATE}: the same line was already accepted for this patient."
FIELDS = ("amc_amount", "reject_codes")


@dataclass(frozen=True)
class Submission:
    """One invoice as the professional sends it."""

    card: Card
    lines: tuple[Line, ...]
    invoice_number: str
    engagement: str | None = None
    prior_agreement: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Biller:
    """Who bills: the professional, and the actor recorded in the ledger."""

    professional_id: uuid.UUID
    profession: str
    organisation: str  # the billing number (n° AM)
    actor: str
    contracted: bool = True  # a professional no longer under convention is paid nothing
    caller: Principal | None = None  # an API caller's cards count against its quotas

    @classmethod
    def of(cls, caller: Principal) -> Biller:
        assert caller.professional_id is not None
        assert caller.profession is not None
        return cls(
            caller.professional_id,
            caller.profession,
            caller.organisation or "",
            caller.actor,
            caller=caller,
        )


@dataclass(frozen=True)
class InvoiceView:
    """The answer for one invoice; ``replayed``: the first answer to an idempotent retry."""

    id: uuid.UUID
    status: str
    lines: tuple[LineResult, ...]
    total_amc: int
    replayed: bool = False


@dataclass(frozen=True)
class Refusal:
    """An invoice of a batch that was not taken, and why (nothing personal in the error)."""

    error: Error


Outcome: TypeAlias = InvoiceView | Refusal


@dataclass
class Summary:
    """Counts over a batch: invoices by status, lines by reject code, what the AMCs pay."""

    accepted: int = 0
    partial: int = 0
    rejected: int = 0
    replayed: int = 0
    refused: int = 0
    total_amc: int = 0
    reject_codes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        if isinstance(outcome, Refusal):
            self.refused += 1
            return
        if outcome.replayed:
            self.replayed += 1  # counted when it was first answered
            return
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        self.total_amc += outcome.total_amc
        for line in outcome.lines:
            for code in line.reject_codes:
                self.reject_codes[code] = self.reject_codes.get(code, 0) + 1


# --- the batch --------------------------------------------------------------------------------


def process(
    session: Session,
    platform: Platform,
    items: Sequence[tuple[Biller, Submission]],
    quotas: Quotas | None,
    client: Client,
    now: datetime | None = None,
) -> list[Outcome]:
    """Adjudicate, book and record a batch of invoices in the caller's transaction."""
    now = now or utcnow()
    batch = _Batch(session, platform, quotas, client, now)
    return batch.run(items)


class _Batch:
    def __init__(
        self,
        session: Session,
        platform: Platform,
        quotas: Quotas | None,
        client: Client,
        now: datetime,
    ) -> None:
        self.session, self.platform, self.quotas = session, platform, quotas
        self.client, self.now = client, now
        self.events: list[AccessEvent] = []
        self.invoices: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.booked: list[state.Booked] = []
        self.today = paris_day(now)
        self.agreements: dict[str, prior_agreements.Agreement] = {}
        self.consumed: list[tuple[uuid.UUID, uuid.UUID]] = []  # (agreement, invoice)
        self._tenants: dict[str, Tenant | None] = {}
        self._plans: dict[tuple[uuid.UUID, str, date], Plan | None] = {}
        self._suspended: dict[uuid.UUID, bool] = {}

    def run(self, items: Sequence[tuple[Biller, Submission]]) -> list[Outcome]:
        session = self.session
        state.lock(session, ())  # SQLite: the write lock before the first read
        secret = self.platform.keyring.platform_secret(session, IDEMPOTENCY_KEY)
        keys = [_key_digest(secret, b, s) for b, s in items]
        digests = [
            _request_digest(secret, s) if k else None for k, (_, s) in zip(keys, items, strict=True)
        ]
        state.lock(session, [k for k in keys if k])
        outcomes: list[Outcome | None] = [None] * len(items)
        self._answer_retries(items, keys, digests, outcomes)
        first: dict[bytes, int] = {}
        fresh: list[int] = []
        for i, key in enumerate(keys):
            if outcomes[i] is not None:
                continue
            if key is not None and key in first:
                continue  # the same key twice in one batch: answered after the first
            if key is not None:
                first[key] = i
            fresh.append(i)
        found = self._look_up(items, fresh, outcomes)
        ids = [insured.beneficiary_id for insured in found.values() if insured]
        state.lock(session, [b.bytes for b in ids])
        days = [line.care_date for i in found for line in items[i][1].lines]
        states = state.load(session, ids, days, self.today)
        accepted = _accepted_lines(session, items, found, days)
        # Read under the patients' locks: an agreement is used once, even by invoices at once.
        self.agreements = prior_agreements.quoted(
            session, (items[i][1].prior_agreement for i, insured in found.items() if insured)
        )
        for i, insured in found.items():
            biller, submission = items[i]
            outcomes[i] = self._adjudicate(
                biller, submission, insured, states, accepted, keys[i], digests[i]
            )
        for i, key in enumerate(keys):
            if outcomes[i] is None:  # a repeated key: the first answer, or a conflict
                assert key is not None
                j = first[key]
                earlier = outcomes[j]
                if digests[i] != digests[j]:
                    outcomes[i] = Refusal(_conflict())
                elif isinstance(earlier, InvoiceView):
                    outcomes[i] = replace(earlier, replayed=True)
                else:
                    outcomes[i] = earlier
        journal.insert_rows(session, _INVOICES, self.invoices)
        journal.insert_rows(session, _LINES, self.lines)
        prior_agreements.consume(session, self.consumed, self.now)
        state.book(session, self.booked, self.now)
        append_events(session, self.events)
        return [outcome for outcome in outcomes if outcome is not None]

    def _answer_retries(
        self,
        items: Sequence[tuple[Biller, Submission]],
        keys: Sequence[bytes | None],
        digests: Sequence[bytes | None],
        outcomes: list[Outcome | None],
    ) -> None:
        """Keys seen in an earlier request: the first answer (same body) or a conflict."""
        wanted = [k for k in keys if k is not None]
        if not wanted:
            return
        stored = {
            row.idempotency_key: row
            for row in self.session.scalars(
                select(Invoice).where(Invoice.idempotency_key.in_(wanted))
            )
        }
        for i, key in enumerate(keys):
            row = stored.get(key) if key is not None else None
            if row is None:
                continue
            if row.request_digest != digests[i]:
                outcomes[i] = Refusal(_conflict())
                continue
            # As first answered: a cancellation since then does not change that answer.
            outcomes[i] = replace(view_of(self.session, row, row.outcome), replayed=True)
            self.events.append(event_of(Tag.INVOICE, items[i][0], self.client, row, "replayed"))

    def _look_up(
        self,
        items: Sequence[tuple[Biller, Submission]],
        fresh: Sequence[int],
        outcomes: list[Outcome | None],
    ) -> dict[int, lookups.Insured | None]:
        """The beneficiary behind each card (None: unknown, or not looked up for a biller that
        is no longer under convention); refusals go to ``outcomes``."""
        session, keyring = self.session, self.platform.keyring
        found: dict[int, lookups.Insured | None] = {}
        for i in fresh:
            biller, submission = items[i]
            card = submission.card
            try:
                check_care_dates([line.care_date for line in submission.lines])
            except InvalidInput as exc:
                outcomes[i] = Refusal(exc)
                continue
            if not biller.contracted:
                found[i] = None
                continue
            if self.quotas is not None and biller.caller is not None:
                refusal = admit_card(self.platform, session, self.quotas, biller.caller, card)
                if refusal is not None:  # refused, but on the record
                    outcomes[i] = Refusal(refusal)
                    self.events.append(self._throttled(biller))
                    continue
            tenant = self._tenant(card.amc_number)
            if tenant is not None and self._frozen(tenant):
                outcomes[i] = Refusal(Unavailable("this insurer's data is suspended; try later"))
                continue
            found[i] = (
                lookups.insured_by_card(
                    session,
                    keyring,
                    tenant,
                    card.member_number,
                    card.birth_date,
                    card.birth_rank,
                )
                if tenant is not None
                else None
            )
        return found

    def _adjudicate(
        self,
        biller: Biller,
        submission: Submission,
        insured: lookups.Insured | None,
        states: dict[uuid.UUID, state.State],
        accepted: set[tuple[Any, ...]],
        key: bytes | None,
        digest: bytes | None,
    ) -> InvoiceView:
        invoice_id = uuid.uuid4()
        lines = submission.lines
        guaranteed = False
        if not biller.contracted:
            reason = "the professional is not under convention"
            results = tuple(
                _refused(line, Reject.PROFESSIONAL_NOT_CONTRACTED, reason) for line in lines
            )
        else:
            patient = insured.beneficiary_id if insured else None
            duplicate = [
                (biller.professional_id, patient, line.care_date, line.act_code, line.billed)
                in accepted
                for line in lines
            ]
            # Duplicates are set aside before valuing: they consume no cap, no equipment
            # amount, no renewal, no agreed line (the agreement's indexes are those of ``rest``).
            rest = [line for line, dup in zip(lines, duplicate, strict=True) if not dup]
            counters = states[patient] if patient else state.State()
            agreement = self.agreements.get(submission.prior_agreement or "")
            agreed = prior_agreements.agreed_amounts(
                agreement, biller.professional_id, patient, rest, self.today
            )
            # The agreement's own reservation is not a second equipment for the invoice that
            # uses it: valued without it (it is released if the invoice uses the agreement).
            valued_against = counters.without(agreement.id) if agreed and agreement else counters
            context = valuation_context(
                self.platform,
                self.session,
                biller.professional_id,
                biller.profession,
                submission.card,
                insured,
                lines,
                submission.engagement,
                submission.prior_agreement,
                self._plan_for(insured),
                Beneficiary(
                    submission.card.birth_date,
                    insured.periods if insured else (),
                    valued_against.bookings_for(rest),
                    valued_against.last_renewal(rest),
                ),
                quoted_on=self.today,  # days are counted in Paris, as care dates are
                agreed=agreed,
            )
            guaranteed = context.engagement_valid
            adjudication = adjudicate(rest, context) if rest else None
            valued = iter(adjudication.lines if adjudication else ())
            results = tuple(
                LineResult(0, _sane_amo(line), (Reject.DUPLICATE,), _DUPLICATE)
                if dup
                else next(valued)
                for line, dup in zip(lines, duplicate, strict=True)
            )
            if (
                adjudication is not None
                and agreement is not None
                and agreed
                and prior_agreements.consumes(agreed, adjudication.lines)
            ):
                counters.drop(agreement.id)
                self.consumed.append((agreement.id, invoice_id))
                # The next invoices of the batch quoting it find it used.
                used = replace(agreement, status=prior_agreements.CONSUMED)
                self.agreements[submission.prior_agreement or ""] = used
            if adjudication is not None and patient is not None:
                counters.add(adjudication)  # the next invoices of the batch count it
                self.booked.append(state.Booked(patient, adjudication, state.INVOICE, invoice_id))
                accepted.update(
                    (biller.professional_id, patient, line.care_date, line.act_code, line.billed)
                    for line, result in zip(lines, results, strict=True)
                    if not result.rejected
                )
        total = sum(r.amc_amount for r in results)
        status = status_of(results)
        self._rows(invoice_id, biller, submission, insured, results, status, total, guaranteed)
        if key is not None:
            self.invoices[-1] |= {"idempotency_key": key, "request_digest": digest}
        if not biller.contracted:
            return InvoiceView(invoice_id, status, results, total)  # no card was looked up
        self.events.append(
            AccessEvent(
                at=self.now,
                tag=Tag.INVOICE,
                actor=biller.actor,
                outcome=status if insured else "unknown",
                purpose=f"invoice {invoice_id}",
                organisation=biller.organisation,
                tenant=submission.card.amc_number if self._known(submission, biller) else None,
                beneficiary=insured.pseudonym if insured else None,
                fields=FIELDS if insured else ("reject_codes",),
                ip=self.client.ip,
                user_agent=self.client.user_agent,
            )
        )
        return InvoiceView(invoice_id, status, results, total)

    def _rows(
        self,
        invoice_id: uuid.UUID,
        biller: Biller,
        submission: Submission,
        insured: lookups.Insured | None,
        results: Sequence[LineResult],
        status: str,
        total: int,
        guaranteed: bool,
    ) -> None:
        self.invoices.append(
            {
                "id": invoice_id,
                "professional_id": biller.professional_id,
                "beneficiary_id": insured.beneficiary_id if insured else None,
                "amc_number": submission.card.amc_number
                if self._known(submission, biller)
                else None,
                "pseudonym": insured.pseudonym if insured else None,
                "invoice_number": submission.invoice_number,
                "guaranteed": guaranteed,
                "prior_agreement": submission.prior_agreement,
                "outcome": status,
                "status": status,
                "total_amc": total,
                "idempotency_key": None,
                "request_digest": None,
                "submitted_by": biller.actor,
                "submitted_at": self.now,
                "cancelled_at": None,
                "paid_at": None,
            }
        )
        for position, (line, result) in enumerate(zip(submission.lines, results, strict=True)):
            self.lines.append(
                {
                    "id": uuid.uuid4(),
                    "invoice_id": invoice_id,
                    "position": position,
                    **vars(line),
                    "amc_amount": result.amc_amount,
                    "amo_amount": result.amo_amount,
                    "reject_codes": ";".join(result.reject_codes),
                    "explanation": result.explanation,
                    "accepted": not result.rejected,
                }
            )

    def _plan_for(self, insured: lookups.Insured | None) -> Callable[[str, date], Plan | None]:
        def plan_for(code: str, day: date) -> Plan | None:
            if insured is None:
                return None
            key = (insured.tenant_id, code, day)
            if key not in self._plans:
                self._plans[key] = lookups.plan_in_force(self.session, insured.tenant_id, code, day)
            return self._plans[key]

        return plan_for

    def _tenant(self, amc_number: str) -> Tenant | None:
        if amc_number not in self._tenants:
            self._tenants[amc_number] = lookups.active_tenant(self.session, amc_number)
        return self._tenants[amc_number]

    def _frozen(self, tenant: Tenant) -> bool:
        if tenant.id not in self._suspended:
            self._suspended[tenant.id] = containment.frozen(self.session, "tenant", tenant.id)
        return self._suspended[tenant.id]

    def _known(self, submission: Submission, biller: Biller) -> bool:
        return biller.contracted and self._tenants.get(submission.card.amc_number) is not None

    def _throttled(self, biller: Biller) -> AccessEvent:
        return AccessEvent(
            at=self.now,
            tag=Tag.INVOICE,
            actor=biller.actor,
            outcome="throttled",
            purpose="invoice",
            organisation=biller.organisation,
            ip=self.client.ip,
            user_agent=self.client.user_agent,
        )


def status_of(results: Sequence[LineResult]) -> str:
    """accepted: no line has a reject code; rejected: no line pays anything and each has a
    code; partial: anything between."""
    if all(not r.reject_codes for r in results):
        return "accepted"
    if all(r.reject_codes and r.amc_amount == 0 for r in results):
        return "rejected"
    return "partial"


# --- helpers ----------------------------------------------------------------------------------


def _key_digest(secret: bytes, biller: Biller, submission: Submission) -> bytes | None:
    if submission.idempotency_key is None:
        return None
    message = b"key\x1f" + biller.professional_id.bytes + submission.idempotency_key.encode()
    return hmac.digest(secret, message, "sha256")


def _request_digest(secret: bytes, submission: Submission) -> bytes:
    # Keyed: the body holds a member number and a birth date, which an unkeyed hash would not
    # hide from someone who can guess them.
    card = vars(submission.card)
    body: list[object] = [card, submission.invoice_number, submission.engagement]
    body.append(submission.prior_agreement)
    body.append([vars(line) for line in submission.lines])
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.digest(secret, b"body\x1f" + canonical.encode(), "sha256")


def _conflict() -> Conflict:
    return Conflict("this Idempotency-Key was used for another request")


def _sane_amo(line: Line) -> int:
    amo = line.amo
    return amo if 0 <= amo <= line.billed else 0


def _refused(line: Line, code: Reject, reason: str) -> LineResult:
    return LineResult(0, _sane_amo(line), (code,), f"{code}: {reason}.")


def _accepted_lines(
    session: Session,
    items: Sequence[tuple[Biller, Submission]],
    found: dict[int, lookups.Insured | None],
    days: Iterable[date],
) -> set[tuple[Any, ...]]:
    """(professional, beneficiary, care date, act, billed) of the lines already accepted on the
    invoices of these patients by these professionals, on these care dates, not cancelled."""
    pairs = {
        (items[i][0].professional_id, insured.beneficiary_id)
        for i, insured in found.items()
        if insured
    }
    dates = set(days)
    if not pairs:
        return set()
    rows = session.execute(
        select(
            _INVOICES.c.professional_id,
            _INVOICES.c.beneficiary_id,
            _LINES.c.care_date,
            _LINES.c.act_code,
            _LINES.c.billed,
        )
        .join(_LINES, _LINES.c.invoice_id == _INVOICES.c.id)
        .where(
            _INVOICES.c.beneficiary_id.in_({b for _, b in pairs}),
            _INVOICES.c.professional_id.in_({p for p, _ in pairs}),
            _INVOICES.c.status != "cancelled",
            _LINES.c.accepted.is_(True),
            _LINES.c.care_date.in_(dates),
        )
    )
    return {tuple(row) for row in rows if (row[0], row[1]) in pairs}


def view_of(session: Session, row: Invoice, status: str) -> InvoiceView:
    lines = session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == row.id).order_by(InvoiceLine.position)
    ).all()
    for line in lines:
        journal.check_row(session, line)
    results = tuple(
        LineResult(
            line.amc_amount,
            line.amo_amount,
            tuple(filter(None, line.reject_codes.split(";"))),
            line.explanation,
        )
        for line in lines
    )
    return InvoiceView(row.id, status, results, row.total_amc)


def event_of(
    tag: Tag,
    who: Principal | Biller,
    client: Client,
    row: Invoice,
    outcome: str,
    at: datetime | None = None,
) -> AccessEvent:
    return AccessEvent(
        at=at or utcnow(),
        tag=tag,
        actor=who.actor,
        outcome=outcome,
        purpose=f"invoice {row.id}",
        organisation=who.organisation,
        tenant=row.amc_number,
        beneficiary=row.pseudonym,
        fields=FIELDS if row.pseudonym else ("reject_codes",),
        ip=client.ip,
        user_agent=client.user_agent,
    )
