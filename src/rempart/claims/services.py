"""Calculations (CLC): what the insurer would pay, line by line, committing nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta

from sqlalchemy.orm import Session

from rempart.claims import prior_agreements
from rempart.claims.engine import Adjudication, Beneficiary, Context, Line, adjudicate
from rempart.dates import paris_day
from rempart.db import transaction, utcnow
from rempart.errors import Forbidden
from rempart.guard.quotas import Quotas
from rempart.identity.auth import Client, Principal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.recorder import Recorder
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.plan_format import Plan
from rempart.rights.rules import engagement_matches
from rempart.rights.services import (
    ENGAGEMENT_KEY,
    Card,
    check_care_dates,
    find_insured,
)


def calculate(
    platform: Platform,
    recorder: Recorder,
    quotas: Quotas,
    caller: Principal,
    card: Card,
    lines: Sequence[Line],
    engagement: str | None,
    prior_agreement: str | None,
    client: Client,
) -> Adjudication:
    check_care_dates([line.care_date for line in lines])
    with transaction(platform.sessions) as session:
        assert caller.professional_id is not None
        profession = caller.profession
        if profession is None:
            raise Forbidden("this professional may not bill")
        found = find_insured(platform, session, quotas, caller, card)
        refusal, insured = found.refusal, found.insured
        # A valid agreement caps the lines it covers; a calculation consumes nothing.
        agreed = None
        if prior_agreement is not None and insured is not None and refusal is None:
            agreed = prior_agreements.agreed_amounts(
                prior_agreements.quoted(session, [prior_agreement]).get(prior_agreement),
                caller.professional_id,
                insured.beneficiary_id,
                lines,
                paris_day(utcnow()),
            )
        context = valuation_context(
            platform,
            session,
            caller.professional_id,
            profession,
            card,
            insured,
            lines,
            engagement,
            prior_agreement,
            lambda code, day: (
                lookups.plan_in_force(session, insured.tenant_id, code, day) if insured else None
            ),
            agreed=agreed,
        )
        result = adjudicate(lines, context) if refusal is None else None
    event = AccessEvent(
        at=utcnow(),
        tag=Tag.CALCULATION,
        actor=caller.actor,
        outcome="throttled" if refusal else ("calculated" if insured else "unknown"),
        purpose="calculation",
        organisation=caller.organisation,
        tenant=card.amc_number if found.tenant_known else None,
        beneficiary=insured.pseudonym if insured else None,
        fields=("amc_amount", "reject_codes") if insured else ("reject_codes",),
        ip=client.ip,
        user_agent=client.user_agent,
    )
    recorder.record(event)
    if refusal is not None:
        raise refusal
    assert result is not None
    return result


def valuation_context(
    platform: Platform,
    session: Session,
    professional_id: uuid.UUID,
    profession: str,
    card: Card,
    insured: lookups.Insured | None,
    lines: Sequence[Line],
    engagement: str | None,
    prior_agreement: str | None,
    plan_for: Callable[[str, date], Plan | None],
    beneficiary: Beneficiary | None = None,
    quoted_on: date | None = None,
    agreed: Mapping[int, int] | None = None,
) -> Context:
    """What the engine needs besides the lines, for a calculation or an invoice.

    ``quoted_on``: the day an invoice quotes the engagement, which must be within
    ``engagement_days`` of each care date (a calculation commits nothing and does not check).
    ``agreed``: when ``prior_agreement`` names a usable agreement, the agreed cents of the lines
    it covers (``prior_agreements.agreed_amounts``), indexed as the lines the engine values.
    """
    engagement_valid = engagement_invalid = False
    if engagement and insured is not None:
        key = platform.keyring.platform_secret(session, ENGAGEMENT_KEY)
        days = timedelta(days=platform.settings.engagement_days)
        engagement_valid = all(
            engagement_matches(
                engagement,
                key,
                insured.beneficiary_id.hex,
                professional_id.hex,
                line.domain,
                line.care_date,
            )
            and (quoted_on is None or quoted_on <= line.care_date + days)
            for line in lines
        )
        engagement_invalid = not engagement_valid
    return Context(
        # An unknown card is valued as a person without rights: the same answer, to the byte,
        # as closed rights (no membership oracle); the ledger records which it was.
        beneficiary=beneficiary or Beneficiary(card.birth_date, insured.periods if insured else ()),
        profession=profession,
        plan_for=plan_for,
        engagement_valid=engagement_valid,
        engagement_invalid=engagement_invalid or bool(engagement and insured is None),
        prior_agreement=agreed,
        # A line of a domain that needs an agreement and that the quoted one does not cover
        # (unknown, expired, cancelled, used, someone else's, or not this care) is refused
        # PRIOR_AGREEMENT_INVALID; the lines it covers carry their agreed amount instead.
        prior_agreement_invalid=prior_agreement is not None,
    )
