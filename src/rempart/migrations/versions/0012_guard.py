"""Detection: baselines of accounts and practices, alerts with their evidence

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guard_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("organisation", sa.String(length=20), nullable=True),
        sa.Column("signals", sa.String(length=200), nullable=False),
        sa.Column("response", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "response IN ('allow', 'step-up', 'throttle', 'freeze')",
            name=op.f("ck_guard_alerts_response"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guard_alerts")),
    )
    with op.batch_alter_table("guard_alerts", schema=None) as batch_op:
        batch_op.create_index("ix_guard_alerts_at", ["at"], unique=False)

    op.create_table(
        "guard_baselines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=12), nullable=False),
        sa.Column("owner", sa.String(length=80), nullable=False),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("days_active", sa.Integer(), nullable=False),
        sa.Column("daily", sa.Integer(), nullable=False),
        sa.Column("peak", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("networks", sa.Text(), nullable=False),
        sa.Column("devices", sa.Text(), nullable=False),
        sa.Column("history", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "scope IN ('account', 'professional')", name=op.f("ck_guard_baselines_scope")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guard_baselines")),
        sa.UniqueConstraint("scope", "owner", name=op.f("uq_guard_baselines_scope_owner")),
    )


def downgrade() -> None:
    op.drop_table("guard_baselines")
    with op.batch_alter_table("guard_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_guard_alerts_at")

    op.drop_table("guard_alerts")
