"""User accounts. An account is bound to what its role may act for: a professional or a tenant.

The e-mail address is personal data: sealed under the platform key, found by its blind index.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, LargeBinary, String, func
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, Protected, UTCDateTime, utcnow
from rempart.registry.models import INDEX, new_id

ROLES = ("professional", "amc", "operator", "security")


class User(Protected, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('professional', 'amc', 'operator', 'security')", name="role"),
        # A professional account acts for one professional, an insurer's for one tenant, staff
        # for neither: the binding is part of the row, so no query can forget it.
        CheckConstraint(
            "(role = 'professional' AND professional_id IS NOT NULL AND tenant_id IS NULL)"
            " OR (role = 'amc' AND tenant_id IS NOT NULL AND professional_id IS NULL)"
            " OR (role IN ('operator', 'security') AND tenant_id IS NULL"
            " AND professional_id IS NULL)",
            name="binding",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email_index: Mapped[bytes] = mapped_column(INDEX, unique=True)
    email_enc: Mapped[bytes] = mapped_column(LargeBinary)
    role: Mapped[str] = mapped_column(String(12))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    professional_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("professionals.id"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | frozen
    key_version: Mapped[int] = mapped_column(Integer)
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id, PHC string
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # each code is used once
    # A one-time code to set the password and second factor in the portal; only its hash is kept.
    enrolment_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    enrolment_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class AuthSession(Base):
    """A login: first waiting for its second factor (stage "mfa"), then "active".

    Only the SHA-256 of its token is stored: the token is 256 random bits, so the hash cannot be
    reversed, and a copy of this table opens nothing.
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (client_id IS NULL)", name="one_owner"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # A person's session, or an API client's access token: one of the two.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_clients.id"), index=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    stage: Mapped[str] = mapped_column(String(6))  # mfa | active
    mfa_failures: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the absolute limit
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class ApiClient(Protected, Base):
    """Billing software of a professional, known by its Ed25519 public key (never a secret)."""

    __tablename__ = "api_clients"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))  # raw Ed25519 key
    registered_by: Mapped[str] = mapped_column(String(80))  # user:<id> or cli:<operator>
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SpentAssertion(Base):
    """The ``jti`` of every client assertion accepted, kept until it expires: never twice."""

    __tablename__ = "spent_assertions"

    jti_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WebAuthnCredential(Protected, Base):
    """A person's WebAuthn authenticator (security key, passkey): a second factor a phishing page
    cannot relay, since the browser binds every assertion to our origin.

    Its row MAC binds the public key (and the counter) to its account: a key written into the
    database by someone without the platform's keys opens nothing.
    """

    __tablename__ = "webauthn_credentials"
    __table_args__ = (CheckConstraint("sign_count >= 0", name="sign_count"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)  # ≤ 1023 bytes
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # a COSE_Key
    # The authenticator's signature counter: a value that does not grow betrays a clone.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    transports: Mapped[str] = mapped_column(String(80))  # comma-separated hints for the browser
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebAuthnChallenge(Base):
    """The challenge a session was last given for a WebAuthn ceremony: one per session and
    ceremony, spent by the first answer, short-lived. Only its hash is kept."""

    __tablename__ = "webauthn_challenges"
    __table_args__ = (CheckConstraint("ceremony IN ('register', 'login')", name="ceremony"),)

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id"), primary_key=True)
    ceremony: Mapped[str] = mapped_column(String(8), primary_key=True)
    challenge_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
