"""Freezes: the records that stop an account, a professional, an insurer's data or everything.

A leaf: it records and answers "is this frozen?" inside the caller's transaction; the
capabilities check it on every request, so a freeze takes effect at once and is lifted as fast.
Freezing never deletes anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.db import table_of
from rempart.errors import Conflict, InvalidInput, NotFound
from rempart.guard.models import Freeze
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events

KINDS = ("account", "professional", "tenant", "portal", "platform")
PORTALS = ("pro", "amc", "ops")  # the web portals, by the first segment of their paths
PLATFORM_TARGET = "*"


@dataclass(frozen=True)
class FreezeView:
    kind: str
    label: str
    reason: str
    created_by: str
    created_at: datetime


def frozen(session: Session, kind: str, target: uuid.UUID) -> bool:
    """Whether ``target`` of this kind is frozen now."""
    return (
        session.scalar(
            select(Freeze.id)
            .where(Freeze.lifted_at.is_(None), Freeze.kind == kind, Freeze.target == target.hex)
            .limit(1)
        )
        is not None
    )


def in_force_now(session: Session) -> frozenset[tuple[str, str]]:
    """Every freeze in force as (kind, target hex or "*"): one small query for all the checks
    of a request (usually it finds nothing)."""
    rows = session.execute(select(Freeze.kind, Freeze.target).where(Freeze.lifted_at.is_(None)))
    return frozenset((kind, target) for kind, target in rows)


def record_freeze(
    session: Session,
    kind: str,
    target: uuid.UUID | str | None,
    label: str,
    reason: str,
    actor: str,
    now: datetime,
) -> FreezeView:
    key = _key(kind, target)
    reason = reason.strip()
    if not 1 <= len(reason) <= 500:
        raise InvalidInput("say why, in 1 to 500 characters", field="reason")
    if session.scalar(
        select(Freeze.id).where(
            Freeze.kind == kind, Freeze.target == key, Freeze.lifted_at.is_(None)
        )
    ):
        raise Conflict(f"{label} is already frozen")
    session.add(
        Freeze(kind=kind, target=key, label=label, reason=reason, created_by=actor, created_at=now)
    )
    append_events(session, [_event(Tag.FROZEN, actor, kind, label, reason, now)])
    return FreezeView(kind, label, reason, actor, now)


def record_unfreeze(
    session: Session,
    kind: str,
    target: uuid.UUID | str | None,
    label: str,
    actor: str,
    now: datetime,
) -> None:
    lifted = journal.update_where(
        session,
        table_of(Freeze),
        (Freeze.kind == kind) & (Freeze.target == _key(kind, target)) & Freeze.lifted_at.is_(None),
        lifted_at=now,
        lifted_by=actor,
    )
    if not lifted:
        raise NotFound(f"{label} is not frozen")
    append_events(session, [_event(Tag.UNFROZEN, actor, kind, label, "", now)])


def in_force(session: Session) -> list[FreezeView]:
    rows = session.scalars(
        select(Freeze).where(Freeze.lifted_at.is_(None)).order_by(Freeze.created_at)
    )
    return [FreezeView(f.kind, f.label, f.reason, f.created_by, f.created_at) for f in rows]


def _key(kind: str, target: uuid.UUID | str | None) -> str:
    if kind not in KINDS:
        raise InvalidInput("must be one of " + ", ".join(KINDS), field="kind")
    if (kind == "platform") != (target is None):
        raise InvalidInput("the platform is frozen whole; anything else needs its target")
    if kind == "portal" and target not in PORTALS:
        raise InvalidInput("a portal is one of " + ", ".join(PORTALS), field="name")
    return PLATFORM_TARGET if target is None else target if isinstance(target, str) else target.hex


def _event(tag: Tag, actor: str, kind: str, label: str, reason: str, now: datetime) -> AccessEvent:
    return AccessEvent(
        at=now, tag=tag, actor=actor, outcome=kind, purpose=f"{label}: {reason}"[:500]
    )
