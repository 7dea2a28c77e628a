"""Containment: what is frozen, by whom, why, and when it was lifted."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String
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
