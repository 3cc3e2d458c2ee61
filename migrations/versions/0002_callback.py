"""Call-back: requests to place, rate limit per mobile, calls by CallSid, answered webhooks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:42:33.072901
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callback_mobiles",
        sa.Column("mobile_e164", sa.String(length=20), nullable=False),
        sa.Column("last_request_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mobile_e164", name=op.f("pk_callback_mobiles")),
    )
    op.create_table(
        "callback_webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("response", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_webhooks")),
        sa.UniqueConstraint("call_sid", "step", name=op.f("uq_callback_webhooks_call_sid_step")),
    )
    op.create_table(
        "callback_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incoming_call_sid", sa.String(length=64), nullable=False),
        sa.Column("mobile_e164", sa.String(length=20), nullable=False),
        sa.Column("callback_number_e164", sa.String(length=20), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outbound_call_sid", sa.String(length=64), nullable=True),
        sa.Column("last_call_status", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'dialling', 'placed', 'answered', 'machine', 'failed')",
            name=op.f("ck_callback_requests_status"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_callback_requests_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_requests")),
        sa.UniqueConstraint(
            "incoming_call_sid", name=op.f("uq_callback_requests_incoming_call_sid")
        ),
    )
    op.create_index(
        "ix_callback_requests_status_due", "callback_requests", ["status", "due_at"], unique=False
    )
    op.create_table(
        "callback_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("mobile_e164", sa.String(length=20), nullable=False),
        sa.Column("callback_number_e164", sa.String(length=20), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("replies", sa.JSON(), nullable=False),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("busy_token", sa.String(length=32), nullable=True),
        sa.Column("busy_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_callback_calls_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["callback_requests.id"],
            name=op.f("fk_callback_calls_request_id_callback_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callback_calls")),
        sa.UniqueConstraint("call_sid", name=op.f("uq_callback_calls_call_sid")),
    )
    op.create_index(
        op.f("ix_callback_calls_request_id"), "callback_calls", ["request_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_calls_request_id"), table_name="callback_calls")
    op.drop_table("callback_calls")
    op.drop_index("ix_callback_requests_status_due", table_name="callback_requests")
    op.drop_table("callback_requests")
    op.drop_table("callback_webhooks")
    op.drop_table("callback_mobiles")
