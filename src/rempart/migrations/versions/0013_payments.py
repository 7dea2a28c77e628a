"""Payments: runs and what they took, remittances, settlements, bank-details changes, mandates

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("execution_date", sa.Date(), nullable=False),
        sa.Column("collection_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=15), nullable=False),
        sa.Column("opened_by", sa.String(length=60), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("files_written_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("transfers", sa.Integer(), nullable=False),
        sa.Column("transfer_total", sa.BigInteger(), nullable=False),
        sa.Column("debits", sa.Integer(), nullable=False),
        sa.Column("debit_total", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.Text(), nullable=False),
        sa.Column("files", sa.Text(), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "(status = 'closed') = (closed_at IS NOT NULL)", name=op.f("ck_payment_runs_closed_at")
        ),
        sa.CheckConstraint(
            "(status = 'open') = (files_written_at IS NULL)",
            name=op.f("ck_payment_runs_files_written_at"),
        ),
        sa.CheckConstraint(
            "status IN ('open', 'files_written', 'closed')", name=op.f("ck_payment_runs_status")
        ),
        sa.CheckConstraint(
            "transfer_total >= 0 AND debit_total >= 0", name=op.f("ck_payment_runs_totals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_runs")),
        sa.UniqueConstraint("number", name=op.f("uq_payment_runs_number")),
    )
    op.create_table(
        "bank_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("iban_enc", sa.LargeBinary(), nullable=False),
        sa.Column("iban_hint", sa.String(length=12), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("code_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("code_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        sa.Column("requested_by", sa.String(length=60), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_by", sa.String(length=60), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usable_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=60), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.String(length=200), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "(status = 'cancelled') = (cancelled_at IS NOT NULL)",
            name=op.f("ck_bank_changes_cancelled"),
        ),
        sa.CheckConstraint(
            "(status = 'confirmed') = (confirmed_at IS NOT NULL AND usable_from IS NOT NULL)",
            name=op.f("ck_bank_changes_confirmed"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'cancelled')", name=op.f("ck_bank_changes_status")
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_bank_changes_attempts")),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_bank_changes_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_changes")),
    )
    with op.batch_alter_table("bank_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bank_changes_professional", ["professional_id", "requested_at"], unique=False
        )

    op.create_table(
        "debit_mandates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("mandate_id", sa.String(length=35), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("set_by", sa.String(length=60), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_debit_mandates_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_debit_mandates")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_debit_mandates_tenant_id")),
    )
    op.create_table(
        "settlements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("amc_number", sa.String(length=10), nullable=False),
        sa.Column("debtor_name", sa.String(length=70), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("mandate_id", sa.String(length=35), nullable=True),
        sa.Column("mandate_signed_on", sa.Date(), nullable=True),
        sa.Column("debtor_iban", sa.String(length=34), nullable=True),
        sa.Column("debtor_bic", sa.String(length=11), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "(end_to_end_id IS NULL) = (mandate_id IS NULL) AND (mandate_id IS NULL) = (debtor_iban IS NULL)",
            name=op.f("ck_settlements_debit"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_settlements_amount")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["payment_runs.id"], name=op.f("fk_settlements_run_id_payment_runs")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_settlements_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
        sa.UniqueConstraint("end_to_end_id", name=op.f("uq_settlements_end_to_end_id")),
        sa.UniqueConstraint("run_id", "tenant_id", name=op.f("uq_settlements_run_id_tenant_id")),
    )
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index("ix_settlements_tenant", ["tenant_id", "run_id"], unique=False)

    op.create_table(
        "bank_change_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("change_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint("kind IN ('code', 'notice')", name=op.f("ck_bank_change_messages_kind")),
        sa.ForeignKeyConstraint(
            ["change_id"],
            ["bank_changes.id"],
            name=op.f("fk_bank_change_messages_change_id_bank_changes"),
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_bank_change_messages_professional_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bank_change_messages")),
    )
    with op.batch_alter_table("bank_change_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_bank_change_messages_unsent", ["sent_at", "created_at"], unique=False
        )

    op.create_table(
        "remittances",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("am_number", sa.String(length=9), nullable=False),
        sa.Column("creditor_name", sa.String(length=70), nullable=False),
        sa.Column("bank_change_id", sa.Uuid(), nullable=True),
        sa.Column("iban_hint", sa.String(length=12), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=False),
        sa.Column("end_to_end_id", sa.String(length=35), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint(
            "(amount > 0) = (end_to_end_id IS NOT NULL)", name=op.f("ck_remittances_transfer")
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_remittances_amount")),
        sa.ForeignKeyConstraint(
            ["bank_change_id"],
            ["bank_changes.id"],
            name=op.f("fk_remittances_bank_change_id_bank_changes"),
        ),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_remittances_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["payment_runs.id"], name=op.f("fk_remittances_run_id_payment_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_remittances")),
        sa.UniqueConstraint("end_to_end_id", name=op.f("uq_remittances_end_to_end_id")),
        sa.UniqueConstraint(
            "run_id", "professional_id", name=op.f("uq_remittances_run_id_professional_id")
        ),
    )
    with op.batch_alter_table("remittances", schema=None) as batch_op:
        batch_op.create_index(
            "ix_remittances_professional", ["professional_id", "run_id"], unique=False
        )

    op.create_table(
        "payment_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("invoice_id", sa.Uuid(), nullable=False),
        sa.Column("remittance_id", sa.Uuid(), nullable=False),
        sa.Column("settlement_id", sa.Uuid(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.SmallInteger(), nullable=False),
        sa.Column("row_mac", sa.LargeBinary(length=16), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payment_items_amount")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_payment_items_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["remittance_id"],
            ["remittances.id"],
            name=op.f("fk_payment_items_remittance_id_remittances"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["payment_runs.id"], name=op.f("fk_payment_items_run_id_payment_runs")
        ),
        sa.ForeignKeyConstraint(
            ["settlement_id"],
            ["settlements.id"],
            name=op.f("fk_payment_items_settlement_id_settlements"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_items")),
        sa.UniqueConstraint("invoice_id", name=op.f("uq_payment_items_invoice_id")),
    )
    with op.batch_alter_table("payment_items", schema=None) as batch_op:
        batch_op.create_index("ix_payment_items_run", ["run_id", "remittance_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_payment_items_settlement_id"), ["settlement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_items_settlement_id"))
        batch_op.drop_index("ix_payment_items_run")

    op.drop_table("payment_items")
    with op.batch_alter_table("remittances", schema=None) as batch_op:
        batch_op.drop_index("ix_remittances_professional")

    op.drop_table("remittances")
    with op.batch_alter_table("bank_change_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_change_messages_unsent")

    op.drop_table("bank_change_messages")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index("ix_settlements_tenant")

    op.drop_table("settlements")
    op.drop_table("debit_mandates")
    with op.batch_alter_table("bank_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_bank_changes_professional")

    op.drop_table("bank_changes")
    op.drop_table("payment_runs")
