"""The counters adjudication reads and books: ceilings' accumulators and renewal uses.

Every function runs in the caller's transaction. The rule that keeps counters exact under
concurrency: ``lock`` the beneficiaries first, then ``load`` their state, adjudicate, ``book``,
and commit. On PostgreSQL the lock is a transaction-scoped advisory lock per beneficiary (and per
idempotency key), so invoices for different patients run in parallel and two invoices for one
patient run one after the other; on SQLite, which has one writer at a time, it is the database's
write lock, taken before the first read (a transaction that read first and wrote later could
act on counters another writer has changed since).

Rows name their source (``source_kind``, ``source_id``): an invoice books amounts and uses
renewals; a prior agreement (PEC) reserves renewals the same way (never amounts: see
docs/prior-agreements.md), and releases them the same way. A reservation counts while its
agreement may still be used: ``load`` leaves out those of agreements expired by ``today``. The
invoice that consumes an agreement takes its place: the state it is valued against leaves the
agreement's reservation out (``State.without``), and its own renewal use replaces it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import BigInteger, and_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from rempart.claims.engine import Adjudication, Bookings, Line, add_months
from rempart.claims.models import Booking, PriorAgreement, RenewalUse
from rempart.db import table_of
from rempart.integrity import journal

INVOICE = "invoice"
PRIOR_AGREEMENT = "prior_agreement"
# Ceilings count amounts within 12 months of a care date, either way (engine.ceiling_left).
WINDOW_MONTHS = 12

_BOOKINGS = table_of(Booking)
_RENEWALS = table_of(RenewalUse)
_AGREEMENTS = table_of(PriorAgreement)
_ADVISORY = text(
    # In the order given (sorted by the caller): two transactions never wait on each other.
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(:keys) WITH ORDINALITY AS t(k, n)"
).bindparams(bindparam("keys", type_=ARRAY(BigInteger)))


@dataclass
class State:
    """One beneficiary's counters: what is booked, and each renewal key's uses."""

    bookings: dict[str, list[tuple[date, int]]] = field(default_factory=dict)
    renewals: dict[str, list[date]] = field(default_factory=dict)
    # Per prior agreement, the (renewal key, care date) it reserves (counted in ``renewals`` too).
    reserved: dict[uuid.UUID, list[tuple[str, date]]] = field(default_factory=dict)

    def without(self, agreement_id: uuid.UUID) -> State:
        """This state without an agreement's reservations: what the invoice that consumes the
        agreement is valued against (its renewal is not a second equipment)."""
        held = self.reserved.get(agreement_id)
        if not held:
            return self
        renewals = {key: list(days) for key, days in self.renewals.items()}
        _remove(renewals, held)
        reserved = {k: v for k, v in self.reserved.items() if k != agreement_id}
        return State(self.bookings, renewals, reserved)

    def drop(self, agreement_id: uuid.UUID) -> None:
        """Forget an agreement's reservations (consumed: the invoice's renewal replaces them)."""
        _remove(self.renewals, self.reserved.pop(agreement_id, []))

    def reserve(self, agreement_id: uuid.UUID, renewals: dict[str, date]) -> None:
        """Count an agreement's reservations (the next requests of a transaction see them)."""
        for key, day in renewals.items():
            self.renewals.setdefault(key, []).append(day)
            self.reserved.setdefault(agreement_id, []).append((key, day))

    def bookings_for(self, lines: Sequence[Line]) -> Bookings:
        """The bookings of the domains the lines bill (the engine reads no other)."""
        domains = {line.domain for line in lines}
        return {d: tuple(self.bookings[d]) for d in domains if d in self.bookings}

    def last_renewal(self, lines: Sequence[Line]) -> dict[str, date]:
        """Per renewal key of the lines' domains, the use nearest to the lines' care dates.

        The engine compares a line with one date per key, both ways: the nearest use is the one
        that decides whether any use falls within the renewal period.
        """
        days: dict[str, list[date]] = {}
        for line in lines:
            days.setdefault(line.domain, []).append(line.care_date)
        chosen: dict[str, date] = {}
        for key, uses in self.renewals.items():
            near = days.get(key.split(":", 1)[0])
            if near:
                chosen[key] = min(uses, key=lambda use: min(abs((use - d).days) for d in near))
        return chosen

    def add(self, adjudication: Adjudication) -> None:
        """Count an adjudication's bookings and renewals (the next invoice of a batch sees them)."""
        for domain, events in adjudication.bookings.items():
            self.bookings.setdefault(domain, []).extend(events)
        for key, day in adjudication.renewals.items():
            self.renewals.setdefault(key, []).append(day)


def _remove(renewals: dict[str, list[date]], held: Iterable[tuple[str, date]]) -> None:
    for key, day in held:
        renewals[key].remove(day)
        if not renewals[key]:
            del renewals[key]


def lock(session: Session, names: Iterable[bytes]) -> None:
    """Serialise the transactions that touch these names (beneficiary ids, idempotency keys)
    until this one ends."""
    if session.get_bind().dialect.name == "sqlite":
        _write_lock(session)
        return
    keys = sorted(
        {int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True) for name in names}
    )
    if keys:
        session.execute(_ADVISORY, {"keys": keys})


def _write_lock(session: Session) -> None:
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    # pysqlite opens a transaction at the first write only: until then this one holds no lock.
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def load(
    session: Session,
    beneficiaries: Iterable[uuid.UUID],
    days: Iterable[date],
    today: date | None = None,
) -> dict[uuid.UUID, State]:
    """The state of each beneficiary (locked by the caller) for lines on these care dates.

    ``today``: prior agreements whose validity ended before it reserve nothing any more (without
    it, every reservation still stored counts).
    """
    ids = sorted(set(beneficiaries))
    states = {b: State() for b in ids}
    dates = list(days)
    if not ids or not dates:
        return states
    first, last = add_months(min(dates), -WINDOW_MONTHS), add_months(max(dates), WINDOW_MONTHS)
    for chunk in _chunks(ids):
        booked = session.execute(
            select(
                _BOOKINGS.c.beneficiary_id,
                _BOOKINGS.c.domain,
                _BOOKINGS.c.care_date,
                _BOOKINGS.c.amount,
            ).where(
                _BOOKINGS.c.beneficiary_id.in_(chunk),
                _BOOKINGS.c.care_date.between(first, last),
            )
        )
        for beneficiary, domain, day, amount in booked:
            states[beneficiary].bookings.setdefault(domain, []).append((day, amount))
        used = session.execute(
            select(
                _RENEWALS.c.beneficiary_id,
                _RENEWALS.c.renewal_key,
                _RENEWALS.c.care_date,
                _RENEWALS.c.source_kind,
                _RENEWALS.c.source_id,
                _AGREEMENTS.c.valid_until,
            )
            .outerjoin(
                _AGREEMENTS,
                and_(
                    _RENEWALS.c.source_kind == PRIOR_AGREEMENT,
                    _AGREEMENTS.c.id == _RENEWALS.c.source_id,
                ),
            )
            .where(_RENEWALS.c.beneficiary_id.in_(chunk))
        )
        for beneficiary, key, day, kind, source, valid_until in used:
            found = states[beneficiary]
            if kind == PRIOR_AGREEMENT:
                if today is not None and (valid_until is None or valid_until < today):
                    continue  # expired: it can no longer be used, so it holds nothing
                found.reserved.setdefault(source, []).append((key, day))
            found.renewals.setdefault(key, []).append(day)
    return states


@dataclass(frozen=True)
class Booked:
    """An adjudication to book for a beneficiary, on behalf of its source."""

    beneficiary_id: uuid.UUID
    adjudication: Adjudication
    source_kind: str
    source_id: uuid.UUID


def book(session: Session, booked: Iterable[Booked], now: datetime) -> None:
    """Write the amounts and renewals of adjudications (the lines of one source and day add up:
    ceilings count amounts per care date, so one row per domain and day is enough)."""
    bookings: list[dict[str, object]] = []
    renewals: list[dict[str, object]] = []
    for item in booked:
        source = {"source_kind": item.source_kind, "source_id": item.source_id, "booked_at": now}
        per_day: dict[tuple[str, date], int] = {}
        for domain, events in item.adjudication.bookings.items():
            for day, cents in events:
                per_day[(domain, day)] = per_day.get((domain, day), 0) + cents
        bookings += [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": item.beneficiary_id,
                "domain": domain,
                "care_date": day,
                "amount": cents,
                **source,
            }
            for (domain, day), cents in per_day.items()
            if cents > 0
        ]
        renewals += [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": item.beneficiary_id,
                "renewal_key": key,
                "care_date": day,
                **source,
            }
            for key, day in item.adjudication.renewals.items()
        ]
    journal.insert_rows(session, _BOOKINGS, bookings)
    journal.insert_rows(session, _RENEWALS, renewals)


def release(session: Session, source_kind: str, source_id: uuid.UUID) -> int:
    """Give back everything a source booked (a cancelled invoice, a cancelled agreement)."""
    released = 0
    for table in (_BOOKINGS, _RENEWALS):
        released += journal.delete_where(
            session, table, and_(table.c.source_id == source_id, table.c.source_kind == source_kind)
        )
    return released


def _chunks(ids: Sequence[uuid.UUID], size: int = 500) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]
