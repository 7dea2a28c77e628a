"""Rights checks (IDB): open or closed, with an engagement, and an access event every time."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from rempart.db import transaction, utcnow
from rempart.errors import Forbidden, InvalidInput, RateLimited, Unavailable
from rempart.guard import containment
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.recorder import Recorder
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.plan_format import PROFESSION_DOMAINS
from rempart.rights.rules import CLOSED, RightsAnswer, engagement_number, rights_on

PARIS = ZoneInfo("Europe/Paris")
ENGAGEMENT_KEY = "engagement"
QUOTA_KEY = "quota"  # keys the quota counts: Redis holds no card number in clear
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
    """The outcome of looking a card up: refused by a quota, or the insurer and the insured."""

    refusal: RateLimited | None
    tenant_known: bool
    insured: lookups.Insured | None


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
        found = find_insured(platform, session, quotas, caller, query)
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
    if refusal is not None:  # refused, but on the record
        recorder.record(_event(caller, query, client, "throttled", None, None, ()))
        raise refusal
    outcome = "open" if answer.open else ("closed" if insured else "unknown")
    fields = ("status", "rate", "engagement") if answer.open else ("status",)
    recorder.record(
        _event(
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
    today = utcnow().astimezone(PARIS).date()
    earliest, latest = today - timedelta(days=PAST_CARE_DAYS), today + timedelta(days=1)
    if any(not earliest <= day <= latest for day in days):
        raise InvalidInput(
            "must be within the last two years, and not after tomorrow", field="care_date"
        )


def find_insured(
    platform: Platform, session: Session, quotas: Quotas, caller: Principal, card: Card
) -> Found:
    """The one way a professional's request reaches a beneficiary: the card is counted against
    the quotas first (hits and misses alike), a frozen insurer is refused, then the look-up."""
    refusal = admit_card(platform, session, quotas, caller, card)
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
    return Found(refusal, tenant is not None, insured)


def admit_card(
    platform: Platform, session: Session, quotas: Quotas, caller: Principal, query: Card
) -> RateLimited | None:
    """Count the card against the caller's quotas, before anything is looked up (hits and misses
    alike); the refusal, if any, is returned so that the caller records it before raising it."""
    assert caller.professional_id is not None
    card = "\x1f".join(
        (query.amc_number, query.member_number, query.birth_date.isoformat(), str(query.birth_rank))
    )
    key = platform.keyring.platform_secret(session, QUOTA_KEY)
    digest = hmac.digest(key, card.encode(), "sha256")[:16].hex()
    try:
        owners = {
            "account": caller.account or caller.actor,
            "professional": caller.professional_id.hex,
        }
        quotas.admit(owners, digest)
    except RateLimited as exc:
        return exc
    return None


def _event(
    caller: Principal,
    query: CardQuery,
    client: Client,
    outcome: str,
    tenant: str | None,
    insured: lookups.Insured | None,
    fields: tuple[str, ...],
) -> AccessEvent:
    return AccessEvent(
        at=utcnow(),
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
