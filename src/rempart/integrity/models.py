"""The integrity journal: what the application wrote to each business table, in order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime


class JournalBlock(Base):
    """A block of journal entries of one table (see ``rowmac.entry``), written in one
    transaction; the ledger event of that transaction records the block's digest."""

    __tablename__ = "integrity_journal"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    table_name: Mapped[str] = mapped_column(String(40))
    entries: Mapped[bytes] = mapped_column(LargeBinary)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime())
