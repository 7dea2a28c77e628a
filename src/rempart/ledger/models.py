"""Tables of the ledger: entries (leaves), the tree's complete subtrees, the head, checkpoints."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rempart.db import Base, UTCDateTime


class LedgerEntry(Base):
    """One access event. ``event`` (its canonical encoding) is the leaf; the other columns are
    copies for queries, checked against it by ``rempart ledger verify``."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_at", "at"),
        Index("ix_ledger_entries_tenant_at", "tenant", "at"),
        Index("ix_ledger_entries_actor_at", "actor", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    tag: Mapped[str] = mapped_column(String(60))
    actor: Mapped[str] = mapped_column(String(80))
    tenant: Mapped[str | None] = mapped_column(String(10))
    beneficiary: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[bytes] = mapped_column(LargeBinary)


class LedgerNode(Base):
    """The root of a complete subtree: leaves [index·2^level, (index+1)·2^level)."""

    __tablename__ = "ledger_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerHead(Base):
    """One row: the tree's size. Appenders lock it, so leaves are numbered without gaps."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    # The frontier's subtree roots, largest first (32 bytes each): an append reads this row and
    # nothing else. Derived from the nodes; recomputed from them when absent.
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary)


class LedgerCheckpoint(Base):
    """A signed statement of the tree's size and root (C2SP tlog-checkpoint)."""

    __tablename__ = "ledger_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
