"""A person's own credentials, as the portals need them: enrolment with the one-time code that
``rempart users add`` printed, step-up (a fresh second factor within a session), the key of the
portals' form tokens, logins from devices never seen before, and the account's own e-mail.

Enrolment sets the password (the policy of ``password_rules``, argon2id) together with the
second factor, and only once the person has proved they hold it: the TOTP secret (RFC 6238) by
a first code of their app, or a security key (WebAuthn) by its answer. An account is never left
with a password and no second factor. The code is spent by the enrolment; only its SHA-256 was
ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.db import transaction, utcnow
from rempart.errors import Error, Forbidden, InvalidInput
from rempart.identity import totp
from rempart.identity.auth import (
    Client,
    PendingLogin,
    Principal,
    person_of,
    second_factor_failed,
    stepped_up,
)
from rempart.identity.models import AuthSession, User
from rempart.identity.password_rules import password_problem
from rempart.identity.services import password_hasher
from rempart.identity.webauthn import CHALLENGE_LIFETIME, creation_options, new_credential
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform

FORM_KEY = "csrf"  # the platform secret the portals' form tokens are computed under
_SECRET = re.compile(r"[A-Z2-7]{32,64}")  # base32, at least 160 bits (RFC 4226 §4)
NEW_DEVICE_DAYS = 30  # logins from a new device older than this are no longer reported
_HISTORY = 1000  # sessions of an account read to tell a known device from a new one


class EnrolmentRefused(InvalidInput):
    """An unknown, spent or expired code: one answer for all three."""

    def __init__(self) -> None:
        super().__init__(
            "the enrolment code is not valid, was already used, or has expired: ask for a new one",
            field="code",
        )


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the person's own address and a new secret to scan."""

    user_id: uuid.UUID
    email: str
    totp_secret: str
    totp_uri: str


def _code_hash(code: str) -> bytes:
    return hashlib.sha256(code.strip().encode()).digest()


def _pending(session: Session, code: str, now: datetime, lock: bool = False) -> User:
    if not 1 <= len(code.strip()) <= 100:
        raise EnrolmentRefused()
    query = select(User).where(User.enrolment_hash == _code_hash(code))
    user = session.scalar(query.with_for_update() if lock else query)
    if user is None or user.enrolment_expires_at is None or user.enrolment_expires_at <= now:
        raise EnrolmentRefused()
    return user


def _email(platform: Platform, session: Session, user: User) -> str:
    cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
    return cipher.open("users", "email", user.id.hex, user.email_enc)


def start_enrolment(platform: Platform, code: str, secret: str | None = None) -> Enrolment:
    """Check an enrolment code and draw a TOTP secret for the person to scan (or show again the
    one already drawn, when the page is shown again after a mistake); changes nothing."""
    with transaction(platform.sessions) as session:
        user = _pending(session, code, utcnow())
        email = _email(platform, session, user)
        if secret is None or not _SECRET.fullmatch(secret):
            secret = totp.new_secret()
        return Enrolment(user.id, email, secret, totp.provisioning_uri(secret, email))


def complete_enrolment(
    platform: Platform,
    code: str,
    password: str,
    totp_secret: str,
    first_code: str,
    client: Client,
) -> uuid.UUID:
    """Set the password and the TOTP secret of the account behind ``code``, once a first code
    from the secret is right; the enrolment code is spent. Returns the account's id."""
    now = utcnow()
    secret = totp_secret.strip().upper()
    with transaction(platform.sessions) as session:
        user = _pending(session, code, now, lock=True)
        hashed = _password_hash(platform, session, user, password)
        if not _SECRET.fullmatch(secret):
            raise InvalidInput("is not a base32 secret of at least 160 bits", field="totp_secret")
        step = totp.accepted_step(secret, first_code.strip(), now, None)
        if step is None:
            raise InvalidInput(
                "is not the code the authenticator app shows now for this secret", field="totp"
            )
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        user.totp_secret_enc = cipher.seal("users", "totp_secret", user.id.hex, secret)
        user.totp_last_step = step  # the code that confirmed the enrolment is spent too
        _enrolled(session, user, hashed, "password and totp", now, client)
        return user.id


# Enrolment with a security key (WebAuthn) in place of the app. No session exists yet to keep
# a challenge for: it is derived from the enrolment code and a random, expiring ticket that the
# page sends back. Only the holder of the code can use it, and only until the code is spent.

KEY_ENROLMENT = "key-enrol"  # the platform secret those challenges are derived under


@dataclass(frozen=True)
class KeyEnrolment:
    options: dict[str, Any]  # PublicKeyCredentialCreationOptions, JSON
    ticket: str  # sent back with the key's answer


def start_key_enrolment(platform: Platform, code: str) -> KeyEnrolment:
    """Creation options for the person holding ``code``; changes nothing."""
    now = utcnow()
    expires = int((now + CHALLENGE_LIFETIME).timestamp())
    ticket = f"{secrets.token_urlsafe(16)}.{expires}"
    with transaction(platform.sessions) as session:
        user = _pending(session, code, now)
        email = _email(platform, session, user)
        challenge = _key_challenge(platform, session, code, ticket)
        return KeyEnrolment(creation_options(platform, user.id, email, challenge), ticket)


def complete_key_enrolment(
    platform: Platform,
    code: str,
    password: str,
    ticket: str,
    credential: Mapping[str, Any],
    key_name: str,
    client: Client,
) -> uuid.UUID:
    """Set the password of the account behind ``code`` and keep its first security key, once the
    key answered the challenge of ``ticket``; the enrolment code is spent."""
    now = utcnow()
    key_name = key_name.strip()
    if not 1 <= len(key_name) <= 100:
        raise InvalidInput("must be 1 to 100 characters", field="name")
    with transaction(platform.sessions) as session:
        user = _pending(session, code, now, lock=True)
        hashed = _password_hash(platform, session, user, password)
        _, _, expires = ticket.rpartition(".")
        live = expires.isdigit() and int(expires) > now.timestamp()
        challenge = _key_challenge(platform, session, code, ticket) if live else None
        added = new_credential(platform, session, user.id, credential, challenge, key_name, now)
        if isinstance(added, Error):
            raise added
        _enrolled(session, user, hashed, "password and security key", now, client)
        return user.id


def _key_challenge(platform: Platform, session: Session, code: str, ticket: str) -> bytes:
    key = platform.keyring.platform_secret(session, KEY_ENROLMENT)
    return hmac.digest(key, _code_hash(code) + b"|" + ticket.encode(), "sha256")


def _password_hash(platform: Platform, session: Session, user: User, password: str) -> str:
    """The new password, hashed, if the policy accepts it for this person."""
    local = _email(platform, session, user).split("@")[0]
    problem = password_problem(password, [local, *re.split(r"[._+-]", local)])
    if problem:
        raise InvalidInput(problem, field="password")
    return password_hasher(platform.settings).hash(password)


def _enrolled(
    session: Session, user: User, password_hash: str, factors: str, now: datetime, client: Client
) -> None:
    """The account is usable: its password set, its code spent, on the record."""
    user.password_hash = password_hash
    user.enrolment_hash = user.enrolment_expires_at = None
    user.failed_logins, user.locked_until = 0, None
    append_events(
        session,
        [
            AccessEvent(
                at=now,
                tag=Tag.ACCOUNT_ENROLLED,
                actor=f"user:{user.id}",
                outcome="enrolled",
                purpose=factors,
                ip=client.ip,
                user_agent=client.user_agent,
            )
        ],
    )


def confirm_second_factor(
    platform: Platform, principal: Principal, code: str, client: Client
) -> None:
    """A TOTP code given again within a session (step-up): the session counts as freshly
    authenticated, which sensitive changes require (``auth.recent_person``). Wrong codes count
    toward the account's lockout, and five end the session, as at login."""
    user_id = person_of(principal)
    now = utcnow()
    outcome: Error | None = None
    with transaction(platform.sessions) as session:
        auth = session.get(AuthSession, principal.session_id, with_for_update=True)
        user = session.get(User, user_id, with_for_update=True)
        if auth is None or user is None or auth.revoked_at is not None:
            raise Forbidden("this session has ended: sign in again")
        if user.totp_secret_enc is None:
            raise Forbidden("this account has no TOTP: sign in again with your authenticator")
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        secret = cipher.open("users", "totp_secret", user.id.hex, user.totp_secret_enc)
        step = totp.accepted_step(secret, code.strip(), now, user.totp_last_step)
        if step is None:
            second_factor_failed(
                platform, session, PendingLogin(auth, user), now, client, "wrong-step-up"
            )
            outcome = InvalidInput("is not the code your application shows now", field="code")
        else:
            user.totp_last_step = step
            stepped_up(session, auth, principal, client, now)
    if outcome is not None:
        raise outcome


def form_key(platform: Platform) -> bytes:
    """The platform secret the portals' form (CSRF) tokens are computed under."""
    with transaction(platform.sessions) as session:
        return platform.keyring.platform_secret(session, FORM_KEY)


def own_email(platform: Platform, principal: Principal) -> str:
    """The address of the person behind a session (to name their account for containment)."""
    user_id = person_of(principal)
    with transaction(platform.sessions) as session:
        user = session.get(User, user_id)
        if user is None:
            raise Forbidden("this session has no account")
        return _email(platform, session, user)


@dataclass(frozen=True)
class DeviceLogin:
    """A login from a device (browser and address) the account had never used before."""

    at: datetime
    ip: str | None
    user_agent: str | None
    current: bool  # the login of the session asking


def logins_from_new_devices(platform: Platform, principal: Principal) -> list[DeviceLogin]:
    """Logins of this account from a device never seen before them, since this device's previous
    login (at most ``NEW_DEVICE_DAYS`` back): what the person is asked to recognise. The account's
    first login is no news; the current login is included when its own device is new."""
    user_id = person_of(principal)
    now = utcnow()
    with transaction(platform.sessions) as session:
        rows = list(
            session.execute(
                select(
                    AuthSession.id, AuthSession.created_at, AuthSession.ip, AuthSession.user_agent
                )
                .where(AuthSession.user_id == user_id, AuthSession.stage == "active")
                .order_by(AuthSession.created_at.desc())
                .limit(_HISTORY)
            ).all()
        )
    rows.reverse()
    current = next((r for r in rows if r.id == principal.session_id), None)
    if current is None:
        return []
    here = (current.ip, current.user_agent)
    seen: set[tuple[str | None, str | None]] = set()
    new: list[DeviceLogin] = []
    last_here: datetime | None = None
    for row in rows:
        device = (row.ip, row.user_agent)
        if seen and device not in seen:
            new.append(DeviceLogin(row.created_at, row.ip, row.user_agent, row.id == current.id))
        seen.add(device)
        if device == here and row.created_at < current.created_at:
            last_here = row.created_at
    since = now - timedelta(days=NEW_DEVICE_DAYS)
    since = max(since, last_here) if last_here else since
    return [login for login in new if login.at > since or login.current]
