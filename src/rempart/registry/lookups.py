"""Read-only look-ups other capabilities use inside their own transaction (they never query the
registry's tables themselves)."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, or_, select
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
    rows = session.connection().execute(_INSURED, {"tenant_id": tenant.id, "key": key}).all()
    if not rows:
        return None
    beneficiary_id = rows[0].id
    periods = tuple(
        Period(r.plan_code, r.start_date, r.end_date, tuple(filter(None, r.suspended.split(";"))))
        for r in rows
        if r.plan_code is not None  # a beneficiary without periods: one row of nulls
    )
    pseudonym = indexer.index("pseudonym", beneficiary_id.hex).hex()
    return Insured(beneficiary_id, tenant.id, pseudonym, periods)


def plan_in_force(session: Session, tenant_id: uuid.UUID, code: str, day: date) -> Plan | None:
    """The version of plan ``code`` in force on ``day`` (the latest that started by then)."""
    connection = session.connection()
    version_id = connection.execute(
        _PLAN_VERSION, {"tenant_id": tenant_id, "code": code, "day": day}
    ).scalar()
    if version_id is None:
        return None
    plan = _plans.get(version_id)
    if plan is None:  # a loaded version never changes (a change is a new version): parse once
        document = connection.execute(_PLAN_DOCUMENT, {"id": version_id}).scalar_one()
        plan = parse_plan(json.loads(document))
        with _plans_lock:
            if len(_plans) >= 1024:
                _plans.clear()
            _plans[version_id] = plan
    return plan


_plans: dict[uuid.UUID, Plan] = {}
_plans_lock = threading.Lock()
# Built once (the rights check's path): a beneficiary and its periods in one query, and the plan
# version in force by id only, its document read and parsed on first use.
_INSURED = (
    select(
        Beneficiary.id,
        RightsPeriod.plan_code,
        RightsPeriod.start_date,
        RightsPeriod.end_date,
        RightsPeriod.suspended_domains.label("suspended"),
    )
    .outerjoin(RightsPeriod, RightsPeriod.beneficiary_id == Beneficiary.id)
    .where(
        Beneficiary.tenant_id == bindparam("tenant_id"),
        Beneficiary.rights_index == bindparam("key"),
    )
    .order_by(RightsPeriod.start_date)
)
_PLAN_VERSION = (
    select(PlanVersion.id)
    .where(
        PlanVersion.tenant_id == bindparam("tenant_id"),
        PlanVersion.code == bindparam("code"),
        PlanVersion.valid_from <= bindparam("day"),
        or_(PlanVersion.valid_to.is_(None), PlanVersion.valid_to >= bindparam("day")),
    )
    .order_by(PlanVersion.valid_from.desc())
    .limit(1)
)
_PLAN_DOCUMENT = select(PlanVersion.document).where(PlanVersion.id == bindparam("id"))
