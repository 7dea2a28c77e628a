"""Tables of the rights registry: tenants, plans, members, beneficiaries, rights, professionals.

Personal fields are stored sealed (``*_enc``, see ``rempart.crypto.fields``) and found through
blind indexes (``*_index``); ``key_version`` says which data key sealed a row, so a data key
rotation knows what is left to re-seal.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, Protected, UTCDateTime, utcnow

INDEX = LargeBinary(16)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Tenant(Protected, Base):
    """An insurer (AMC): the data controller of its members."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    amc_number: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | shredded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def scope(self) -> str:
        return tenant_scope(self.id)


def tenant_scope(tenant_id: uuid.UUID) -> str:
    return f"tenant:{tenant_id.hex}"


class PlanVersion(Protected, Base):
    """One version of a plan, in force from ``valid_from``; the document is the loaded JSON."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "code", "valid_from"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    document: Mapped[str] = mapped_column(Text)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Member(Protected, Base):
    """A membership (the card): its number is sealed and found by its blind index."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("tenant_id", "member_index"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    member_index: Mapped[bytes] = mapped_column(INDEX)
    member_number_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class Beneficiary(Protected, Base):
    """A person covered under a membership; found by the rights-check key's blind index."""

    __tablename__ = "beneficiaries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rights_index"),
        Index("ix_beneficiaries_nir", "tenant_id", "nir_index"),
        Index("ix_beneficiaries_import", "tenant_id", "status", "last_import_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("members.id"), index=True)
    # HMAC of (AMC number, member number, birth date, birth rank): the rights-check key.
    rights_index: Mapped[bytes] = mapped_column(INDEX)
    nir_index: Mapped[bytes | None] = mapped_column(INDEX)
    # NIR, names and birth date sealed together (see ``registry.identity``).
    identity_enc: Mapped[bytes] = mapped_column(LargeBinary)
    birth_rank: Mapped[int] = mapped_column(SmallInteger)
    relationship: Mapped[str] = mapped_column(String(10))
    key_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | closed
    # Keyed digest of the file row: an unchanged row on re-import is recognised without decrypting.
    source_digest: Mapped[bytes] = mapped_column(INDEX)
    last_import_id: Mapped[uuid.UUID | None] = mapped_column()
    last_import_line: Mapped[int | None] = mapped_column(Integer)
    # Given by the application (the integrity MAC covers them); the database's default remains
    # for rows written by migrations.
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )


class RightsPeriod(Protected, Base):
    """Coverage of a beneficiary by a plan from ``start_date`` to ``end_date`` (open if null)."""

    __tablename__ = "rights_periods"
    __table_args__ = (UniqueConstraint("beneficiary_id", "start_date"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    beneficiary_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("beneficiaries.id"))
    plan_code: Mapped[str] = mapped_column(String(20))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    suspended_domains: Mapped[str] = mapped_column(String(100), default="")


class MemberImport(Protected, Base):
    """The record of one member-file import: what came in, what it changed, how it ended."""

    __tablename__ = "member_imports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"), index=True)
    mode: Mapped[str] = mapped_column(String(10))  # full | delta
    partial: Mapped[bool] = mapped_column(Boolean)
    file_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))  # committed | rejected
    rows: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Professional(Protected, Base):
    """A health professional or facility under convention; its IBAN is sealed (platform scope)."""

    __tablename__ = "professionals"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    am_number: Mapped[str] = mapped_column(String(9), unique=True)
    rpps: Mapped[str | None] = mapped_column(String(11))
    finess: Mapped[str | None] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(String(200))
    profession: Mapped[str] = mapped_column(String(20))
    optam: Mapped[bool] = mapped_column(Boolean)
    networks: Mapped[str] = mapped_column(String(200), default="")
    iban_enc: Mapped[bytes] = mapped_column(LargeBinary)
    iban_hint: Mapped[str] = mapped_column(
        String(12)
    )  # "FR76…1234": enough to recognise, not to pay
    bic: Mapped[str] = mapped_column(String(11))
    key_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
