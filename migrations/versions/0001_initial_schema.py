"""Initial schema: directory, planning, punches, journal, reconciliation, users.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 15:22:54.450273
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "companies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=2), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("task_codes_enabled", sa.Boolean(), nullable=False),
        sa.Column("arrival_tolerance_min", sa.Integer(), nullable=False),
        sa.Column("departure_tolerance_min", sa.Integer(), nullable=False),
        sa.Column("match_window_min", sa.Integer(), nullable=False),
        sa.Column("max_visit_hours", sa.Integer(), nullable=False),
        sa.Column("min_visit_min", sa.Integer(), nullable=False),
        sa.Column("late_alert_min", sa.Integer(), nullable=False),
        sa.Column("rounding_rule", sa.String(length=40), nullable=False),
        sa.Column("rounding_step_min", sa.Integer(), nullable=False),
        sa.Column("rounding_direction", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('fr', 'en')", name=op.f("ck_companies_language")),
        sa.CheckConstraint(
            "rounding_direction IN ('nearest', 'company', 'carer')",
            name=op.f("ck_companies_rounding_direction"),
        ),
        sa.CheckConstraint(
            "rounding_rule IN ('keep_planned_within_tolerance', 'punched')",
            name=op.f("ck_companies_rounding_rule"),
        ),
        sa.CheckConstraint("length(code) = 3", name=op.f("ck_companies_code_length")),
        sa.CheckConstraint(
            "rounding_step_min IN (0, 5, 10, 15, 30)", name=op.f("ck_companies_rounding_step")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
        sa.UniqueConstraint("code", name=op.f("uq_companies_code")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('coordinator', 'support')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("login", name=op.f("uq_users_login")),
    )
    op.create_table(
        "carers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("carer_ref", sa.String(length=64), nullable=False),
        sa.Column("carer_code", sa.String(length=5), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mobile_e164", sa.String(length=20), nullable=True),
        sa.Column("mobile_raw", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(carer_code) = 5", name=op.f("ck_carers_carer_code_length")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_carers_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_carers")),
        sa.UniqueConstraint(
            "company_id", "carer_code", name=op.f("uq_carers_company_id_carer_code")
        ),
        sa.UniqueConstraint("company_id", "carer_ref", name=op.f("uq_carers_company_id_carer_ref")),
    )
    op.create_index(op.f("ix_carers_mobile_e164"), "carers", ["mobile_e164"], unique=False)
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("client_ref", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_clients_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint(
            "company_id", "client_ref", name=op.f("uq_clients_company_id_client_ref")
        ),
    )
    op.create_table(
        "service_numbers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number_e164", sa.String(length=20), nullable=False),
        sa.Column("number_raw", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'shared' AND company_id IS NULL) OR (kind = 'dedicated' AND company_id IS NOT NULL) OR kind = 'callback'",
            name=op.f("ck_service_numbers_company_by_kind"),
        ),
        sa.CheckConstraint(
            "kind IN ('shared', 'dedicated', 'callback')", name=op.f("ck_service_numbers_kind")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_service_numbers_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_numbers")),
        sa.UniqueConstraint("number_e164", name=op.f("uq_service_numbers_number_e164")),
    )
    op.create_index(
        op.f("ix_service_numbers_company_id"), "service_numbers", ["company_id"], unique=False
    )
    op.create_table(
        "user_companies",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_user_companies_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_companies_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "company_id", name=op.f("pk_user_companies")),
    )
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("call_key", sa.String(length=128), nullable=False),
        sa.Column("transport", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("called_raw", sa.String(length=64), nullable=True),
        sa.Column("called_e164", sa.String(length=20), nullable=True),
        sa.Column("caller_raw", sa.String(length=64), nullable=True),
        sa.Column("caller_e164", sa.String(length=20), nullable=True),
        sa.Column("caller_presentation", sa.String(length=16), nullable=True),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("carer_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("company_code_keyed", sa.String(length=32), nullable=True),
        sa.Column("carer_code_keyed", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("hangup_step", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('punch_recorded', 'unknown_called_number', 'company_code_failed', 'carer_code_failed', 'caller_hung_up', 'locked_out', 'error')",
            name=op.f("ck_calls_outcome"),
        ),
        sa.CheckConstraint(
            "transport IN ('fastagi', 'agi', 'twilio')", name=op.f("ck_calls_transport")
        ),
        sa.ForeignKeyConstraint(
            ["carer_id"], ["carers.id"], name=op.f("fk_calls_carer_id_carers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_calls_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_calls_company_id_companies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("origin", "call_key", name=op.f("uq_calls_origin_call_key")),
    )
    op.create_index("ix_calls_called_started", "calls", ["called_e164", "started_at"], unique=False)
    op.create_index("ix_calls_caller_started", "calls", ["caller_e164", "started_at"], unique=False)
    op.create_index("ix_calls_started", "calls", ["started_at"], unique=False)
    op.create_table(
        "client_landlines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("number_e164", sa.String(length=20), nullable=False),
        sa.Column("number_raw", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_landlines_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_client_landlines_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_landlines")),
        sa.UniqueConstraint(
            "company_id", "number_e164", name=op.f("uq_client_landlines_company_id_number_e164")
        ),
    )
    op.create_index(
        op.f("ix_client_landlines_client_id"), "client_landlines", ["client_id"], unique=False
    )
    op.create_index(
        "ix_client_landlines_number_e164", "client_landlines", ["number_e164"], unique=False
    )
    op.create_table(
        "interventions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("intervention_ref", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("carer_id", sa.Integer(), nullable=False),
        sa.Column("planned_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("financer", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("realised_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("realised_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("realised_minutes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('planned', 'realised', 'not_done')", name=op.f("ck_interventions_status")
        ),
        sa.CheckConstraint(
            "planned_end > planned_start", name=op.f("ck_interventions_planned_order")
        ),
        sa.CheckConstraint(
            "realised_end IS NULL OR realised_start IS NULL OR realised_end >= realised_start",
            name=op.f("ck_interventions_realised_order"),
        ),
        sa.ForeignKeyConstraint(
            ["carer_id"],
            ["carers.id"],
            name=op.f("fk_interventions_carer_id_carers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_interventions_client_id_clients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_interventions_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interventions")),
        sa.UniqueConstraint(
            "company_id",
            "intervention_ref",
            name=op.f("uq_interventions_company_id_intervention_ref"),
        ),
    )
    op.create_index(
        "ix_interventions_carer_start", "interventions", ["carer_id", "planned_start"], unique=False
    )
    op.create_index(
        "ix_interventions_client_start",
        "interventions",
        ["client_id", "planned_start"],
        unique=False,
    )
    op.create_index(
        "ix_interventions_company_start",
        "interventions",
        ["company_id", "planned_start"],
        unique=False,
    )
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('prompt', 'input', 'lookup', 'punch', 'error', 'hangup')",
            name=op.f("ck_call_events_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_events_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_events")),
        sa.UniqueConstraint("call_id", "seq", name=op.f("uq_call_events_call_id_seq")),
    )
    op.create_table(
        "code_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("caller_e164", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("what", sa.String(length=32), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_code_failures_call_id_calls"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_failures")),
    )
    op.create_index(
        "ix_code_failures_caller_at", "code_failures", ["caller_e164", "at"], unique=False
    )
    op.create_table(
        "punches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("call_key", sa.String(length=128), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("carer_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("original_kind", sa.String(length=10), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("location_verified", sa.Boolean(), nullable=False),
        sa.Column("caller_raw", sa.String(length=64), nullable=True),
        sa.Column("caller_e164", sa.String(length=20), nullable=True),
        sa.Column("caller_withheld", sa.Boolean(), nullable=False),
        sa.Column("called_raw", sa.String(length=64), nullable=True),
        sa.Column("called_e164", sa.String(length=20), nullable=True),
        sa.Column("task_codes", sa.String(length=200), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('arrival', 'departure')", name=op.f("ck_punches_kind")),
        sa.CheckConstraint(
            "original_kind IS NULL OR original_kind IN ('arrival', 'departure')",
            name=op.f("ck_punches_original_kind"),
        ),
        sa.CheckConstraint(
            "source IN ('landline', 'callback', 'manual', 'import')", name=op.f("ck_punches_source")
        ),
        sa.CheckConstraint(
            "status IN ('recorded', 'client_absent')", name=op.f("ck_punches_status")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_punches_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["carer_id"],
            ["carers.id"],
            name=op.f("fk_punches_carer_id_carers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_punches_client_id_clients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_punches_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_punches")),
        sa.UniqueConstraint("origin", "call_key", name=op.f("uq_punches_origin_call_key")),
    )
    op.create_index(op.f("ix_punches_call_id"), "punches", ["call_id"], unique=False)
    op.create_index("ix_punches_carer_at", "punches", ["carer_id", "at"], unique=False)
    op.create_index("ix_punches_client_at", "punches", ["client_id", "at"], unique=False)
    op.create_index("ix_punches_company_at", "punches", ["company_id", "at"], unique=False)
    op.create_table(
        "anomalies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=1), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("carer_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("intervention_id", sa.Integer(), nullable=True),
        sa.Column("punch_id", sa.Integer(), nullable=True),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "code IN ('MISSING_ARRIVAL', 'MISSING_DEPARTURE', 'NO_PUNCH', 'UNPLANNED_VISIT', 'SUBSTITUTE_CARER', 'UNKNOWN_CALLER_NUMBER', 'CALLER_ID_WITHHELD', 'OVERLAPPING_VISITS', 'LATE_ARRIVAL', 'EARLY_DEPARTURE', 'OVERTIME', 'TOO_SHORT', 'DUPLICATE_PUNCH', 'LOCATION_UNVERIFIED', 'CODE_BRUTE_FORCE', 'CLIENT_ABSENT', 'LATE_START_ALERT')",
            name=op.f("ck_anomalies_code"),
        ),
        sa.CheckConstraint("severity IN ('B', 'W')", name=op.f("ck_anomalies_severity")),
        sa.CheckConstraint(
            "status IN ('open', 'resolved', 'closed')", name=op.f("ck_anomalies_status")
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_anomalies_call_id_calls"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["carer_id"],
            ["carers.id"],
            name=op.f("fk_anomalies_carer_id_carers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_anomalies_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_anomalies_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_anomalies_intervention_id_interventions"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["punch_id"],
            ["punches.id"],
            name=op.f("fk_anomalies_punch_id_punches"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint("key", name=op.f("uq_anomalies_key")),
    )
    op.create_index(
        "ix_anomalies_company_status_at", "anomalies", ["company_id", "status", "at"], unique=False
    )
    op.create_index("ix_anomalies_intervention", "anomalies", ["intervention_id"], unique=False)
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("carer_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("arrival_punch_id", sa.Integer(), nullable=True),
        sa.Column("departure_punch_id", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["arrival_punch_id"],
            ["punches.id"],
            name=op.f("fk_visits_arrival_punch_id_punches"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["carer_id"], ["carers.id"], name=op.f("fk_visits_carer_id_carers"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_visits_client_id_clients"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_visits_company_id_companies"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["departure_punch_id"],
            ["punches.id"],
            name=op.f("fk_visits_departure_punch_id_punches"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
        sa.UniqueConstraint("company_id", "key", name=op.f("uq_visits_company_id_key")),
    )
    op.create_index("ix_visits_carer_day", "visits", ["carer_id", "day"], unique=False)
    op.create_table(
        "anomaly_resolutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("anomaly_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("reason_code", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "action IN ('accept_punched', 'use_planned', 'set_times', 'link_to_intervention', 'create_intervention', 'mark_not_done', 'dismiss')",
            name=op.f("ck_anomaly_resolutions_action"),
        ),
        sa.CheckConstraint(
            "reason_code IN ('phone_out_of_order', 'client_on_the_phone', 'carer_forgot_to_call', 'carer_used_another_phone', 'client_absent', 'care_refused', 'replacement_carer', 'schedule_changed', 'system_fault', 'other')",
            name=op.f("ck_anomaly_resolutions_reason_code"),
        ),
        sa.ForeignKeyConstraint(
            ["anomaly_id"],
            ["anomalies.id"],
            name=op.f("fk_anomaly_resolutions_anomaly_id_anomalies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_anomaly_resolutions_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomaly_resolutions")),
    )
    op.create_index(
        op.f("ix_anomaly_resolutions_anomaly_id"),
        "anomaly_resolutions",
        ["anomaly_id"],
        unique=False,
    )
    op.create_table(
        "visit_matches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("intervention_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_visit_matches_intervention_id_interventions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_visit_matches_visit_id_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_matches")),
        sa.UniqueConstraint("intervention_id", name=op.f("uq_visit_matches_intervention_id")),
    )
    op.create_index(op.f("ix_visit_matches_visit_id"), "visit_matches", ["visit_id"], unique=False)


def downgrade() -> None:

    op.drop_index(op.f("ix_visit_matches_visit_id"), table_name="visit_matches")
    op.drop_table("visit_matches")
    op.drop_index(op.f("ix_anomaly_resolutions_anomaly_id"), table_name="anomaly_resolutions")
    op.drop_table("anomaly_resolutions")
    op.drop_index("ix_visits_carer_day", table_name="visits")
    op.drop_table("visits")
    op.drop_index("ix_anomalies_intervention", table_name="anomalies")
    op.drop_index("ix_anomalies_company_status_at", table_name="anomalies")
    op.drop_table("anomalies")
    op.drop_index("ix_punches_company_at", table_name="punches")
    op.drop_index("ix_punches_client_at", table_name="punches")
    op.drop_index("ix_punches_carer_at", table_name="punches")
    op.drop_index(op.f("ix_punches_call_id"), table_name="punches")
    op.drop_table("punches")
    op.drop_index("ix_code_failures_caller_at", table_name="code_failures")
    op.drop_table("code_failures")
    op.drop_table("call_events")
    op.drop_index("ix_interventions_company_start", table_name="interventions")
    op.drop_index("ix_interventions_client_start", table_name="interventions")
    op.drop_index("ix_interventions_carer_start", table_name="interventions")
    op.drop_table("interventions")
    op.drop_index("ix_client_landlines_number_e164", table_name="client_landlines")
    op.drop_index(op.f("ix_client_landlines_client_id"), table_name="client_landlines")
    op.drop_table("client_landlines")
    op.drop_index("ix_calls_started", table_name="calls")
    op.drop_index("ix_calls_caller_started", table_name="calls")
    op.drop_index("ix_calls_called_started", table_name="calls")
    op.drop_table("calls")
    op.drop_table("user_companies")
    op.drop_index(op.f("ix_service_numbers_company_id"), table_name="service_numbers")
    op.drop_table("service_numbers")
    op.drop_table("clients")
    op.drop_index(op.f("ix_carers_mobile_e164"), table_name="carers")
    op.drop_table("carers")
    op.drop_table("users")
    op.drop_table("companies")
