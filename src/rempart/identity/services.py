"""Use cases of accounts: create one, bound to what its role acts for, with its credentials."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from rempart.crypto.keyring import PLATFORM_SCOPE
from rempart.db import transaction, utcnow
from rempart.errors import Conflict, InvalidInput, NotFound
from rempart.identity import totp
from rempart.identity.models import ROLES, User
from rempart.identity.password_rules import password_problem
from rempart.ledger.events import AccessEvent, Tag
from rempart.ledger.services import append_events
from rempart.platform import Platform
from rempart.registry.models import Professional, Tenant
from rempart.settings import Settings

_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def password_hasher(settings: Settings) -> PasswordHasher:
    """argon2id with the costs of the settings (RFC 9106)."""
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput("is not an e-mail address", field="email")
    local, domain = email.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def email_index(platform: Platform, session: Session, email: str) -> bytes:
    # Case-insensitive look-up: the index is of the lower-cased address.
    return platform.keyring.indexer(session, PLATFORM_SCOPE).index("email", email.lower())


@dataclass(frozen=True)
class NewUser:
    user_id: uuid.UUID
    role: str
    enrolment_code: str | None  # shown once, when no password was given
    totp_uri: str | None  # shown once, when TOTP was enrolled here


def add_user(
    platform: Platform,
    role: str,
    email: str,
    *,
    actor: str,
    am_number: str | None = None,
    amc_number: str | None = None,
    password: str | None = None,
    enrol_totp: bool = False,
) -> NewUser:
    """Create an account. Without a password, it gets a one-time enrolment code for the portal."""
    if role not in ROLES:
        raise InvalidInput("must be one of " + ", ".join(ROLES), field="role")
    email = normalise_email(email)
    if enrol_totp and password is None:
        raise InvalidInput("a second factor is enrolled together with a password", field="totp")
    if password is not None:
        local = email.split("@")[0]
        problem = password_problem(password, [local, *re.split(r"[._+-]", local)])
        if problem:
            raise InvalidInput(problem, field="password")
    with transaction(platform.sessions) as session:
        professional_id, tenant_id = _binding(session, role, am_number, amc_number)
        index = email_index(platform, session, email)
        if session.scalar(select(User.id).where(User.email_index == index)) is not None:
            raise Conflict("an account with this e-mail address already exists")
        cipher = platform.keyring.cipher(session, PLATFORM_SCOPE)
        user = User(
            id=uuid.uuid4(),
            email_index=index,
            role=role,
            professional_id=professional_id,
            tenant_id=tenant_id,
            key_version=cipher.active_version,
            failed_logins=0,
        )
        user.email_enc = cipher.seal("users", "email", user.id.hex, email)
        code = totp_uri = None
        if password is None:
            code = issue_enrolment(platform, user)
        else:
            user.password_hash = password_hasher(platform.settings).hash(password)
        if enrol_totp:
            secret = totp.new_secret()
            user.totp_secret_enc = cipher.seal("users", "totp_secret", user.id.hex, secret)
            totp_uri = totp.provisioning_uri(secret, email)
        session.add(user)
        session.flush()
        append_events(
            session,
            [
                AccessEvent(
                    at=utcnow(),
                    tag=Tag.ACCOUNT_CREATED,
                    actor=actor,
                    outcome="created",
                    purpose=f"account for role {role}",
                    organisation=am_number or amc_number,
                    tenant=amc_number,
                )
            ],
        )
        return NewUser(user.id, role, code, totp_uri)


def issue_enrolment(platform: Platform, user: User) -> str:
    """A one-time code with which the person sets a password and a second factor in the portal;
    only its hash is kept, and it expires."""
    code = secrets.token_urlsafe(18)
    user.enrolment_hash = hashlib.sha256(code.encode()).digest()
    user.enrolment_expires_at = utcnow() + timedelta(hours=platform.settings.enrolment_hours)
    return code


def _binding(
    session: Session, role: str, am_number: str | None, amc_number: str | None
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """What the account acts for: a professional, an insurer, or (staff) neither."""
    if role == "professional":
        if am_number is None or amc_number is not None:
            raise InvalidInput(
                "a professional account needs --am-number, and only it", field="am_number"
            )
        found = session.scalar(select(Professional.id).where(Professional.am_number == am_number))
        if found is None:
            raise NotFound(f"no professional with billing number {am_number}")
        return found, None
    if role == "amc":
        if amc_number is None or am_number is not None:
            raise InvalidInput(
                "an insurer's account needs --amc-number, and only it", field="amc_number"
            )
        tenant = session.scalar(select(Tenant).where(Tenant.amc_number == amc_number))
        if tenant is None or tenant.status != "active":
            raise NotFound(f"no active insurer with AMC number {amc_number}")
        return None, tenant.id
    if am_number is not None or amc_number is not None:
        raise InvalidInput(
            f"a {role} account acts for the platform, not for an organisation", field="role"
        )
    return None, None
