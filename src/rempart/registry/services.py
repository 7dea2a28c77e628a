"""Use cases of the registry: insurers, plans, professionals, keys. Each opens its transaction."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.db import transaction, utcnow
from rempart.errors import Conflict, InvalidDocument, InvalidInput, NotFound, Problem
from rempart.identifiers import InvalidIdentifier, validate_nir
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry.csv_rows import FileError, RowError
from rempart.registry.identity import Identity
from rempart.registry.models import Beneficiary, Member, PlanVersion, Professional, Tenant
from rempart.registry.plan_format import parse_plan, plan_to_json
from rempart.registry.professional_file import ProfessionalRow, read_professional_file
from rempart.registry.sealing import count_stale, reseal_batch

_AMC_NUMBER = re.compile(r"[A-Za-z0-9]{1,10}")


@dataclass(frozen=True)
class TenantView:
    amc_number: str
    name: str
    status: str
    members: int
    beneficiaries: int
    plans: int


def add_tenant(platform: Platform, amc_number: str, name: str) -> TenantView:
    """Register an insurer and give it its own data and index keys."""
    if not _AMC_NUMBER.fullmatch(amc_number):
        raise InvalidInput("an AMC number is 1 to 10 letters or digits", field="amc_number")
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("the name must be 1 to 200 characters", field="name")
    with transaction(platform.sessions) as session:
        if session.scalar(select(Tenant.id).where(Tenant.amc_number == amc_number)):
            raise Conflict(f"an insurer with AMC number {amc_number} already exists")
        tenant = Tenant(id=uuid.uuid4(), amc_number=amc_number, name=name)
        session.add(tenant)
        session.flush()
        platform.keyring.create_scope(session, tenant.scope)
        return TenantView(amc_number, name, tenant.status, 0, 0, 0)


def list_tenants(platform: Platform) -> list[TenantView]:
    with transaction(platform.sessions) as session:
        counts = {
            table: dict(
                session.execute(
                    select(table.tenant_id, func.count()).group_by(table.tenant_id)
                ).all()
            )
            for table in (Member, Beneficiary, PlanVersion)
        }
        return [
            TenantView(
                t.amc_number,
                t.name,
                t.status,
                counts[Member].get(t.id, 0),
                counts[Beneficiary].get(t.id, 0),
                counts[PlanVersion].get(t.id, 0),
            )
            for t in session.scalars(select(Tenant).order_by(Tenant.amc_number))
        ]


def tenant_by_amc(session: Session, amc_number: str, *, active: bool = True) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc_number))
    if tenant is None:
        raise NotFound(f"no insurer with AMC number {amc_number}")
    if active and tenant.status != "active":
        raise Conflict(f"the insurer {amc_number} is {tenant.status}")
    return tenant


@dataclass(frozen=True)
class PlanVersionView:
    code: str
    name: str
    valid_from: date
    valid_to: date | None
    loaded: bool  # False when this exact version was already loaded


def load_plan(platform: Platform, amc_number: str, raw: bytes) -> PlanVersionView:
    """Load a plan version (the DOMAIN.md format); versions are told apart by ``valid_from``."""
    plan = parse_plan(raw)
    document = json.dumps(plan_to_json(plan), sort_keys=True)
    with transaction(platform.sessions) as session:
        tenant = tenant_by_amc(session, amc_number)
        existing = session.scalar(
            select(PlanVersion).where(
                PlanVersion.tenant_id == tenant.id,
                PlanVersion.code == plan.code,
                PlanVersion.valid_from == plan.valid_from,
            )
        )
        if existing is not None:
            if existing.document == document:
                return PlanVersionView(
                    plan.code, plan.name, plan.valid_from, plan.valid_to, loaded=False
                )
            raise Conflict(
                f"plan {plan.code} already has a different version valid from {plan.valid_from}: "
                "claims may have been valued under it, so load the change as a new version "
                "with a later valid_from"
            )
        session.add(
            PlanVersion(
                tenant_id=tenant.id,
                code=plan.code,
                name=plan.name,
                valid_from=plan.valid_from,
                valid_to=plan.valid_to,
                document=document,
            )
        )
        return PlanVersionView(plan.code, plan.name, plan.valid_from, plan.valid_to, loaded=True)


def list_plans(platform: Platform, amc_number: str) -> list[PlanVersionView]:
    with transaction(platform.sessions) as session:
        tenant = tenant_by_amc(session, amc_number, active=False)
        rows = session.scalars(
            select(PlanVersion)
            .where(PlanVersion.tenant_id == tenant.id)
            .order_by(PlanVersion.code, PlanVersion.valid_from)
        )
        return [PlanVersionView(p.code, p.name, p.valid_from, p.valid_to, True) for p in rows]


@dataclass
class ProfessionalsReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] | None = None


def import_professionals(platform: Platform, stream: BinaryIO) -> ProfessionalsReport:
    """Create or update professionals from the operator's file; all or nothing.

    A bank account is set when a professional is created; changing it later goes through the
    bank-details procedure (step-up, confirmation, cooling-off), never through a file.
    """
    report = ProfessionalsReport(errors=[])
    assert report.errors is not None
    seen: dict[str, int] = {}
    rows: list[ProfessionalRow] = []
    try:
        for row in read_professional_file(stream):
            if isinstance(row, RowError):
                report.errors.append(row)
            elif row.am_number in seen:
                report.errors.append(
                    RowError(row.line, "am_number", f"duplicate of line {seen[row.am_number]}", b"")
                )
            else:
                seen[row.am_number] = row.line
                rows.append(row)
    except FileError as exc:
        raise InvalidInput(str(exc), field="file") from None
    with transaction(platform.sessions) as session:
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        existing = {
            p.am_number: p
            for p in session.scalars(
                select(Professional).where(Professional.am_number.in_(list(seen)))
            )
        }
        for row in rows:
            current = existing.get(row.am_number)
            if current is None:
                pro_id = uuid.uuid4()
                session.add(
                    Professional(
                        id=pro_id,
                        am_number=row.am_number,
                        iban_enc=cipher.seal("professionals", "iban", pro_id.hex, row.iban),
                        iban_hint=iban_hint(row.iban),
                        bic=row.bic,
                        key_version=cipher.active_version,
                        **_professional_fields(row),
                    )
                )
                report.inserted += 1
                continue
            iban_on_file = cipher.open("professionals", "iban", current.id.hex, current.iban_enc)
            if (iban_on_file, current.bic) != (row.iban, row.bic):
                report.errors.append(
                    RowError(
                        row.line,
                        "iban" if iban_on_file != row.iban else "bic",
                        "differs from the account on file; a bank-details change needs step-up "
                        "authentication and confirmation, not a file",
                        b"",
                    )
                )
                continue
            fields = _professional_fields(row)
            if all(getattr(current, k) == v for k, v in fields.items()):
                report.unchanged += 1
                continue
            for k, v in fields.items():
                setattr(current, k, v)
            current.updated_at = utcnow()
            report.updated += 1
        if report.errors:
            session.rollback()
            report.inserted = report.updated = report.unchanged = 0
            return report
        final = platform.keyring.confirm_before_commit(session, PLATFORM_SCOPE, cipher)
        while final is not cipher and reseal_batch(session, PLATFORM_SCOPE, final, _RESEAL_BATCH):
            pass
    return report


def _professional_fields(row: ProfessionalRow) -> dict[str, Any]:
    return {
        "rpps": row.rpps,
        "finess": row.finess,
        "name": row.name,
        "profession": row.profession,
        "optam": row.optam,
        "networks": ";".join(row.networks),
    }


def iban_hint(iban: str) -> str:
    return f"{iban[:4]}…{iban[-4:]}"


@dataclass(frozen=True)
class BeneficiaryMatch:
    beneficiary_id: uuid.UUID
    member_number: str
    last_name: str
    first_name: str
    birth_date: date
    birth_rank: int
    relationship: str
    status: str


def find_by_nir(platform: Platform, amc_number: str, nir: str) -> list[BeneficiaryMatch]:
    """An insurer's own look-up of its beneficiaries by NIR, through the NIR's blind index."""
    try:
        nir = validate_nir(nir)
    except InvalidIdentifier as exc:
        raise InvalidInput(exc.reason, field="nir") from None
    with transaction(platform.sessions) as session:
        tenant = tenant_by_amc(session, amc_number)
        cipher = platform.keyring.cipher(session, tenant.scope)
        index = platform.keyring.indexer(session, tenant.scope).index("nir", nir)
        rows = session.execute(
            select(Beneficiary, Member.member_number_enc, Member.id)
            .join(Member, Member.id == Beneficiary.member_id)
            .where(Beneficiary.tenant_id == tenant.id, Beneficiary.nir_index == index)
        ).all()
        matches = []
        for b, number_enc, member_id in rows:
            who = Identity.unpack(
                cipher.open("beneficiaries", "identity", b.id.hex, b.identity_enc)
            )
            matches.append(
                BeneficiaryMatch(
                    b.id,
                    cipher.open("members", "member_number", member_id.hex, number_enc),
                    who.last_name,
                    who.first_name,
                    who.birth_date,
                    b.birth_rank,
                    b.relationship,
                    b.status,
                )
            )
        return matches


def _record(session: Session, tag: Tag, actor: str, what: str, amc_number: str | None) -> None:
    event = AccessEvent(
        at=utcnow(), tag=tag, actor=actor, outcome="done", purpose=what, tenant=amc_number
    )
    append_events(session, [event])


def shred_tenant(platform: Platform, amc_number: str, actor: str = "cli") -> int:
    """Crypto-shred an insurer: destroy its keys, so its sealed data can never be read again."""
    with transaction(platform.sessions) as session:
        tenant = tenant_by_amc(session, amc_number, active=False)
        if tenant.status == "shredded":
            raise Conflict(f"the insurer {amc_number} is already shredded")
        destroyed = platform.keyring.shred(session, [tenant.scope])
        tenant.status = "shredded"
        _record(session, Tag.TENANT_SHREDDED, actor, f"{destroyed} keys destroyed", amc_number)
        return destroyed


def rotate_master_key(platform: Platform, actor: str = "cli") -> int:
    """Wrap every data key under a new master key, then forget the old master key."""
    provider = platform.keyring.provider
    provider.add_version()
    with transaction(platform.sessions) as session:
        count = platform.keyring.rewrap_all(session)
        _record(session, Tag.KEYS_ROTATED, actor, f"master key: {count} data keys re-wrapped", None)
    provider.retire_others()
    return count


_RESEAL_BATCH = 1000


def rotate_data_key(
    platform: Platform,
    amc_number: str | None,
    progress: Callable[[int, int], None] | None = None,
    actor: str = "cli",
) -> int:
    """Move a scope (an insurer, or the platform when ``amc_number`` is None) to a new data key.

    New writes use the new key as soon as it exists; rows are re-sealed in small transactions
    while the service runs; the old key is destroyed once nothing is sealed under it, checked in
    the transaction that destroys it.
    """
    with transaction(platform.sessions) as session:
        scope = PLATFORM_SCOPE if amc_number is None else tenant_by_amc(session, amc_number).scope
        version = platform.keyring.start_data_rotation(session, scope)
        total = count_stale(session, scope, version)
    done = 0
    while True:
        with transaction(platform.sessions) as session:
            cipher = platform.keyring.cipher(session, scope)
            resealed = reseal_batch(session, scope, cipher, _RESEAL_BATCH)
            if not resealed:
                # A writer that sealed under the old key before the rotation has committed by
                # now (it holds a share lock on the key until it commits): nothing is left.
                platform.keyring.drop_previous_data_keys(session, scope)
                _record(session, Tag.KEYS_ROTATED, actor, f"data key of {scope}", amc_number)
                break
        done += resealed
        if progress:
            progress(done, max(total, done))
    if progress:
        progress(done, done)
    return done


def plan_problems(raw: bytes) -> list[Problem]:
    """The problems of a plan file, without loading it (``rempart plans check``)."""
    try:
        parse_plan(raw)
    except InvalidDocument as exc:
        return exc.problems
    return []
