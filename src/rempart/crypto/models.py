"""The wrapped data keys: one row per scope, purpose and version; never a key in clear."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime, utcnow

PURPOSE_LENGTH = 10  # a data key's purpose, or a platform secret's name


class DataKey(Base):
    __tablename__ = "data_keys"
    __table_args__ = (UniqueConstraint("scope", "purpose", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    # "tenant:<uuid>" for an insurer's data, "platform" for the operator's own (bank details).
    scope: Mapped[str] = mapped_column(String(60), index=True)
    # "data" (AES-GCM) or "index" (blind indexes); a platform secret's name in scope "platform"
    purpose: Mapped[str] = mapped_column(String(PURPOSE_LENGTH))
    version: Mapped[int]
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(10), default="active")  # active | previous
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
