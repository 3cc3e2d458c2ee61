"""Reconciliation: who owns each anomaly, what each resolution is about, who did each visit.

The new columns are plain ids without foreign keys (derived data), so both SQLite and
PostgreSQL add and drop them in place, without rebuilding a table.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 16:14:55.382655
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("anomalies", sa.Column("owner_carer_id", sa.Integer(), nullable=True))
    op.add_column("anomalies", sa.Column("owner_day", sa.Date(), nullable=True))
    op.create_index(
        "ix_anomalies_owner", "anomalies", ["owner_carer_id", "owner_day"], unique=False
    )
    op.add_column("anomaly_resolutions", sa.Column("subject_punch_id", sa.Integer(), nullable=True))
    op.add_column(
        "anomaly_resolutions", sa.Column("subject_planned_id", sa.Integer(), nullable=True)
    )
    op.add_column("anomaly_resolutions", sa.Column("link_planned_id", sa.Integer(), nullable=True))
    op.create_index(
        "ix_anomaly_resolutions_link_planned",
        "anomaly_resolutions",
        ["link_planned_id"],
        unique=False,
    )
    op.create_index(
        "ix_anomaly_resolutions_subject_planned",
        "anomaly_resolutions",
        ["subject_planned_id"],
        unique=False,
    )
    op.create_index(
        "ix_anomaly_resolutions_subject_punch",
        "anomaly_resolutions",
        ["subject_punch_id"],
        unique=False,
    )
    op.add_column("interventions", sa.Column("realised_carer_id", sa.Integer(), nullable=True))
    op.add_column("visit_matches", sa.Column("how", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("visit_matches", "how")
    op.drop_column("interventions", "realised_carer_id")
    op.drop_index("ix_anomaly_resolutions_subject_punch", table_name="anomaly_resolutions")
    op.drop_index("ix_anomaly_resolutions_subject_planned", table_name="anomaly_resolutions")
    op.drop_index("ix_anomaly_resolutions_link_planned", table_name="anomaly_resolutions")
    op.drop_column("anomaly_resolutions", "link_planned_id")
    op.drop_column("anomaly_resolutions", "subject_planned_id")
    op.drop_column("anomaly_resolutions", "subject_punch_id")
    op.drop_index("ix_anomalies_owner", table_name="anomalies")
    op.drop_column("anomalies", "owner_day")
    op.drop_column("anomalies", "owner_carer_id")
