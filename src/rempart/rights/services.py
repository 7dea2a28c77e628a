"""Rights checks (IDB): open or closed, with an engagement, and an access event every time."""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from rempart.dates import paris_day
from rempart.db import transaction, utcnow
from rempart.errors import Error, Forbidden, InvalidInput, RateLimited, Unavailable
from rempart.guard import containment
from rempart.guard.detection import (
    GUARD_ACTOR,
    GUARD_KEY,
    AccountFrozen,
    Guard,
    StepUpRequired,
    Verdict,
    ask_for,
)
from rempart.guard.quotas import QUOTA_KEY, Quotas
from rempart.guard.signals import Response
from rempart.identity.auth import Client, Principal
from rempart.incidents import containment as incident_containment
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.recorder import Recorder
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.plan_format import PROFESSION_DOMAINS
from rempart.rights.rules import CLOSED, RightsAnswer, engagement_number, rights_on

ENGAGEMENT_KEY = "engagement"
PAST_CARE_DAYS = 730  # a rights check looks back two years at most (the billing delay)


@dataclass(frozen=True)
class Card:
    """What the card and the patient give: the rights-check key."""

    amc_number: str
    member_number: str
    birth_date: date
    birth_rank: int


@dataclass(frozen=True)
class CardQuery(Card):
    domain: str
    care_date: date


@dataclass(frozen=True)
class Found:
    """The outcome of looking a card up: refused (by a quota or the guard's detection), or the
    insurer and the insured."""

    refusal: Error | None
    tenant_known: bool
    insured: lookups.Insured | None

    @property
    def outcome(self) -> str:
        """What the ledger says of a refusal: throttled, step-up or frozen."""
        return refusal_outcome(self.refusal)


def refusal_outcome(refusal: Error | None) -> str:
    if isinstance(refusal, StepUpRequired):
        return "step-up"
    if isinstance(refusal, AccountFrozen):
        return "frozen"
    return "throttled"


@dataclass(frozen=True)
class Eligibility:
    answer: RightsAnswer
    engagement: str | None
    valid_until: date | None


def check_rights(
    platform: Platform,
    recorder: Recorder,
    quotas: Quotas,
    caller: Principal,
    query: CardQuery,
    client: Client,
) -> Eligibility:
    """Answer a professional's rights check, after recording it.

    An unknown card and closed rights give the same answer: the check is no oracle of who is a
    member. The event records which it was, for the insurer and the guard.
    """
    check_care_dates([query.care_date])
    with transaction(platform.sessions) as session:
        assert caller.professional_id is not None
        profession = caller.profession
        if profession is None or query.domain not in PROFESSION_DOMAINS[profession]:
            raise Forbidden(f"your profession does not check or bill the domain {query.domain}")
        found = find_insured(platform, session, quotas, caller, query, client)
        refusal, insured = found.refusal, found.insured
        answer, engagement, valid_until = CLOSED, None, None
        if insured is not None:
            answer = rights_on(
                insured.periods,
                lambda code: lookups.plan_in_force(
                    session, insured.tenant_id, code, query.care_date
                ),
                query.domain,
                query.care_date,
            )
        if answer.open and insured is not None:
            key = platform.keyring.platform_secret(session, ENGAGEMENT_KEY)
            engagement = engagement_number(
                key,
                insured.beneficiary_id.hex,
                caller.professional_id.hex,
                query.domain,
                query.care_date,
            )
            valid_until = query.care_date + timedelta(days=platform.settings.engagement_days)
    now = request_time(quotas)
    if refusal is not None:  # refused, but on the record
        recorder.record(_event(now, caller, query, client, found.outcome, None, None, ()))
        raise refusal
    outcome = "open" if answer.open else ("closed" if insured else "unknown")
    fields = ("status", "rate", "engagement") if answer.open else ("status",)
    recorder.record(
        _event(
            now,
            caller,
            query,
            client,
            outcome,
            query.amc_number if found.tenant_known else None,
            insured,
            fields,
        )
    )
    return Eligibility(answer, engagement, valid_until)


def check_care_dates(days: list[date]) -> None:
    """Care within the last two years (the billing delay), and not after tomorrow."""
    today = paris_day(utcnow())
    earliest, latest = today - timedelta(days=PAST_CARE_DAYS), today + timedelta(days=1)
    if any(not earliest <= day <= latest for day in days):
        raise InvalidInput(
            "must be within the last two years, and not after tomorrow", field="care_date"
        )


def find_insured(
    platform: Platform,
    session: Session,
    quotas: Quotas,
    caller: Principal,
    card: Card,
    client: Client | None = None,
) -> Found:
    """The one way a professional's request reaches a beneficiary: the card is counted against
    the quotas first (hits and misses alike), then judged by the guard's detection (when
    ``quotas`` is a ``Guard``: the API's always is), a frozen insurer is refused, then the
    look-up; a miss is reported to the detection after it."""
    digest = card_digest(platform, session, card)
    refusal: Error | None = _admit(quotas, caller, digest)
    guard = quotas if isinstance(quotas, Guard) else None
    ask = None
    if guard is not None and refusal is None:
        ask = ask_for(
            platform.keyring.platform_secret(session, GUARD_KEY),
            actor=caller.actor,
            organisation=caller.organisation or "",
            profession=caller.profession,
            authenticated_at=caller.authenticated_at,
            card=digest,
            amc_number=card.amc_number,
            member_number=card.member_number,
            ip=client.ip if client else None,
            user_agent=client.user_agent if client else None,
            digits=platform.settings.guard_neighbourhood_digits,
        )
        verdict = guard.detection.assess(session, ask)
        refusal = _enforce(platform, session, caller, verdict, guard.now())
    tenant = None if refusal else lookups.active_tenant(session, card.amc_number)
    if tenant is not None and containment.frozen(session, "tenant", tenant.id):
        raise Unavailable("this insurer's data is suspended; try again later")
    insured = (
        lookups.insured_by_card(
            session, platform.keyring, tenant, card.member_number, card.birth_date, card.birth_rank
        )
        if tenant
        else None
    )
    if guard is not None and ask is not None and refusal is None and insured is None:
        guard.detection.missed(ask)
    return Found(refusal, tenant is not None, insured)


def _enforce(
    platform: Platform, session: Session, caller: Principal, verdict: Verdict, now: datetime
) -> Error | None:
    """Carry out the guard's verdict. A freeze stops the account answerable for the caller (a
    person, or the person who registered the software): frozen on the record, its sessions
    ended and its software revoked, as an operator's freeze does."""
    if verdict.response is not Response.FREEZE:
        return verdict.error
    kind, _, ident = caller.account.partition(":")
    if kind != "user":  # no person to freeze: refuse, as a throttle, and leave it to the alert
        return RateLimited("unusual use by this software: stopped", retry_after=3600)
    user_id = uuid.UUID(ident)
    if not containment.frozen(session, "account", user_id):
        reason = verdict.assessment.reason()
        containment.record_freeze(
            session, "account", user_id, f"account {user_id}", reason, GUARD_ACTOR, now
        )
        incident_containment.end_access(session, user_id, now)
    return verdict.error


def card_digest(platform: Platform, session: Session, query: Card) -> str:
    """The card as the quotas and the guard count it: a keyed digest of the rights-check key
    (Redis holds no card number in clear)."""
    card = "\x1f".join(
        (query.amc_number, query.member_number, query.birth_date.isoformat(), str(query.birth_rank))
    )
    key = platform.keyring.platform_secret(session, QUOTA_KEY)
    return hmac.digest(key, card.encode(), "sha256")[:16].hex()


def admit_card(
    platform: Platform, session: Session, quotas: Quotas, caller: Principal, query: Card
) -> RateLimited | None:
    """Count the card against the caller's quotas, before anything is looked up (hits and misses
    alike); the refusal, if any, is returned so that the caller records it before raising it."""
    return _admit(quotas, caller, card_digest(platform, session, query))


def _admit(quotas: Quotas, caller: Principal, digest: str) -> RateLimited | None:
    assert caller.professional_id is not None
    try:
        owners = {
            "account": caller.account or caller.actor,
            "professional": caller.professional_id.hex,
        }
        quotas.admit(owners, digest)
    except RateLimited as exc:
        return exc
    return None


def request_time(quotas: Quotas) -> datetime:
    """The time of a request: the guard's clock (a simulation gives its own), or now."""
    return quotas.now() if isinstance(quotas, Guard) else utcnow()


def _event(
    at: datetime,
    caller: Principal,
    query: CardQuery,
    client: Client,
    outcome: str,
    tenant: str | None,
    insured: lookups.Insured | None,
    fields: tuple[str, ...],
) -> AccessEvent:
    return AccessEvent(
        at=at,
        tag=Tag.RIGHTS_READ,
        actor=caller.actor,
        outcome=outcome,
        purpose=f"rights-check {query.domain} {query.care_date.isoformat()}",
        organisation=caller.organisation,
        tenant=tenant,
        beneficiary=insured.pseudonym if insured else None,
        fields=fields,
        ip=client.ip,
        user_agent=client.user_agent,
    )
