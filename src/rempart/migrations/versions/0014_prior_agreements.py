"""Prior agreements (PEC) and their lines; their renewal reservations go to renewal_uses

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "prior_agreements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("amc_number", sa.String(length=10), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total_amc", sa.BigInteger(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("reserved", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consumed_by", sa.Uuid(), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "(status = 'cancelled' AND cancelled_at IS NOT NULL) OR (status <> 'cancelled' AND cancelled_at IS NULL)",
            name=op.f("ck_prior_agreements_cancelled"),
        ),
        sa.CheckConstraint(
            "(status = 'consumed' AND consumed_at IS NOT NULL AND consumed_by IS NOT NULL) OR (status <> 'consumed' AND consumed_at IS NULL AND consumed_by IS NULL)",
            name=op.f("ck_prior_agreements_consumed"),
        ),
        sa.CheckConstraint(
            "status IN ('granted', 'consumed', 'cancelled')",
            name=op.f("ck_prior_agreements_status"),
        ),
        sa.CheckConstraint("total_amc >= 0", name=op.f("ck_prior_agreements_total_amc")),
        sa.CheckConstraint("valid_from <= valid_until", name=op.f("ck_prior_agreements_validity")),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_prior_agreements_beneficiary_id_beneficiaries"),
        ),
        sa.ForeignKeyConstraint(
            ["consumed_by"], ["invoices.id"], name=op.f("fk_prior_agreements_consumed_by_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_prior_agreements_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prior_agreements")),
        sa.UniqueConstraint("reference", name=op.f("uq_prior_agreements_reference")),
    )
    with op.batch_alter_table("prior_agreements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_prior_agreements_beneficiary_id"), ["beneficiary_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_prior_agreements_consumed_by"), ["consumed_by"], unique=False
        )
        batch_op.create_index(
            "ix_prior_agreements_professional", ["professional_id", "created_at"], unique=False
        )

    op.create_table(
        "prior_agreement_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agreement_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("act_code", sa.String(length=20), nullable=False),
        sa.Column("domain", sa.String(length=4), nullable=False),
        sa.Column("care_date", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("billed", sa.BigInteger(), nullable=False),
        sa.Column("br", sa.BigInteger(), nullable=False),
        sa.Column("amo_rate", sa.SmallInteger(), nullable=False),
        sa.Column("amo_paid", sa.BigInteger(), nullable=True),
        sa.Column("optam", sa.Boolean(), nullable=True),
        sa.Column("basket", sa.String(length=20), nullable=True),
        sa.Column("price_limit", sa.BigInteger(), nullable=True),
        sa.Column("item_type", sa.String(length=30), nullable=True),
        sa.Column("amc_amount", sa.BigInteger(), nullable=False),
        sa.Column("amo_amount", sa.BigInteger(), nullable=False),
        sa.Column("reject_codes", sa.String(length=100), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("agreed", sa.Boolean(), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "amc_amount >= 0 AND amo_amount >= 0 AND amc_amount + amo_amount <= billed",
            name=op.f("ck_prior_agreement_lines_rule_1"),
        ),
        sa.CheckConstraint("billed >= 0 AND br >= 0", name=op.f("ck_prior_agreement_lines_money")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_prior_agreement_lines_quantity")),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["prior_agreements.id"],
            name=op.f("fk_prior_agreement_lines_agreement_id_prior_agreements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prior_agreement_lines")),
        sa.UniqueConstraint(
            "agreement_id", "position", name=op.f("uq_prior_agreement_lines_agreement_id_position")
        ),
    )


def downgrade() -> None:
    op.drop_table("prior_agreement_lines")
    with op.batch_alter_table("prior_agreements", schema=None) as batch_op:
        batch_op.drop_index("ix_prior_agreements_professional")
        batch_op.drop_index(batch_op.f("ix_prior_agreements_consumed_by"))
        batch_op.drop_index(batch_op.f("ix_prior_agreements_beneficiary_id"))

    op.drop_table("prior_agreements")
