"""Logging in: a password, then a second factor, then a short-lived, revocable session.

Nothing here tells an attacker whether an address has an account: a wrong address, a wrong
password and a locked account get the same error after the same work (an argon2 verification
runs on every path). A password alone opens nothing: it only earns a five-minute token that a
second factor can exchange for a session.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.db import transaction, utcnow
from rempart.errors import Error, Forbidden, Unavailable
from rempart.guard import containment
from rempart.identity import totp
from rempart.identity.models import ApiClient, AuthSession, User, WebAuthnCredential
from rempart.identity.services import email_index, password_hasher
from rempart.integrity import journal
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry.models import Professional, Tenant

SESSION_KEY = "session"
MFA_ATTEMPTS = 5
STAFF = ("operator", "security")  # wrong codes one login may try before it must start again


class AuthenticationFailed(Error):
    """The one answer to every failed login, whatever the cause."""

    status = 401
    title = "Authentication failed"
    type_slug = "authentication-failed"

    def __init__(self) -> None:
        super().__init__("the credentials are not valid, or the account is locked")


@dataclass(frozen=True)
class Client:
    """Where a request comes from, as recorded in the ledger."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class MfaChallenge:
    mfa_token: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class PendingLogin:
    """A login past its password, waiting for its second factor, and its account."""

    auth: AuthSession
    user: User


@dataclass(frozen=True)
class Granted:
    access_token: str
    expires_in: int


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what for: the only thing routes know about the caller."""

    actor: str  # "user:<id>" for a person, "client:<id>" for billing software
    role: str
    session_id: uuid.UUID
    tenant_id: uuid.UUID | None
    professional_id: uuid.UUID | None
    organisation: str | None  # the professional's billing number or the insurer's AMC number
    profession: str | None = None  # for professionals: which domains they check and bill
    # The person answerable for the caller (a client's registrant): quotas count per person.
    account: str = ""
    authenticated_at: datetime | None = None  # when the second factor was given (people)


def token_hash(platform: Platform, session: Session, token: str) -> bytes:
    """The stored form of a token: an HMAC under a platform secret, so that someone who can write
    to the database cannot plant a session of their own (an unkeyed hash would let them)."""
    key = platform.keyring.platform_secret(session, SESSION_KEY)
    return hmac.digest(key, token.encode(), "sha256")


@lru_cache(maxsize=8)
def _decoy(hasher_params: tuple[int, int, int]) -> str:
    """A hash to verify against when there is no account: the same work as a real check."""
    time_cost, memory, parallelism = hasher_params
    return PasswordHasher(time_cost=time_cost, memory_cost=memory, parallelism=parallelism).hash(
        secrets.token_hex(16)
    )


def _password_matches(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    """Verify against the stored hash, or against a decoy when there is none (same work)."""
    params = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    try:
        hasher.verify(stored or _decoy(params), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None


def _event(
    tag: Tag, actor: str, outcome: str, client: Client, organisation: str | None = None
) -> AccessEvent:
    return AccessEvent(
        at=utcnow(),
        tag=tag,
        actor=actor,
        outcome=outcome,
        purpose="login",
        organisation=organisation,
        ip=client.ip,
        user_agent=client.user_agent,
    )


def _locked(session: Session, user: User, now: datetime) -> bool:
    return (
        user.status != "active"
        or (user.locked_until is not None and user.locked_until > now)
        or containment.frozen(session, "account", user.id)
    )


RELEASE_BY_OPERATOR = datetime(9999, 1, 1, tzinfo=UTC)


def _fail(platform: Platform, session: Session, user: User, now: datetime) -> None:
    """Count a failure. At the threshold the account locks for a while, then for twice as long
    at each further failure; at three times the threshold it stays locked until an operator
    releases it: an absolute cap, not ten guesses every half hour forever."""
    user.failed_logins += 1
    threshold = platform.settings.lockout_failures
    if user.failed_logins >= 3 * threshold:
        user.locked_until = RELEASE_BY_OPERATOR
    elif user.failed_logins >= threshold:
        doubling = min(user.failed_logins - threshold, 10)
        user.locked_until = now + timedelta(minutes=platform.settings.lockout_minutes * 2**doubling)


def login(platform: Platform, email: str, password: str, client: Client) -> MfaChallenge:
    """Check the password; on success, a token to give with the second factor."""
    hasher = password_hasher(platform.settings)
    now = utcnow()
    outcome: MfaChallenge | None = None
    with transaction(platform.sessions) as session:
        index = email_index(platform, session, email.strip())
        user = session.scalar(select(User).where(User.email_index == index).with_for_update())
        matches = _password_matches(hasher, user.password_hash if user else None, password)
        if user is None:
            append_events(
                session, [_event(Tag.LOGIN_FAILURE, "unknown", "no-such-account", client)]
            )
        elif (locked := _locked(session, user, now)) or not matches:
            if not locked:
                _fail(platform, session, user, now)
            append_events(
                session, [_event(Tag.LOGIN_FAILURE, f"user:{user.id}", "refused", client)]
            )
        else:
            token = secrets.token_urlsafe(32)
            session.add(
                AuthSession(
                    user_id=user.id,
                    token_hash=token_hash(platform, session, token),
                    stage="mfa",
                    mfa_failures=0,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + timedelta(minutes=platform.settings.mfa_minutes),
                    ip=client.ip,
                    user_agent=(client.user_agent or "")[:200] or None,
                )
            )
            outcome = MfaChallenge(token, _methods(session, user))
    if outcome is None:
        raise AuthenticationFailed()
    return outcome


def _methods(session: Session, user: User) -> tuple[str, ...]:
    """The second factors the account can give, the phishing-resistant one first."""
    webauthn = session.scalar(
        select(WebAuthnCredential.id).where(WebAuthnCredential.user_id == user.id).limit(1)
    )
    return (("webauthn",) if webauthn else ()) + (("totp",) if user.totp_secret_enc else ())


def complete_totp(platform: Platform, mfa_token: str, code: str, client: Client) -> Granted:
    """Exchange the login's token and a TOTP code for a session token (a fresh one)."""
    now = utcnow()
    granted: Granted | None = None
    with transaction(platform.sessions) as session:
        pending = pending_login(platform, session, mfa_token, now)
        if pending is None:
            pass
        elif (user := pending.user).totp_secret_enc is None:
            pending.auth.revoked_at = now
        else:
            cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
            secret = cipher.open("users", "totp_secret", user.id.hex, user.totp_secret_enc)
            step = totp.accepted_step(secret, code, now, user.totp_last_step)
            if step is None:
                second_factor_failed(platform, session, pending, now, client)
            else:
                user.totp_last_step = step
                granted = open_session(platform, session, pending, now, client)
    if granted is None:
        raise AuthenticationFailed()
    return granted


def pending_login(
    platform: Platform, session: Session, mfa_token: str, now: datetime
) -> PendingLogin | None:
    """The login waiting for its second factor behind ``mfa_token``, and its account, both
    locked for the transaction; None if there is none to complete (a locked account's ends)."""
    pending = session.scalar(
        select(AuthSession)
        .where(AuthSession.token_hash == token_hash(platform, session, mfa_token))
        .with_for_update()
    )
    user = session.get(User, pending.user_id, with_for_update=True) if pending else None
    if (
        pending is None
        or user is None
        or pending.stage != "mfa"
        or pending.revoked_at
        or pending.expires_at <= now
    ):
        return None
    if _locked(session, user, now):
        pending.revoked_at = now
        return None
    return PendingLogin(pending, user)


def second_factor_failed(
    platform: Platform,
    session: Session,
    pending: PendingLogin,
    now: datetime,
    client: Client,
    outcome: str = "wrong-second-factor",
) -> None:
    """A wrong second factor: it counts toward the account's lockout, and a login that tried
    too many ends."""
    _fail(platform, session, pending.user, now)
    pending.auth.mfa_failures += 1
    if pending.auth.mfa_failures >= MFA_ATTEMPTS:
        pending.auth.revoked_at = now
    actor = f"user:{pending.user.id}"
    append_events(session, [_event(Tag.LOGIN_FAILURE, actor, outcome, client)])


def open_session(
    platform: Platform,
    session: Session,
    pending: PendingLogin,
    now: datetime,
    client: Client,
) -> Granted:
    """The second factor was right: the login becomes a session, under a new token."""
    auth, user = pending.auth, pending.user
    user.failed_logins = 0
    token = secrets.token_urlsafe(32)
    lifetime = timedelta(hours=platform.settings.session_absolute_hours)
    # The login's token is spent: the session gets a new one, so whoever saw the first cannot
    # ride on the second factor.
    auth.token_hash, auth.stage = token_hash(platform, session, token), "active"
    auth.expires_at, auth.last_seen_at = now + lifetime, now
    auth.created_at = now  # when the second factor was given: recent authentication
    organisation = _organisation(session, user)
    append_events(
        session, [_event(Tag.LOGIN_SUCCESS, f"user:{user.id}", "session", client, organisation)]
    )
    return Granted(token, int(lifetime.total_seconds()))


def _organisation(session: Session, user: User) -> str | None:
    if user.professional_id:
        return session.scalar(
            select(Professional.am_number).where(Professional.id == user.professional_id)
        )
    if user.tenant_id:
        return session.scalar(select(Tenant.amc_number).where(Tenant.id == user.tenant_id))
    return None


STEP_UP = timedelta(minutes=10)


def person_of(principal: Principal) -> uuid.UUID:
    """The account behind a person's session (billing software has none)."""
    kind, _, ident = principal.actor.partition(":")
    if kind != "user":
        raise Forbidden("this is for a person's session")
    return uuid.UUID(ident)


def stepped_up(
    session: Session, auth: AuthSession, principal: Principal, client: Client, now: datetime
) -> None:
    """A second factor given again within a session (a code or a key): it counts as fresh."""
    auth.created_at = now
    append_events(
        session,
        [
            AccessEvent(
                at=now,
                tag=Tag.LOGIN_SUCCESS,
                actor=principal.actor,
                outcome="step-up",
                purpose="login",
                organisation=principal.organisation,
                ip=client.ip,
                user_agent=client.user_agent,
            )
        ],
    )


def recent_person(principal: Principal, now: datetime) -> uuid.UUID:
    """The account of a person who gave a second factor less than ``STEP_UP`` ago: what every
    sensitive change (keys, second factors, containment) requires. Neither billing software nor
    an old, perhaps stolen, session qualifies."""
    kind, _, ident = principal.actor.partition(":")
    fresh = principal.authenticated_at is not None and now - principal.authenticated_at <= STEP_UP
    if kind != "user" or not fresh:
        raise Forbidden("sign in again with your second factor (within 10 minutes) to do this")
    return uuid.UUID(ident)


def authenticate(platform: Platform, token: str) -> Principal:
    """The caller behind a bearer token, if its session is active, fresh and its owner open."""
    now = utcnow()
    with transaction(platform.sessions) as session:
        auth = session.scalar(
            select(AuthSession).where(
                AuthSession.token_hash == token_hash(platform, session, token)
            )
        )
        idle = timedelta(minutes=platform.settings.session_idle_minutes)
        if (
            auth is None
            or auth.stage != "active"
            or auth.revoked_at is not None
            or auth.expires_at <= now
            or auth.last_seen_at + idle <= now
        ):
            raise AuthenticationFailed()
        principal = _owner(session, auth)
        _check_containment(session, principal)
        if now - auth.last_seen_at > timedelta(seconds=60):  # one write a minute, not a request
            session.execute(
                update(AuthSession).where(AuthSession.id == auth.id).values(last_seen_at=now)
            )
        return principal


def _owner(session: Session, auth: AuthSession) -> Principal:
    """The person or the billing software a session belongs to, if still allowed in: the
    account, and the professional or insurer it acts for, must all be active."""
    if auth.user_id is not None:
        user = session.get(User, auth.user_id)
        if user is None or user.status != "active":
            raise AuthenticationFailed()
        professional = (
            session.get(Professional, user.professional_id) if user.professional_id else None
        )
        tenant = session.get(Tenant, user.tenant_id) if user.tenant_id else None
        # The role and the binding decide what the caller may do: never trust them unchecked.
        for row in (user, professional, tenant):
            if row is not None:
                journal.check_row(session, row)
        if (professional and professional.status != "active") or (
            tenant and tenant.status != "active"
        ):
            raise AuthenticationFailed()
        organisation = (
            professional.am_number if professional else (tenant.amc_number if tenant else None)
        )
        return Principal(
            f"user:{user.id}",
            user.role,
            auth.id,
            user.tenant_id,
            user.professional_id,
            organisation,
            professional.profession if professional else None,
            account=f"user:{user.id}",
            authenticated_at=auth.created_at,
        )
    client = session.get(ApiClient, auth.client_id)
    if client is None or client.revoked_at is not None:
        raise AuthenticationFailed()
    professional = session.get(Professional, client.professional_id)
    if professional is None or professional.status != "active":
        raise AuthenticationFailed()
    journal.check_row(session, client)
    journal.check_row(session, professional)
    return Principal(
        f"client:{client.id}",
        "professional",
        auth.id,
        None,
        professional.id,
        professional.am_number,
        professional.profession,
        account=client.registered_by,
    )


def _check_containment(session: Session, principal: Principal) -> None:
    """Frozen accounts, professionals and insurers stop at once; a platform freeze stops all
    but the operators and security analysts who must lift it."""
    active = containment.in_force_now(session)
    if not active:
        return
    kind, _, ident = principal.actor.partition(":")
    mine = {
        ("account", uuid.UUID(ident).hex if kind == "user" else ""),
        ("professional", principal.professional_id.hex if principal.professional_id else ""),
        ("tenant", principal.tenant_id.hex if principal.tenant_id else ""),
    }
    if active & mine:
        raise AuthenticationFailed()
    if principal.role not in STAFF and ("platform", containment.PLATFORM_TARGET) in active:
        raise Unavailable("the platform is suspended by its operator; try again later")


def logout(platform: Platform, principal: Principal) -> None:
    with transaction(platform.sessions) as session:
        session.execute(
            update(AuthSession)
            .where(AuthSession.id == principal.session_id)
            .values(revoked_at=utcnow())
        )
        append_events(session, [_event(Tag.LOGOUT, principal.actor, "ended", Client())])
