"""Punches (pointages): one arrival or departure, made by one call or imported.

The pair (origin, call_key) is the idempotency key of SPEC.md section 3: Asterisk's
``agi_uniqueid`` with the node name, a Twilio ``CallSid``, or an import file's ``ref`` within its
company. A replayed call or a re-imported file hits the unique constraint instead of creating a
second punch.
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
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .vocab import PUNCH_KINDS, PUNCH_SOURCES, PUNCH_STATUSES, sql_in


class Punch(Base):
    __tablename__ = "punches"
    __table_args__ = (
        UniqueConstraint("origin", "call_key"),
        CheckConstraint(sql_in("kind", PUNCH_KINDS), name="kind"),
        CheckConstraint(
            "original_kind IS NULL OR " + sql_in("original_kind", PUNCH_KINDS),
            name="original_kind",
        ),
        CheckConstraint(sql_in("source", PUNCH_SOURCES), name="source"),
        CheckConstraint(sql_in("status", PUNCH_STATUSES), name="status"),
        Index("ix_punches_carer_at", "carer_id", "at"),
        Index("ix_punches_company_at", "company_id", "at"),
        Index("ix_punches_client_at", "client_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(64))
    call_key: Mapped[str] = mapped_column(String(128))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    carer_id: Mapped[int] = mapped_column(ForeignKey("carers.id", ondelete="RESTRICT"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    # Set when the carer pressed 2 to correct: the kind the server first decided.
    original_kind: Mapped[str | None] = mapped_column(String(10))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16), default="recorded")
    location_verified: Mapped[bool] = mapped_column(Boolean, default=True)
    caller_raw: Mapped[str | None] = mapped_column(String(64))
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    caller_withheld: Mapped[bool] = mapped_column(Boolean, default=False)
    called_raw: Mapped[str | None] = mapped_column(String(64))
    called_e164: Mapped[str | None] = mapped_column(String(20))
    # Two-digit task codes keyed at a departure, separated by spaces ("01 12").
    task_codes: Mapped[str | None] = mapped_column(String(200))
    call_id: Mapped[int | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
