"""The guard's tables: freezes (containment), baselines and alerts (detection)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, Protected, UTCDateTime


class Freeze(Protected, Base):
    """A containment in force (``lifted_at`` null) or past. ``target`` is the frozen object's
    id (an account, a professional, a tenant) or ``*`` for the whole platform."""

    __tablename__ = "freezes"
    __table_args__ = (Index("ix_freezes_active", "kind", "target", "lifted_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(12))  # account | professional | tenant | platform
    target: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(60))  # how the operator named it (no e-mail)
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_by: Mapped[str | None] = mapped_column(String(80))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class GuardBaseline(Protected, Base):
    """What is normal for one account (``scope`` account, ``owner`` its actor) or one practice
    (``scope`` professional, ``owner`` its billing number), over the window ending ``through``
    (a Paris day). Written by ``rempart guard baselines``; a forged row could widen an intruder's
    allowance, hence its MAC. ``history`` (JSON) keeps the per-day figures the columns summarise,
    and the keyed digests of the networks and devices seen: no address, no patient."""

    __tablename__ = "guard_baselines"
    __table_args__ = (
        UniqueConstraint("scope", "owner"),
        CheckConstraint("scope IN ('account', 'professional')", name="scope"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    scope: Mapped[str] = mapped_column(String(12))
    owner: Mapped[str] = mapped_column(String(80))
    through: Mapped[date] = mapped_column(Date)
    days_active: Mapped[int] = mapped_column(Integer)
    daily: Mapped[int] = mapped_column(Integer)  # different patients on the busiest day
    peak: Mapped[int] = mapped_column(Integer)  # different patients in the busiest burst window
    hours: Mapped[int] = mapped_column(Integer)  # bit h: worked at Paris hour h on 2+ days
    networks: Mapped[str] = mapped_column(Text)  # keyed digests, space-separated
    devices: Mapped[str] = mapped_column(Text)
    history: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GuardAlert(Protected, Base):
    """A finding of the detection and what it answered, with its evidence: signal values and
    the bounds they passed, the context. Never a card, a name or an address."""

    __tablename__ = "guard_alerts"
    __table_args__ = (
        CheckConstraint("response IN ('allow', 'step-up', 'throttle', 'freeze')", name="response"),
        Index("ix_guard_alerts_at", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(80))  # the account or software, as in the ledger
    organisation: Mapped[str | None] = mapped_column(String(20))  # the practice's billing number
    signals: Mapped[str] = mapped_column(String(200))  # the findings' names, comma-separated
    response: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[str] = mapped_column(Text)  # JSON
