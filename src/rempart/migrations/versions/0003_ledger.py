"""Ledger: access events, the Merkle tree's nodes, its head and signed checkpoints

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tag", sa.String(length=60), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("tenant", sa.String(length=10), nullable=True),
        sa.Column("beneficiary", sa.String(length=64), nullable=True),
        sa.Column("event", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_ledger_entries")),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entries_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index("ix_ledger_entries_at", ["at"], unique=False)
        batch_op.create_index("ix_ledger_entries_tenant_at", ["tenant", "at"], unique=False)

    op.create_table(
        "ledger_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_head")),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "index", name=op.f("pk_ledger_nodes")),
    )


def downgrade() -> None:
    op.drop_table("ledger_nodes")
    op.drop_table("ledger_head")
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_tenant_at")
        batch_op.drop_index("ix_ledger_entries_at")
        batch_op.drop_index("ix_ledger_entries_actor_at")

    op.drop_table("ledger_entries")
    op.drop_table("ledger_checkpoints")
