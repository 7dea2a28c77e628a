"""API clients: billing software known by an Ed25519 key; sessions owned by a user or a client

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spent_assertions",
        sa.Column("jti_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti_hash", name=op.f("pk_spent_assertions")),
    )
    with op.batch_alter_table("spent_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_spent_assertions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "api_clients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("registered_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_api_clients_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_clients")),
    )
    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_clients_professional_id"), ["professional_id"], unique=False
        )

    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("user_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_index(batch_op.f("ix_auth_sessions_client_id"), ["client_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_auth_sessions_client_id_api_clients"),
            "api_clients",
            ["client_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            op.f("ck_auth_sessions_one_owner"), "(user_id IS NULL) <> (client_id IS NULL)"
        )


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_auth_sessions_one_owner"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_auth_sessions_client_id_api_clients"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_auth_sessions_client_id"))
        batch_op.alter_column("user_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_column("client_id")

    with op.batch_alter_table("api_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_clients_professional_id"))

    op.drop_table("api_clients")
    with op.batch_alter_table("spent_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spent_assertions_expires_at"))

    op.drop_table("spent_assertions")
