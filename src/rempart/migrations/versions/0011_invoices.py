"""Invoices (DRE) and their lines; the counters they book: accumulators and renewal uses

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accumulator_bookings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("domain", sa.String(length=4), nullable=False),
        sa.Column("care_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "source_kind IN ('invoice', 'prior_agreement')",
            name=op.f("ck_accumulator_bookings_source_kind"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_accumulator_bookings_amount")),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_accumulator_bookings_beneficiary_id_beneficiaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accumulator_bookings")),
    )
    with op.batch_alter_table("accumulator_bookings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_accumulator_bookings_beneficiary", ["beneficiary_id", "care_date"], unique=False
        )
        batch_op.create_index(
            "ix_accumulator_bookings_source", ["source_id", "source_kind"], unique=False
        )

    op.create_table(
        "invoices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=True),
        sa.Column("amc_number", sa.String(length=10), nullable=True),
        sa.Column("pseudonym", sa.String(length=32), nullable=True),
        sa.Column("invoice_number", sa.String(length=30), nullable=False),
        sa.Column("guaranteed", sa.Boolean(), nullable=False),
        sa.Column("prior_agreement", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total_amc", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.LargeBinary(length=32), nullable=True),
        sa.Column("request_digest", sa.LargeBinary(length=32), nullable=True),
        sa.Column("submitted_by", sa.String(length=60), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "(status = 'cancelled' AND cancelled_at IS NOT NULL) OR (status <> 'cancelled' AND cancelled_at IS NULL)",
            name=op.f("ck_invoices_cancelled"),
        ),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'partial', 'rejected')", name=op.f("ck_invoices_outcome")
        ),
        sa.CheckConstraint(
            "status = outcome OR status = 'cancelled'", name=op.f("ck_invoices_status_outcome")
        ),
        sa.CheckConstraint(
            "status IN ('accepted', 'partial', 'rejected', 'cancelled')",
            name=op.f("ck_invoices_status"),
        ),
        sa.CheckConstraint(
            "(idempotency_key IS NULL) = (request_digest IS NULL)",
            name=op.f("ck_invoices_idempotency"),
        ),
        sa.CheckConstraint("total_amc >= 0", name=op.f("ck_invoices_total_amc")),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_invoices_beneficiary_id_beneficiaries"),
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_invoices_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_invoices_idempotency_key")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invoices_beneficiary", ["beneficiary_id", "professional_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_invoices_professional_id"), ["professional_id"], unique=False
        )

    op.create_table(
        "renewal_uses",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("renewal_key", sa.String(length=40), nullable=False),
        sa.Column("care_date", sa.Date(), nullable=False),
        sa.Column("source_kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "source_kind IN ('invoice', 'prior_agreement')",
            name=op.f("ck_renewal_uses_source_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_renewal_uses_beneficiary_id_beneficiaries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_renewal_uses")),
    )
    with op.batch_alter_table("renewal_uses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_renewal_uses_beneficiary", ["beneficiary_id", "renewal_key"], unique=False
        )
        batch_op.create_index("ix_renewal_uses_source", ["source_id", "source_kind"], unique=False)

    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
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
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "amc_amount >= 0 AND amo_amount >= 0 AND amc_amount + amo_amount <= billed",
            name=op.f("ck_invoice_lines_rule_1"),
        ),
        sa.CheckConstraint("billed >= 0 AND br >= 0", name=op.f("ck_invoice_lines_money")),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_invoice_lines_quantity")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_invoice_lines_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
        sa.UniqueConstraint(
            "invoice_id", "position", name=op.f("uq_invoice_lines_invoice_id_position")
        ),
    )


def downgrade() -> None:
    op.drop_table("invoice_lines")
    with op.batch_alter_table("renewal_uses", schema=None) as batch_op:
        batch_op.drop_index("ix_renewal_uses_source")
        batch_op.drop_index("ix_renewal_uses_beneficiary")

    op.drop_table("renewal_uses")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invoices_professional_id"))
        batch_op.drop_index("ix_invoices_beneficiary")

    op.drop_table("invoices")
    with op.batch_alter_table("accumulator_bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_accumulator_bookings_source")
        batch_op.drop_index("ix_accumulator_bookings_beneficiary")

    op.drop_table("accumulator_bookings")
