"""Registry: tenants, data keys, plans, members, beneficiaries, rights, professionals

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=60), nullable=False),
        sa.Column("purpose", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
        sa.UniqueConstraint(
            "scope", "purpose", "version", name=op.f("uq_data_keys_scope_purpose_version")
        ),
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_keys_scope"), ["scope"], unique=False)

    op.create_table(
        "professionals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("am_number", sa.String(length=9), nullable=False),
        sa.Column("rpps", sa.String(length=11), nullable=True),
        sa.Column("finess", sa.String(length=9), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("profession", sa.String(length=20), nullable=False),
        sa.Column("optam", sa.Boolean(), nullable=False),
        sa.Column("networks", sa.String(length=200), nullable=False),
        sa.Column("iban_enc", sa.LargeBinary(), nullable=False),
        sa.Column("iban_hint", sa.String(length=12), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_professionals")),
        sa.UniqueConstraint("am_number", name=op.f("uq_professionals_am_number")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("amc_number", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("amc_number", name=op.f("uq_tenants_amc_number")),
    )
    op.create_table(
        "member_imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_member_imports_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_imports")),
    )
    with op.batch_alter_table("member_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_member_imports_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("member_index", sa.LargeBinary(length=16), nullable=False),
        sa.Column("member_number_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_members_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint(
            "tenant_id", "member_index", name=op.f("uq_members_tenant_id_member_index")
        ),
    )
    op.create_table(
        "plan_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_plan_versions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_versions")),
        sa.UniqueConstraint(
            "tenant_id",
            "code",
            "valid_from",
            name=op.f("uq_plan_versions_tenant_id_code_valid_from"),
        ),
    )
    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_versions_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "beneficiaries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("rights_index", sa.LargeBinary(length=16), nullable=False),
        sa.Column("nir_index", sa.LargeBinary(length=16), nullable=True),
        sa.Column("identity_enc", sa.LargeBinary(), nullable=False),
        sa.Column("birth_rank", sa.SmallInteger(), nullable=False),
        sa.Column("relationship", sa.String(length=10), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("source_digest", sa.LargeBinary(length=16), nullable=False),
        sa.Column("last_import_id", sa.Uuid(), nullable=True),
        sa.Column("last_import_line", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_beneficiaries_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_beneficiaries_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beneficiaries")),
        sa.UniqueConstraint(
            "tenant_id", "rights_index", name=op.f("uq_beneficiaries_tenant_id_rights_index")
        ),
    )
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_beneficiaries_import", ["tenant_id", "status", "last_import_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_beneficiaries_member_id"), ["member_id"], unique=False)
        batch_op.create_index("ix_beneficiaries_nir", ["tenant_id", "nir_index"], unique=False)

    op.create_table(
        "rights_periods",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("plan_code", sa.String(length=20), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("suspended_domains", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_rights_periods_beneficiary_id_beneficiaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_periods")),
        sa.UniqueConstraint(
            "beneficiary_id", "start_date", name=op.f("uq_rights_periods_beneficiary_id_start_date")
        ),
    )


def downgrade() -> None:
    op.drop_table("rights_periods")
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_index("ix_beneficiaries_nir")
        batch_op.drop_index(batch_op.f("ix_beneficiaries_member_id"))
        batch_op.drop_index("ix_beneficiaries_import")

    op.drop_table("beneficiaries")
    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_versions_tenant_id"))

    op.drop_table("plan_versions")
    op.drop_table("members")
    with op.batch_alter_table("member_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_imports_tenant_id"))

    op.drop_table("member_imports")
    op.drop_table("tenants")
    op.drop_table("professionals")
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_keys_scope"))

    op.drop_table("data_keys")
