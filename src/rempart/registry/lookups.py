"""Read-only look-ups other capabilities use inside their own transaction (they never query the
registry's tables themselves)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from rempart.crypto.keyring import Keyring
from rempart.registry.models import Beneficiary, PlanVersion, RightsPeriod, Tenant
from rempart.registry.plan_format import Plan, parse_plan
from rempart.registry.rights import Period


@dataclass(frozen=True)
class Insured:
    """A beneficiary found by the rights-check key: an id, a pseudonym, rights periods."""

    beneficiary_id: uuid.UUID
    tenant_id: uuid.UUID
    pseudonym: str  # keyed: links one person's events in the ledger, names no one
    periods: tuple[Period, ...]


def active_tenant(session: Session, amc_number: str) -> Tenant | None:
    tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc_number))
    return tenant if tenant is not None and tenant.status == "active" else None


def insured_by_card(
    session: Session,
    keyring: Keyring,
    tenant: Tenant,
    member_number: str,
    birth_date: date,
    birth_rank: int,
) -> Insured | None:
    """The beneficiary behind the rights-check key (card, birth date and rank), if any."""
    indexer = keyring.indexer(session, tenant.scope)
    key = indexer.index(
        "rights_key", tenant.amc_number, member_number, birth_date.isoformat(), str(birth_rank)
    )
    beneficiary_id = session.scalar(
        select(Beneficiary.id).where(
            Beneficiary.tenant_id == tenant.id, Beneficiary.rights_index == key
        )
    )
    if beneficiary_id is None:
        return None
    periods = tuple(
        Period(
            p.plan_code,
            p.start_date,
            p.end_date,
            tuple(filter(None, p.suspended_domains.split(";"))),
        )
        for p in session.scalars(
            select(RightsPeriod)
            .where(RightsPeriod.beneficiary_id == beneficiary_id)
            .order_by(RightsPeriod.start_date)
        )
    )
    pseudonym = indexer.index("pseudonym", beneficiary_id.hex).hex()
    return Insured(beneficiary_id, tenant.id, pseudonym, periods)


def plan_in_force(session: Session, tenant_id: uuid.UUID, code: str, day: date) -> Plan | None:
    """The version of plan ``code`` in force on ``day`` (the latest that started by then)."""
    found = session.execute(
        select(PlanVersion.id, PlanVersion.document)
        .where(
            PlanVersion.tenant_id == tenant_id,
            PlanVersion.code == code,
            PlanVersion.valid_from <= day,
            or_(PlanVersion.valid_to.is_(None), PlanVersion.valid_to >= day),
        )
        .order_by(PlanVersion.valid_from.desc())
        .limit(1)
    ).first()
    return None if found is None else _parsed(found.id, found.document)


@lru_cache(maxsize=1024)
def _parsed(version_id: uuid.UUID, document: str) -> Plan:
    # A loaded version never changes (a change is a new version): its parse can be kept.
    return parse_plan(json.loads(document))
