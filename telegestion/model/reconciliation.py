"""What reconciliation writes: visits, their matches to planned interventions, anomalies and
the coordinators' resolutions.

Visits and anomalies carry a natural ``key`` computed by the rules, so a re-run upserts instead
of duplicating; resolutions are append-only, an audit trail that no run overwrites.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .vocab import (
    ANOMALY_CODES,
    ANOMALY_SEVERITIES,
    ANOMALY_STATUSES,
    RESOLUTION_ACTIONS,
    RESOLUTION_REASONS,
    sql_in,
)


class Visit(Base):
    """An arrival and the departure that closes it (either may be missing)."""

    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("company_id", "key"),
        Index("ix_visits_carer_day", "carer_id", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    key: Mapped[str] = mapped_column(String(128))
    carer_id: Mapped[int] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    arrival_punch_id: Mapped[int | None] = mapped_column(
        ForeignKey("punches.id", ondelete="SET NULL")
    )
    departure_punch_id: Mapped[int | None] = mapped_column(
        ForeignKey("punches.id", ondelete="SET NULL")
    )
    start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The local day the visit belongs to: the day it starts on, in the company's time zone.
    day: Mapped[dt.date] = mapped_column(Date)


class VisitMatch(Base):
    """The part of a visit that covers one planned intervention.

    ``intervention_id`` is unique: a planned intervention gets at most one visit.
    """

    __tablename__ = "visit_matches"
    __table_args__ = (UniqueConstraint("intervention_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("visits.id", ondelete="CASCADE"), index=True)
    intervention_id: Mapped[int] = mapped_column(ForeignKey("interventions.id", ondelete="CASCADE"))
    start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # own, carried_over, substitute, unknown_client or linked (reconciliation.model.MatchHow).
    how: Mapped[str | None] = mapped_column(String(16))


class Anomaly(Base):
    """Something a coordinator must look at (SPEC.md section 5)."""

    __tablename__ = "anomalies"
    __table_args__ = (
        UniqueConstraint("key"),
        CheckConstraint(sql_in("code", ANOMALY_CODES), name="code"),
        CheckConstraint(sql_in("severity", ANOMALY_SEVERITIES), name="severity"),
        CheckConstraint(sql_in("status", ANOMALY_STATUSES), name="status"),
        Index("ix_anomalies_company_status_at", "company_id", "status", "at"),
        Index("ix_anomalies_intervention", "intervention_id"),
        Index("ix_anomalies_owner", "owner_carer_id", "owner_day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Null only for a lock-out on a shared number before any company code was accepted.
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    key: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(10), default="open")
    carer_id: Mapped[int | None] = mapped_column(ForeignKey("carers.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    intervention_id: Mapped[int | None] = mapped_column(
        ForeignKey("interventions.id", ondelete="SET NULL")
    )
    punch_id: Mapped[int | None] = mapped_column(ForeignKey("punches.id", ondelete="SET NULL"))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    # The instant the anomaly is about: the punch, or the planned start.
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The carer-day that owns the anomaly (reconciliation.model.CarerDay): an incremental run
    # closes what its carer-days no longer raise, and only that. Null for the IVR's own
    # CODE_BRUTE_FORCE, which no reconciliation run owns. A plain id without a foreign key,
    # like every column migration 0003 adds: derived data, and SQLite adds and drops such a
    # column without rebuilding the table.
    owner_carer_id: Mapped[int | None] = mapped_column(Integer)
    owner_day: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    resolutions: Mapped[list[AnomalyResolution]] = relationship(
        back_populates="anomaly", order_by="AnomalyResolution.id"
    )


class AnomalyResolution(Base):
    """A coordinator's decision on an anomaly: who, when, why. Never updated, only appended."""

    __tablename__ = "anomaly_resolutions"
    __table_args__ = (
        CheckConstraint(sql_in("action", RESOLUTION_ACTIONS), name="action"),
        CheckConstraint(sql_in("reason_code", RESOLUTION_REASONS), name="reason_code"),
        Index("ix_anomaly_resolutions_link_planned", "link_planned_id"),
        Index("ix_anomaly_resolutions_subject_punch", "subject_punch_id"),
        Index("ix_anomaly_resolutions_subject_planned", "subject_planned_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    anomaly_id: Mapped[int] = mapped_column(
        ForeignKey("anomalies.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(32))
    reason_code: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the anomaly's key names (``p``/``v`` punch, ``i`` planned intervention) and the
    # intervention a link_to_intervention/create_intervention points to (also in params): a run
    # that loads a punch or an intervention finds every decision about it through an index.
    subject_punch_id: Mapped[int | None] = mapped_column(Integer)
    subject_planned_id: Mapped[int | None] = mapped_column(Integer)
    link_planned_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    anomaly: Mapped[Anomaly] = relationship(back_populates="resolutions")
