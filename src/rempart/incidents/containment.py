"""Containment use cases: name what to freeze the way an operator knows it, freeze, lift.

An account is named by its e-mail address, a professional by its billing number, an insurer by
its AMC number. Freezing an account also ends its sessions, so that lifting the freeze later
does not revive a session an intruder may hold: the person signs in again. Forcing the
re-enrolment of accounts goes further: their credentials are erased, and each person enrols again
with a new code.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.db import table_of, transaction, utcnow
from rempart.errors import InvalidInput, NotFound
from rempart.guard import containment
from rempart.identity.models import ApiClient, AuthSession, User, WebAuthnCredential
from rempart.identity.services import email_index, issue_enrolment
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry import lookups
from rempart.registry.models import Professional


def _target(
    platform: Platform, session: Session, kind: str, name: str | None
) -> tuple[uuid.UUID | str | None, str]:
    """The id behind an operator's name for it, and a label for the record (no e-mail in it)."""
    if kind == "platform":
        return None, "the platform"
    if kind == "portal":  # its pages only: the API and the other portals go on
        if name not in containment.PORTALS:
            raise NotFound("no portal by this name: " + ", ".join(containment.PORTALS))
        return name, f"portal /{name}/"
    if name is None:
        raise NotFound(f"name the {kind} to act on")
    if kind == "account":
        user = _account(platform, session, name)
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


def user_id(name: str) -> uuid.UUID | None:
    """The id in ``user:<id>``, as the ledger and the guard's alerts name an account; None for
    any other name (an e-mail address, a malformed id): the caller decides what else it takes."""
    kind, _, rest = name.partition(":")
    if kind != "user":
        return None
    try:
        return uuid.UUID(rest)
    except ValueError:
        return None


def _account(platform: Platform, session: Session, name: str) -> User:
    """An account by its e-mail address, or by ``user:<id>`` as the ledger and the guard's
    alerts name it (the console freezes from an alert without anyone typing an address)."""
    named = user_id(name)
    if named is not None:
        found = session.get(User, named)
        if found is None:
            raise NotFound("no account with this id")
        return found
    user = session.scalar(
        select(User).where(User.email_index == email_index(platform, session, name))
    )
    if user is None:
        raise NotFound("no account with this e-mail address")
    return user


def freeze(
    platform: Platform, kind: str, name: str | None, reason: str, actor: str
) -> containment.FreezeView:
    now = utcnow()
    with transaction(platform.sessions) as session:
        target, label = _target(platform, session, kind, name)
        view = containment.record_freeze(session, kind, target, label, reason, actor, now)
        if kind == "account":
            assert isinstance(target, uuid.UUID)
            end_access(session, target, now)
        return view


def end_access(session: Session, user_id: uuid.UUID, now: datetime) -> None:
    """End the account's sessions and revoke the software it registered: keys planted with a
    stolen session must not outlive a freeze or a re-enrolment."""
    clients = list(
        session.scalars(
            select(ApiClient.id).where(
                ApiClient.registered_by == f"user:{user_id}", ApiClient.revoked_at.is_(None)
            )
        )
    )
    journal.update_where(session, table_of(ApiClient), ApiClient.id.in_(clients), revoked_at=now)
    session.execute(
        update(AuthSession)
        .where(
            (AuthSession.user_id == user_id) | AuthSession.client_id.in_(clients),
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )


@dataclass(frozen=True)
class Reenrolment:
    label: str  # "account <id>": no e-mail address
    enrolment_code: str  # shown once, handed to the person out of band


def force_reenrolment(
    platform: Platform, emails: Sequence[str], reason: str, actor: str
) -> list[Reenrolment]:
    """Make accounts whose credentials may be known to an intruder start again: sessions ended,
    software revoked, password and second factors erased, a new enrolment code each (all of
    them, or none if one address is unknown)."""
    reason = reason.strip()
    if not 1 <= len(reason) <= 500:
        raise InvalidInput("say why, in 1 to 500 characters", field="reason")
    if not emails:
        raise InvalidInput("name at least one account", field="accounts")
    now, done = utcnow(), []
    with transaction(platform.sessions) as session:
        for email in dict.fromkeys(emails):
            user_id, label = _target(platform, session, "account", email)
            assert isinstance(user_id, uuid.UUID)
            user = session.get(User, user_id, with_for_update=True)
            assert user is not None
            end_access(session, user_id, now)
            for credential in session.scalars(
                select(WebAuthnCredential).where(WebAuthnCredential.user_id == user_id)
            ):
                session.delete(credential)
            user.password_hash = user.totp_secret_enc = user.totp_last_step = None
            user.failed_logins, user.locked_until = 0, None
            code = issue_enrolment(platform, user)
            append_events(
                session,
                [
                    AccessEvent(
                        at=now,
                        tag=Tag.ACCOUNT_REENROLLED,
                        actor=actor,
                        outcome="credentials-erased",
                        purpose=reason,
                    )
                ],
            )
            done.append(Reenrolment(label, code))
    return done


def unfreeze(platform: Platform, kind: str, name: str | None, actor: str) -> str:
    with transaction(platform.sessions) as session:
        target, label = _target(platform, session, kind, name)
        containment.record_unfreeze(session, kind, target, label, actor, utcnow())
        return label


def in_force(platform: Platform) -> list[containment.FreezeView]:
    with transaction(platform.sessions) as session:
        return containment.in_force(session)
