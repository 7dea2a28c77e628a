"""Whether a beneficiary's rights are open for a domain on a date, and what the card says.

Pure: the periods, the plan in force and the date are given.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from rempart.registry.plan_format import Guarantee, Plan, format_money
from rempart.registry.rights import Period, period_on

ENGAGEMENT_PREFIX = "E1"


@dataclass(frozen=True)
class RightsAnswer:
    open: bool
    rate: str | None = None
    prior_agreement_required: bool = False


CLOSED = RightsAnswer(open=False)


def rights_on(
    periods: Sequence[Period], plan_in_force: Callable[[str], Plan | None], domain: str, day: date
) -> RightsAnswer:
    """Open when a period covers the day, the domain is not suspended and the plan covers it."""
    period = period_on(periods, day)
    if period is None or domain in period.suspended_domains:
        return CLOSED
    plan = plan_in_force(period.plan_code)
    guarantee = plan.guarantee(domain) if plan else None
    if guarantee is None:
        return CLOSED
    return RightsAnswer(True, rate_label(guarantee), guarantee.prior_agreement)


def rate_label(guarantee: Guarantee) -> str:
    """What the card shows for a domain: ``100%``, ``AMO+50%``, ``300.00/equipment`` or ``PEC``."""
    if guarantee.prior_agreement:
        return "PEC"
    if guarantee.br_total_pct is not None:
        return f"{guarantee.br_total_pct}%"
    if guarantee.br_extra_pct is not None:
        return f"AMO+{guarantee.br_extra_pct}%"
    if guarantee.amount_cents is not None:
        return f"{format_money(guarantee.amount_cents)}/{guarantee.per}"
    if guarantee.actual_cost_pct is not None:
        return f"{guarantee.actual_cost_pct}% of cost"
    return "100%" if guarantee.daily_fee else "covered"


def engagement_number(
    key: bytes, beneficiary: str, professional: str, domain: str, care_date: date
) -> str:
    """The payment guarantee's number: a MAC of what it guarantees, so it cannot be forged or
    moved to another patient, professional, domain or day (HMAC-SHA-256, 120 bits kept)."""
    message = "\x1f".join((beneficiary, professional, domain, care_date.isoformat())).encode()
    digest = hmac.digest(key, message, "sha256")[:15]
    return ENGAGEMENT_PREFIX + base64.b32encode(digest).decode()


def engagement_matches(
    number: str, key: bytes, beneficiary: str, professional: str, domain: str, care_date: date
) -> bool:
    expected = engagement_number(key, beneficiary, professional, domain, care_date)
    return hmac.compare_digest(number.encode(), expected.encode())
