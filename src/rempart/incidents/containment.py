"""Containment use cases: name what to freeze the way an operator knows it, freeze, lift.

An account is named by its e-mail address, a professional by its billing number, an insurer by
its AMC number. Freezing an account also ends its sessions, so that lifting the freeze later
does not revive a session an intruder may hold: the person signs in again.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.db import table_of, transaction, utcnow
from rempart.errors import NotFound
from rempart.guard import containment
from rempart.identity.models import ApiClient, AuthSession, User
from rempart.identity.services import email_index
from rempart.integrity import journal
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.models import Professional


def _target(
    platform: Platform, session: Session, kind: str, name: str | None
) -> tuple[uuid.UUID | None, str]:
    """The id behind an operator's name for it, and a label for the record (no e-mail in it)."""
    if kind == "platform":
        return None, "the platform"
    if name is None:
        raise NotFound(f"name the {kind} to act on")
    if kind == "account":
        user = session.scalar(
            select(User).where(User.email_index == email_index(platform, session, name))
        )
        if user is None:
            raise NotFound("no account with this e-mail address")
        return user.id, f"account {user.id}"
    if kind == "professional":
        found = session.scalar(select(Professional.id).where(Professional.am_number == name))
        if found is None:
            raise NotFound(f"no professional with billing number {name}")
        return found, f"professional {name}"
    tenant = lookups.active_tenant(session, name)
    if tenant is None:
        raise NotFound(f"no active insurer with AMC number {name}")
    return tenant.id, f"insurer {name}"


def freeze(
    platform: Platform, kind: str, name: str | None, reason: str, actor: str
) -> containment.FreezeView:
    now = utcnow()
    with transaction(platform.sessions) as session:
        target, label = _target(platform, session, kind, name)
        view = containment.record_freeze(session, kind, target, label, reason, actor, now)
        if kind == "account":
            # End its sessions, and revoke the software it registered: keys planted with a
            # stolen session must not outlive the freeze.
            clients = list(
                session.scalars(
                    select(ApiClient.id).where(
                        ApiClient.registered_by == f"user:{target}", ApiClient.revoked_at.is_(None)
                    )
                )
            )
            journal.update_where(
                session, table_of(ApiClient), ApiClient.id.in_(clients), revoked_at=now
            )
            session.execute(
                update(AuthSession)
                .where(
                    (AuthSession.user_id == target) | AuthSession.client_id.in_(clients),
                    AuthSession.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
        return view


def unfreeze(platform: Platform, kind: str, name: str | None, actor: str) -> str:
    with transaction(platform.sessions) as session:
        target, label = _target(platform, session, kind, name)
        containment.record_unfreeze(session, kind, target, label, actor, utcnow())
        return label


def in_force(platform: Platform) -> list[containment.FreezeView]:
    with transaction(platform.sessions) as session:
        return containment.in_force(session)
