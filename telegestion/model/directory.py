"""Who is who: companies, their phone numbers, clients and carers.

This is the directory the IVR consults on every call (called number, company code, carer code,
caller's landline), so every lookup it makes is backed by a unique constraint or an index.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .vocab import (
    LANGUAGES,
    NUMBER_KINDS,
    ROUNDING_DIRECTIONS,
    ROUNDING_RULES,
    ROUNDING_STEPS,
    sql_in,
)


class Company(Base):
    """A home-care provider (société, structure), with its reconciliation settings."""

    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint("length(code) = 3", name="code_length"),
        CheckConstraint(sql_in("language", LANGUAGES), name="language"),
        CheckConstraint(sql_in("rounding_rule", ROUNDING_RULES), name="rounding_rule"),
        CheckConstraint(sql_in("rounding_step_min", ROUNDING_STEPS), name="rounding_step"),
        CheckConstraint(
            sql_in("rounding_direction", ROUNDING_DIRECTIONS), name="rounding_direction"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(3), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    region: Mapped[str] = mapped_column(String(2), default="FR")
    language: Mapped[str] = mapped_column(String(2), default="fr")
    task_codes_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    arrival_tolerance_min: Mapped[int] = mapped_column(Integer, default=15)
    departure_tolerance_min: Mapped[int] = mapped_column(Integer, default=15)
    match_window_min: Mapped[int] = mapped_column(Integer, default=120)
    max_visit_hours: Mapped[int] = mapped_column(Integer, default=12)
    min_visit_min: Mapped[int] = mapped_column(Integer, default=3)
    late_alert_min: Mapped[int] = mapped_column(Integer, default=15)
    rounding_rule: Mapped[str] = mapped_column(String(40), default="keep_planned_within_tolerance")
    rounding_step_min: Mapped[int] = mapped_column(Integer, default=0)
    rounding_direction: Mapped[str] = mapped_column(String(10), default="nearest")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    numbers: Mapped[list[ServiceNumber]] = relationship(back_populates="company")


class ServiceNumber(Base):
    """A number carers dial: shared toll-free, dedicated toll-free, or call-back."""

    __tablename__ = "service_numbers"
    __table_args__ = (
        CheckConstraint(sql_in("kind", NUMBER_KINDS), name="kind"),
        CheckConstraint(
            "(kind = 'shared' AND company_id IS NULL)"
            " OR (kind = 'dedicated' AND company_id IS NOT NULL)"
            " OR kind = 'callback'",
            name="company_by_kind",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number_e164: Mapped[str] = mapped_column(String(20), unique=True)
    number_raw: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(10))
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    company: Mapped[Company | None] = relationship(back_populates="numbers")


class Client(Base):
    """A person helped at home (bénéficiaire)."""

    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("company_id", "client_ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    client_ref: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    landlines: Mapped[list[ClientLandline]] = relationship(
        back_populates="client", cascade="all, delete-orphan", order_by="ClientLandline.id"
    )


class ClientLandline(Base):
    """A landline at a client's home; the caller number of a punch call names the client.

    ``company_id`` is repeated here so that the database itself enforces that one number belongs
    to at most one client of a company (two companies may well serve the same household).
    """

    __tablename__ = "client_landlines"
    __table_args__ = (
        UniqueConstraint("company_id", "number_e164"),
        Index("ix_client_landlines_number_e164", "number_e164"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    number_e164: Mapped[str] = mapped_column(String(20))
    number_raw: Mapped[str] = mapped_column(String(40))

    client: Mapped[Client] = relationship(back_populates="landlines")


class Carer(Base):
    """A carer (intervenant, aide à domicile) with the 5-digit code keyed on every punch."""

    __tablename__ = "carers"
    __table_args__ = (
        UniqueConstraint("company_id", "carer_ref"),
        UniqueConstraint("company_id", "carer_code"),
        CheckConstraint("length(carer_code) = 5", name="carer_code_length"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    carer_ref: Mapped[str] = mapped_column(String(64))
    carer_code: Mapped[str] = mapped_column(String(5))
    name: Mapped[str] = mapped_column(String(200))
    mobile_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    mobile_raw: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
