"""The call journal (journal des appels): every call, prompt, key press and outcome.

Support staff answering an "Anomalie télégestion" ticket start from a caller number and an
approximate time, so calls are indexed by caller and called number with their start time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, UTCDateTime, utcnow
from .vocab import CALL_OUTCOMES, EVENT_KINDS, TRANSPORTS, sql_in


class Call(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("origin", "call_key"),
        CheckConstraint(sql_in("transport", TRANSPORTS), name="transport"),
        CheckConstraint("outcome IS NULL OR " + sql_in("outcome", CALL_OUTCOMES), name="outcome"),
        Index("ix_calls_caller_started", "caller_e164", "started_at"),
        Index("ix_calls_called_started", "called_e164", "started_at"),
        Index("ix_calls_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    origin: Mapped[str] = mapped_column(String(64))
    call_key: Mapped[str] = mapped_column(String(128))
    transport: Mapped[str] = mapped_column(String(10))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    called_raw: Mapped[str | None] = mapped_column(String(64))
    called_e164: Mapped[str | None] = mapped_column(String(20))
    caller_raw: Mapped[str | None] = mapped_column(String(64))
    caller_e164: Mapped[str | None] = mapped_column(String(20))
    # What the network said about showing the number (Asterisk's agi_callingpres, e.g. 0, 35, 67).
    caller_presentation: Mapped[str | None] = mapped_column(String(16))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    carer_id: Mapped[int | None] = mapped_column(ForeignKey("carers.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    company_code_keyed: Mapped[str | None] = mapped_column(String(32))
    carer_code_keyed: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    hangup_step: Mapped[str | None] = mapped_column(String(32))

    events: Mapped[list[CallEvent]] = relationship(
        back_populates="call", order_by="CallEvent.seq", cascade="all, delete-orphan"
    )


class CallEvent(Base):
    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("call_id", "seq"),
        CheckConstraint(sql_in("kind", EVENT_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(10))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    call: Mapped[Call] = relationship(back_populates="events")


class CodeFailure(Base):
    """A failed company or carer code entry, counted per caller number for the lock-out rule."""

    __tablename__ = "code_failures"
    __table_args__ = (Index("ix_code_failures_caller_at", "caller_e164", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller_e164: Mapped[str] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    what: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
