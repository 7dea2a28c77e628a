"""Row MACs on business tables and the integrity journal

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integrity_journal",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("table_name", sa.String(length=40), nullable=False),
        sa.Column("entries", sa.LargeBinary(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_integrity_journal")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("freezes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("member_imports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("rights_periods", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("rights_periods", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("member_imports", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("freezes", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_column("row_mac")

    op.drop_table("integrity_journal")
