"""Users: accounts bound to a professional or an insurer, e-mail sealed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email_index", sa.LargeBinary(length=16), nullable=False),
        sa.Column("email_enc", sa.LargeBinary(), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("professional_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(role = 'professional' AND professional_id IS NOT NULL AND tenant_id IS NULL) OR (role = 'amc' AND tenant_id IS NOT NULL AND professional_id IS NULL) OR (role IN ('operator', 'security') AND tenant_id IS NULL AND professional_id IS NULL)",
            name=op.f("ck_users_binding"),
        ),
        sa.CheckConstraint(
            "role IN ('professional', 'amc', 'operator', 'security')", name=op.f("ck_users_role")
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_users_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_users_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email_index", name=op.f("uq_users_email_index")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_users_professional_id"), ["professional_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_users_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_users_professional_id"))

    op.drop_table("users")
