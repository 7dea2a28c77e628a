"""An insurer's member file, as its staff open it: the beneficiaries of one membership with their
rights (plan, periods, domains covered, domains suspended), the invoices billed for them and the
access events about them, found by the member number.

- **Its own members only.** The member number is looked up through the caller's own insurer's
  blind index (``member_number``), so another insurer's member is not found, exactly as a number
  nobody has: the answer is the same, and says nothing else.
- **Every view is on the record.** One ``beneficiary:record:read`` event per beneficiary shown
  (the actor, the insurer, the beneficiary's pseudonym, the fields disclosed), sharing a random
  view id in their purpose; a number that finds no member is recorded too (``unknown``). The
  events are durable before the file is returned: a file is never shown without its record.
- **Minimal.** Names, birth date and rank, relationship: what a claims handler needs to tell the
  people of a membership apart. Never the NIR.

The pure rules (the state of a period, the domains it covers) come first.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.crypto.fields import FieldCipher
from rempart.dates import paris_day
from rempart.db import transaction, utcnow
from rempart.errors import Forbidden, InvalidInput, NotFound, RateLimited
from rempart.guard.quotas import QUOTA_KEY, Quotas
from rempart.identity.auth import Client, Principal
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.recorder import Recorder
from rempart.ledger.services import latest_about
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.identity import Identity
from rempart.registry.models import Beneficiary, Member, RightsPeriod, Tenant
from rempart.registry.plan_format import DOMAINS

if TYPE_CHECKING:  # the registry sits below claims: imported at run time where it is called
    from rempart.claims.insurer_invoices import InsurerInvoice

MEMBER_NUMBER = re.compile(r"[A-Za-z0-9]{1,20}")
FIELDS = (
    "last_name",
    "first_name",
    "birth_date",
    "birth_rank",
    "relationship",
    "rights",
    "invoices",
    "access_events",
)
HISTORY = 50  # the latest invoices, and the latest access events, of a file
RELATIONSHIPS = ("insured", "spouse", "child", "other")  # the order a file lists them in


# --- pure rules ---------------------------------------------------------------------------------


def period_state(start: date, end: date | None, today: date) -> str:
    """``current``, ``past`` or ``future`` on ``today``."""
    if start > today:
        return "future"
    if end is not None and end < today:
        return "past"
    return "current"


def covered_domains(guaranteed: Iterable[str], suspended: Iterable[str]) -> tuple[str, ...]:
    """The domains a period covers: those its plan guarantees, less those suspended."""
    return tuple(sorted(set(guaranteed) - set(suspended)))


# --- what the service answers -------------------------------------------------------------------


@dataclass(frozen=True)
class RightsLine:
    plan_code: str
    plan_name: str | None  # None: no version of the plan in force on the day looked at
    start_date: date
    end_date: date | None
    state: str  # current | past | future
    covered: tuple[str, ...]  # on the period's reference day (today, or its start or end)
    suspended: tuple[str, ...]


@dataclass(frozen=True)
class BeneficiaryFile:
    pseudonym: str  # as in the ledger's events
    last_name: str
    first_name: str
    birth_date: date
    birth_rank: int
    relationship: str
    status: str  # active | closed
    rights: tuple[RightsLine, ...]
    invoices: tuple[InsurerInvoice, ...]  # the latest first


@dataclass(frozen=True)
class MemberFile:
    member_number: str
    beneficiaries: tuple[BeneficiaryFile, ...]
    events: tuple[tuple[int, AccessEvent], ...]  # about them, the latest first, before this view
    view: str  # the view id the events of this view carry in their purpose


# --- the service --------------------------------------------------------------------------------


def open_member_file(
    platform: Platform,
    recorder: Recorder,
    quotas: Quotas,
    caller: Principal,
    member_number: str,
    client: Client,
) -> MemberFile:
    """The file of the caller's insurer's member ``member_number``, recorded in the ledger (one
    event per beneficiary shown); NotFound, recorded too, when the insurer has no such member.

    Each account opens at most so many different members' files an hour and a day (``quotas``,
    ``member_file_quotas``): a phished insurer's account cannot page through the membership.
    Hits and misses count alike, and a refusal is on the record."""
    amc_number, tenant_id = _insurer(caller)
    member_number = member_number.strip()
    if not MEMBER_NUMBER.fullmatch(member_number):
        raise InvalidInput("must be 1 to 20 letters or digits", field="member_number")
    view = uuid.uuid4().hex
    now = utcnow()
    found: list[BeneficiaryFile] = []
    with transaction(platform.sessions) as session:
        key = platform.keyring.platform_secret(session, QUOTA_KEY)
        digest = hmac.digest(key, f"{amc_number}\x1f{member_number}".encode(), "sha256")
        try:
            quotas.admit({"account": caller.actor}, digest[:16].hex())
        except RateLimited:
            recorder.record(_event(caller, client, now, view, "rate-limited", None, ()))
            raise
        tenant = lookups.active_tenant(session, amc_number)
        if tenant is not None and tenant.id == tenant_id:
            found = _read(platform, session, tenant, member_number, paris_day(now))
        events = _access_events(session, amc_number, [b.pseudonym for b in found])
    if not found:  # unknown, or another insurer's: the same answer, on the record
        recorder.record(_event(caller, client, now, view, "unknown", None, ()))
        raise NotFound("no such member")
    for beneficiary in found:
        recorder.record(_event(caller, client, now, view, "read", beneficiary.pseudonym, FIELDS))
    return MemberFile(member_number, tuple(found), events, view)


def _insurer(caller: Principal) -> tuple[str, uuid.UUID]:
    if caller.role != "amc" or not caller.organisation or caller.tenant_id is None:
        raise Forbidden("only an insurer's staff open its member files")
    return caller.organisation, caller.tenant_id


def _read(
    platform: Platform, session: Session, tenant: Tenant, member_number: str, today: date
) -> list[BeneficiaryFile]:
    """The membership's beneficiaries, opened (their rows checked against their MACs)."""
    indexer = platform.keyring.indexer(session, tenant.scope)
    member = session.scalar(
        select(Member).where(
            Member.tenant_id == tenant.id,
            Member.member_index == indexer.index("member_number", member_number),
        )
    )
    if member is None:
        return []
    journal.check_row(session, member)
    rows = session.scalars(
        select(Beneficiary).where(
            Beneficiary.tenant_id == tenant.id, Beneficiary.member_id == member.id
        )
    ).all()
    periods = _periods(session, [row.id for row in rows])
    # Imported here: the registry sits below the capabilities whose services it calls.
    from rempart.claims.insurer_invoices import billed_for

    invoices: dict[uuid.UUID, list[InsurerInvoice]] = {row.id: [] for row in rows}
    for beneficiary_id, invoice in billed_for(
        session, tenant.amc_number, [row.id for row in rows], HISTORY
    ):
        invoices[beneficiary_id].append(invoice)
    cipher = platform.keyring.cipher(session, tenant.scope)
    files = [
        _file(
            session,
            cipher,
            tenant,
            row,
            indexer.index("pseudonym", row.id.hex).hex(),
            periods[row.id],
            invoices[row.id],
            today,
        )
        for row in rows
    ]
    return sorted(files, key=_listing_order)


def _listing_order(file: BeneficiaryFile) -> tuple[int, date, int]:
    rank = RELATIONSHIPS.index(file.relationship) if file.relationship in RELATIONSHIPS else 9
    return rank, file.birth_date, file.birth_rank


def _periods(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[RightsPeriod]]:
    found: dict[uuid.UUID, list[RightsPeriod]] = {i: [] for i in ids}
    if ids:
        for period in session.scalars(
            select(RightsPeriod)
            .where(RightsPeriod.beneficiary_id.in_(list(ids)))
            .order_by(RightsPeriod.start_date.desc())
        ):
            journal.check_row(session, period)
            found[period.beneficiary_id].append(period)
    return found


def _file(
    session: Session,
    cipher: FieldCipher,
    tenant: Tenant,
    row: Beneficiary,
    pseudonym: str,
    periods: Sequence[RightsPeriod],
    invoices: Sequence[InsurerInvoice],
    today: date,
) -> BeneficiaryFile:
    journal.check_row(session, row)
    who = Identity.unpack(cipher.open("beneficiaries", "identity", row.id.hex, row.identity_enc))
    return BeneficiaryFile(
        pseudonym=pseudonym,
        last_name=who.last_name,
        first_name=who.first_name,
        birth_date=who.birth_date,
        birth_rank=row.birth_rank,
        relationship=row.relationship,
        status=row.status,
        rights=tuple(_rights_line(session, tenant, period, today) for period in periods),
        invoices=tuple(invoices),
    )


def _rights_line(session: Session, tenant: Tenant, period: RightsPeriod, today: date) -> RightsLine:
    state = period_state(period.start_date, period.end_date, today)
    # The plan as it stands on the period's day nearest to today.
    day = {"future": period.start_date, "past": period.end_date}.get(state) or today
    plan = lookups.plan_in_force(session, tenant.id, period.plan_code, day)
    suspended = tuple(d for d in period.suspended_domains.split(";") if d in DOMAINS)
    covered = covered_domains(plan.guarantees if plan else (), suspended)
    return RightsLine(
        period.plan_code,
        plan.name if plan else None,
        period.start_date,
        period.end_date,
        state,
        covered,
        suspended,
    )


def _access_events(
    session: Session, amc_number: str, pseudonyms: Sequence[str]
) -> tuple[tuple[int, AccessEvent], ...]:
    """The latest events about these beneficiaries, before this view's own."""
    if not pseudonyms:
        return ()
    return tuple(latest_about(session, amc_number, HISTORY, beneficiaries=pseudonyms))


def _purpose(view: str) -> str:
    return f"member-file {view}"


def _event(
    caller: Principal,
    client: Client,
    at: datetime,
    view: str,
    outcome: str,
    pseudonym: str | None,
    fields: tuple[str, ...],
) -> AccessEvent:
    return AccessEvent(
        at=at,
        tag=Tag.MEMBER_FILE_READ,
        actor=caller.actor,
        outcome=outcome,
        purpose=_purpose(view),
        organisation=caller.organisation,
        tenant=caller.organisation,
        beneficiary=pseudonym,
        fields=fields,
        ip=client.ip,
        user_agent=client.user_agent,
    )
