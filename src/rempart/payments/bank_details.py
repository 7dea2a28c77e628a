"""Changing a professional's bank details: the fraud every payer is targeted by.

SECURITY.md requirement 8. A change goes through three gates, each on the record:

1. **Step-up.** Requested by a person of the practice whose second factor was given less than
   ten minutes ago (``identity.auth.recent_person``); billing software and older sessions cannot.
2. **Out of band.** A code is sent by letter to the practice's address on its convention (the
   ``bank_change_messages`` outbox stands for the mail room), never in the API's answer; the
   change counts only once the code comes back, from a person under step-up again. Five wrong
   codes cancel the change. Every step sends a notice to the practice too, so a change it did
   not ask for is seen.
3. **Cooling-off.** A confirmed account is used only ``REMPART_BANK_DETAILS_COOLING_HOURS``
   after its confirmation; until then (and while a code is awaited) the practice's payments are
   held, not sent to the old account nor the new one (``rules.choose_account``).

The IBAN is sealed under the platform's data key; answers and notices give its hint only.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.dates import PARIS
from rempart.db import table_of, transaction, utcnow
from rempart.errors import Conflict, Forbidden, InvalidInput, NotFound
from rempart.identifiers import InvalidIdentifier, validate_bic, validate_iban
from rempart.identity.auth import Client, Principal, recent_person
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.payments import rules
from rempart.payments.models import BankChange, OutgoingMessage
from rempart.platform import Platform
from rempart.registry.models import Professional

CODE_KEY = "bankcode"  # the platform secret of code digests (10 characters at most)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from a letter
CODE_LENGTH = 10  # 32^10 = 2^50 codes; five tries
MAX_ATTEMPTS = 5
_CHANGES = table_of(BankChange)


@dataclass(frozen=True)
class ChangeView:
    """A change as the practice sees it: never the IBAN, never the code."""

    id: uuid.UUID
    status: str  # pending | confirmed | cancelled
    iban_hint: str
    bic: str
    requested_at: datetime
    code_expires_at: datetime
    usable_from: datetime | None
    attempts_left: int


@dataclass(frozen=True)
class DetailsView:
    """The account payments go to now, and the change under way, if any."""

    iban_hint: str
    bic: str
    since: datetime | None  # None: the account of the convention
    change: ChangeView | None
    payments_held: bool


@dataclass(frozen=True)
class Letter:
    """A message for the mail room: to which practice (its billing number), what to send."""

    id: uuid.UUID
    am_number: str
    kind: str  # code | notice
    body: str
    created_at: datetime


# --- use cases ----------------------------------------------------------------------------------


def request_change(
    platform: Platform, caller: Principal, iban: str, bic: str, client: Client
) -> ChangeView:
    """Record a change awaiting its code; the code goes out by letter, never in the answer."""
    now = utcnow()
    person = recent_person(caller, now)
    professional_id = _professional_of(caller)
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
    settings = platform.settings
    with transaction(platform.sessions) as session:
        lock(session, professional_id)
        professional = _professional(session, professional_id)
        changes = _changes(session, [professional_id])
        if rules.open_change(changes.get(professional_id, []), now) is not None:
            raise Conflict("a change of bank details is already under way: cancel it first")
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        if iban == _current_iban(session, platform, professional, changes, now):
            raise InvalidInput("this is already the account payments go to", field="iban")
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        change_id = uuid.uuid4()
        row = BankChange(
            id=change_id,
            professional_id=professional_id,
            iban_enc=cipher.seal("bank_changes", "iban", change_id.hex, iban),
            iban_hint=iban_hint(iban),
            bic=bic,
            key_version=cipher.active_version,
            status=rules.PENDING,
            code_digest=_digest(platform, session, change_id, code),
            code_expires_at=now + timedelta(days=settings.bank_details_code_days),
            attempts=0,
            requested_by=f"user:{person}",
            requested_at=now,
        )
        session.add(row)
        session.flush()
        hint = row.iban_hint
        _send(
            platform,
            session,
            row,
            "code",
            f"Rempart: code {code} confirms the change of the account your payments go to, "
            f"to the account ending {hint[-4:]}, asked on {_day(now)}. Enter it in your portal "
            f"before {_day(row.code_expires_at)}. If you did not ask for this change, do not "
            "enter it: call us.",
        )
        _send(
            platform,
            session,
            row,
            "notice",
            f"A change of the account your Rempart payments go to was asked on {_day(now)} "
            f"(new account ending {hint[-4:]}). Your payments are held until it is confirmed "
            "by the code sent by letter and its waiting period has passed. If you did not ask "
            "for it, cancel it in your portal or call us.",
        )
        append_events(session, [_event(Tag.BANK_DETAILS_REQUESTED, caller, client, row, "pending")])
        session.flush()
        return _view(row)


def confirm_change(platform: Platform, caller: Principal, code: str, client: Client) -> ChangeView:
    """Confirm the change under way with the code of the letter; the account is usable after
    the cooling-off period. A wrong code counts; the fifth cancels the change."""
    now = utcnow()
    person = recent_person(caller, now)
    professional_id = _professional_of(caller)
    with transaction(platform.sessions) as session:
        lock(session, professional_id)
        row = session.scalar(
            select(BankChange)
            .where(BankChange.professional_id == professional_id, BankChange.status == "pending")
            .order_by(BankChange.requested_at.desc())
            .limit(1)
        )
        if row is None or row.code_expires_at <= now:
            raise NotFound("no change of bank details awaits a code (it may have expired)")
        journal.check_row(session, row)
        given = code.strip().upper().replace(" ", "").replace("-", "")
        if hmac.compare_digest(_digest(platform, session, row.id, given), row.code_digest):
            row.status, row.confirmed_at, row.confirmed_by = rules.CONFIRMED, now, f"user:{person}"
            row.usable_from = now + timedelta(hours=platform.settings.bank_details_cooling_hours)
            _send(
                platform,
                session,
                row,
                "notice",
                f"The account ending {row.iban_hint[-4:]} was confirmed on {_day(now)}. Your "
                f"payments go to it from {_day(row.usable_from)}; until then they are held. If "
                "you did not confirm it, call us at once.",
            )
            append_events(
                session, [_event(Tag.BANK_DETAILS_CHANGED, caller, client, row, "confirmed")]
            )
            session.flush()
            return _view(row)
        row.attempts += 1
        outcome = "refused"
        if row.attempts >= MAX_ATTEMPTS:
            row.status, row.cancelled_at = rules.CANCELLED, now
            row.cancelled_by, row.cancel_reason = "application", "too many wrong codes"
            outcome = "cancelled"
            _send(
                platform,
                session,
                row,
                "notice",
                f"The change to the account ending {row.iban_hint[-4:]} was cancelled on "
                f"{_day(now)} after {MAX_ATTEMPTS} wrong codes. Your payments go to the "
                "account you had before.",
            )
        append_events(
            session, [_event(Tag.BANK_DETAILS_CODE_REFUSED, caller, client, row, outcome)]
        )
        detail = "the code is not valid"
        if outcome == "cancelled":
            detail += "; the change is cancelled"
    # Raised once the transaction has committed: a wrong code counts even though it fails.
    raise InvalidInput(detail, field="code")


def cancel_change(
    platform: Platform,
    actor: str,
    professional_id: uuid.UUID,
    reason: str,
    client: Client,
    organisation: str | None = None,
) -> ChangeView:
    """Stop the change under way (a practice that did not ask for it, an operator told so)."""
    now = utcnow()
    reason = reason.strip()
    if not 1 <= len(reason) <= 200:
        raise InvalidInput("say why, in 1 to 200 characters", field="reason")
    with transaction(platform.sessions) as session:
        lock(session, professional_id)
        changes = _changes(session, [professional_id]).get(professional_id, [])
        current = rules.open_change(changes, now)
        if current is None:
            raise NotFound("no change of bank details is under way")
        row = session.get(BankChange, current.id)
        assert row is not None
        journal.check_row(session, row)
        row.status, row.cancelled_at, row.cancelled_by = rules.CANCELLED, now, actor
        row.cancel_reason = reason
        row.usable_from = None  # a cancelled change is never usable (ck_bank_changes_confirmed)
        _send(
            platform,
            session,
            row,
            "notice",
            f"The change to the account ending {row.iban_hint[-4:]} was cancelled on "
            f"{_day(now)}. Your payments go to the account you had before.",
        )
        event = AccessEvent(
            at=now,
            tag=Tag.BANK_DETAILS_CANCELLED,
            actor=actor,
            outcome="cancelled",
            purpose=f"bank details change {row.id}: {reason}"[:300],
            organisation=organisation,
            ip=client.ip,
            user_agent=client.user_agent,
        )
        append_events(session, [event])
        session.flush()
        return _view(row)


def cancel_own_change(
    platform: Platform, caller: Principal, reason: str, client: Client
) -> ChangeView:
    """A practice cancels its change under way (step-up, like every change of bank details)."""
    person = recent_person(caller, utcnow())
    professional_id = _professional_of(caller)
    return cancel_change(
        platform, f"user:{person}", professional_id, reason, client, caller.organisation
    )


def current_details(platform: Platform, caller: Principal) -> DetailsView:
    """Where the practice's payments go now (the hint), and the change under way."""
    now = utcnow()
    professional_id = _professional_of(caller)
    with transaction(platform.sessions) as session:
        professional = _professional(session, professional_id)
        changes = _changes(session, [professional_id]).get(professional_id, [])
        current = rules.open_change(changes, now)
        used = _used_change(session, changes, now)
        view = None
        if current is not None:
            row = session.get(BankChange, current.id)
            assert row is not None
            view = _view(row)
        if used is not None:
            return DetailsView(
                used.iban_hint, used.bic, used.usable_from, view, current is not None
            )
        return DetailsView(
            professional.iban_hint, professional.bic, None, view, current is not None
        )


def pending_letters(platform: Platform, mark_sent: bool = False) -> list[Letter]:
    """The messages waiting for the mail room, oldest first; ``mark_sent`` hands them over."""
    now = utcnow()
    with transaction(platform.sessions) as session:
        rows = session.execute(
            select(OutgoingMessage, Professional.am_number)
            .join(Professional, Professional.id == OutgoingMessage.professional_id)
            .where(OutgoingMessage.sent_at.is_(None))
            .order_by(OutgoingMessage.created_at, OutgoingMessage.id)
        ).all()
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        letters = []
        for message, am_number in rows:
            journal.check_row(session, message)
            body = cipher.open("bank_change_messages", "body", message.id.hex, message.body_enc)
            letters.append(Letter(message.id, am_number, message.kind, body, message.created_at))
            if mark_sent:
                message.sent_at = now
    return letters


# --- for payment runs ---------------------------------------------------------------------------


def accounts_for(
    session: Session, professional_ids: Iterable[uuid.UUID], now: datetime
) -> dict[uuid.UUID, rules.Pay | rules.Hold]:
    """Where each professional is paid at ``now``, or why it is held (in the run's transaction)."""
    ids = list(professional_ids)
    changes = _changes(session, ids)
    return {pid: rules.choose_account(changes.get(pid, []), now) for pid in ids}


def iban_of_change(platform: Platform, session: Session, change_id: uuid.UUID) -> BankChange:
    """A confirmed change, checked against its MAC, whose IBAN a run opens to pay it."""
    row = session.get(BankChange, change_id)
    if row is None or row.status != rules.CONFIRMED:
        raise NotFound("no such confirmed change of bank details")
    journal.check_row(session, row)
    return row


def open_iban(platform: Platform, session: Session, row: BankChange) -> str:
    cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
    return cipher.open("bank_changes", "iban", row.id.hex, row.iban_enc)


# --- helpers ------------------------------------------------------------------------------------


def iban_hint(iban: str) -> str:
    return f"{iban[:4]}…{iban[-4:]}"


def lock(session: Session, professional_id: uuid.UUID) -> None:
    """One change at a time per practice: SQLite's write lock, or a PostgreSQL advisory lock."""
    if session.get_bind().dialect.name == "sqlite":
        write_lock(session)
        return
    key = int.from_bytes(professional_id.bytes[:8], "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def write_lock(session: Session) -> None:
    """SQLite: take the write lock before the first read (pysqlite begins at the first write)."""
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _professional_of(caller: Principal) -> uuid.UUID:
    if caller.role != "professional" or caller.professional_id is None:
        raise Forbidden("only a professional's own people change its bank details")
    return caller.professional_id


def _professional(session: Session, professional_id: uuid.UUID) -> Professional:
    professional = session.get(Professional, professional_id)
    if professional is None:
        raise NotFound("no such professional")
    journal.check_row(session, professional)
    return professional


def _changes(
    session: Session, professional_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[rules.BankChange]]:
    found: dict[uuid.UUID, list[rules.BankChange]] = {}
    for start in range(0, len(professional_ids), 500):
        chunk = professional_ids[start : start + 500]
        rows = session.execute(
            select(
                _CHANGES.c.professional_id,
                _CHANGES.c.id,
                _CHANGES.c.status,
                _CHANGES.c.requested_at,
                _CHANGES.c.code_expires_at,
                _CHANGES.c.usable_from,
            ).where(_CHANGES.c.professional_id.in_(chunk), _CHANGES.c.status != rules.CANCELLED)
        )
        for pid, *values in rows:
            found.setdefault(pid, []).append(rules.BankChange(*values))
    return found


def _used_change(
    session: Session, changes: list[rules.BankChange], now: datetime
) -> BankChange | None:
    usable = [
        c for c in changes if c.status == rules.CONFIRMED and c.usable_from and c.usable_from <= now
    ]
    if not usable:
        return None
    newest = max(usable, key=lambda c: (c.usable_from, c.requested_at))
    return session.get(BankChange, newest.id)


def _current_iban(
    session: Session,
    platform: Platform,
    professional: Professional,
    changes: dict[uuid.UUID, list[rules.BankChange]],
    now: datetime,
) -> str:
    used = _used_change(session, changes.get(professional.id, []), now)
    if used is not None:
        journal.check_row(session, used)
        return open_iban(platform, session, used)
    cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
    return cipher.open("professionals", "iban", professional.id.hex, professional.iban_enc)


def _digest(platform: Platform, session: Session, change_id: uuid.UUID, code: str) -> bytes:
    secret = platform.keyring.platform_secret(session, CODE_KEY)
    return hmac.digest(secret, change_id.bytes + code.encode(), "sha256")


def _send(platform: Platform, session: Session, row: BankChange, kind: str, body: str) -> None:
    cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
    message_id = uuid.uuid4()
    session.add(
        OutgoingMessage(
            id=message_id,
            professional_id=row.professional_id,
            change_id=row.id,
            kind=kind,
            body_enc=cipher.seal("bank_change_messages", "body", message_id.hex, body),
            key_version=cipher.active_version,
            created_at=utcnow(),
        )
    )


def _event(
    tag: Tag, caller: Principal, client: Client, row: BankChange, outcome: str
) -> AccessEvent:
    return AccessEvent(
        at=utcnow(),
        tag=tag,
        actor=caller.actor,
        outcome=outcome,
        purpose=f"bank details change {row.id}",
        organisation=caller.organisation,
        fields=("iban_hint",),
        ip=client.ip,
        user_agent=client.user_agent,
    )


def _view(row: BankChange) -> ChangeView:
    return ChangeView(
        row.id,
        row.status,
        row.iban_hint,
        row.bic,
        row.requested_at,
        row.code_expires_at,
        row.usable_from,
        max(0, MAX_ATTEMPTS - row.attempts),
    )


def _day(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def cancel_for_operator(platform: Platform, am_number: str, reason: str, actor: str) -> ChangeView:
    """An operator stops a practice's change under way (the practice called: it never asked)."""
    with transaction(platform.sessions) as session:
        professional_id = session.scalar(
            select(Professional.id).where(Professional.am_number == am_number)
        )
    if professional_id is None:
        raise NotFound(f"no professional with billing number {am_number}")
    return cancel_change(platform, actor, professional_id, reason, Client(), am_number)
