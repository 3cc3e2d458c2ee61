"""Planned interventions: the core scheduling/billing model that billing and payroll read.

One row per planned intervention; reconciliation fills in the realised start, end and minutes and
moves the status to ``realised`` or ``not_done``. Billing and payroll read this table only.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .vocab import INTERVENTION_STATUSES, sql_in


class PlannedIntervention(Base):
    """An intervention planifiée, and once reconciled its intervention réalisée."""

    __tablename__ = "interventions"
    __table_args__ = (
        UniqueConstraint("company_id", "intervention_ref"),
        CheckConstraint("planned_end > planned_start", name="planned_order"),
        CheckConstraint(sql_in("status", INTERVENTION_STATUSES), name="status"),
        CheckConstraint(
            "realised_end IS NULL OR realised_start IS NULL OR realised_end >= realised_start",
            name="realised_order",
        ),
        Index("ix_interventions_carer_start", "carer_id", "planned_start"),
        Index("ix_interventions_client_start", "client_id", "planned_start"),
        Index("ix_interventions_company_start", "company_id", "planned_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    intervention_ref: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    carer_id: Mapped[int] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"))
    planned_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    planned_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    service: Mapped[str] = mapped_column(String(64), default="")
    financer: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(10), default="planned")
    realised_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    realised_end: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    realised_minutes: Mapped[int | None] = mapped_column(Integer)
    # Who did it, when realised: a substitute carer is paid for it, not the planned one.
    # A plain id (no foreign key) so that SQLite adds the column without rebuilding the table.
    realised_carer_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
