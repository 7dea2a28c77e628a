"""Read-only use cases the portals show and their capabilities do not serve yet: an insurer's
access events, newest first; the latest signed checkpoint; the data keys and the rows sealed
under each version. Each opens its own transaction, as a service does, and changes nothing.

They belong with the ledger's and the keyring's services; they live here until those
capabilities take them (the API would then serve them too).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rempart.crypto.keyring import DATA, PLATFORM_SCOPE
from rempart.crypto.models import DataKey
from rempart.db import transaction
from rempart.ledger.events import AccessEvent
from rempart.ledger.models import LedgerCheckpoint
from rempart.ledger.services import latest_about, tree_size
from rempart.platform import Platform
from rempart.registry.models import Tenant
from rempart.registry.sealing import sealed_tables


@dataclass(frozen=True)
class Checkpoint:
    size: int
    created_at: datetime
    note: str


@dataclass(frozen=True)
class EventsPage:
    events: list[tuple[int, AccessEvent]]  # (sequence number, event), newest first
    older: int | None  # give it as ``before`` for the next page; None on the last one
    size: int  # the log's size now
    checkpoint: Checkpoint | None  # the latest signed one


def tenant_events(
    platform: Platform, amc_number: str, before: int | None, limit: int
) -> EventsPage:
    """The access events about this insurer's members, newest first, ``limit`` at a time."""
    with transaction(platform.sessions) as session:
        found = latest_about(session, amc_number, limit + 1, before)
        events = found[:limit]
        older = events[-1][0] if len(found) > limit else None
        return EventsPage(events, older, tree_size(session), _latest_checkpoint(session))


def _latest_checkpoint(session: Session) -> Checkpoint | None:
    latest = session.scalars(
        select(LedgerCheckpoint).order_by(LedgerCheckpoint.size.desc()).limit(1)
    ).first()
    return Checkpoint(latest.size, latest.created_at, latest.note) if latest else None


def latest_checkpoint(platform: Platform) -> Checkpoint | None:
    with transaction(platform.sessions) as session:
        return _latest_checkpoint(session)


@dataclass(frozen=True)
class ScopeKeys:
    """One scope's data keys: the version new writes use, and how many rows each version seals."""

    label: str  # "plateforme" or the insurer's AMC number
    active: int | None  # None: no key left (a shredded insurer)
    versions: tuple[int, ...]  # every data key version kept
    rows: dict[int, int] = field(default_factory=dict)  # version → rows sealed under it

    @property
    def stale(self) -> int:
        """Rows still sealed under an older version: a rotation not finished."""
        return sum(n for version, n in self.rows.items() if version != self.active)


def key_status(platform: Platform) -> list[ScopeKeys]:
    """Every scope's data keys and rows per version, the platform's first."""
    with transaction(platform.sessions) as session:
        tenants = session.execute(
            select(Tenant.id, Tenant.amc_number).order_by(Tenant.amc_number)
        ).all()
        scopes: list[tuple[str, str, uuid.UUID | None]] = [
            (PLATFORM_SCOPE, "plateforme", None),
            *((f"tenant:{tid.hex}", amc, tid) for tid, amc in tenants),
        ]
        return [_scope_keys(session, *scope) for scope in scopes]


def _scope_keys(session: Session, scope: str, label: str, tenant: uuid.UUID | None) -> ScopeKeys:
    keys = session.execute(
        select(DataKey.version, DataKey.state).where(
            DataKey.scope == scope, DataKey.purpose == DATA
        )
    ).all()
    active = next((version for version, state in keys if state == "active"), None)
    rows: dict[int, int] = {}
    for model, _ in sealed_tables(scope):
        query = select(model.key_version, func.count()).group_by(model.key_version)
        if tenant is not None:
            query = query.where(model.tenant_id == tenant)
        for version, count in session.execute(query):
            rows[version] = rows.get(version, 0) + count
    return ScopeKeys(label, active, tuple(sorted(v for v, _ in keys)), rows)
