"""The call-back's state between Twilio webhooks (SPEC.md section 4).

Twilio speaks to whichever HTTP worker it reaches, one webhook at a time, and a worker may die
between two of them, so everything a call-back needs to go on lives here, never in a worker:

- :class:`CallbackRequest`: a carer called the call-back number; the call to place, when, how
  many attempts, and what Twilio said of each. Workers pick up due requests from this table,
  so a delay or a retry survives the worker that scheduled it.
- :class:`CallbackMobile`: when each mobile last got a call-back (one per two minutes).
- :class:`CallbackCall`: one outbound call (``CallSid``) running the call flow: its start and
  every reply the flow has had so far; a webhook replays them to resume the flow. A short lease
  (``busy_token``, ``busy_until``) makes the workers take the webhooks of one call in turn.
- :class:`CallbackWebhook`: each webhook already answered, by call and step, with the answer
  sent; a webhook Twilio sends again gets the same answer and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow
from .vocab import sql_in

#: pending: waits for ``due_at``; dialling: a worker is placing it; placed: Twilio took it;
#: answered: the flow runs or ran; machine: an answering machine took it (no retry);
#: failed: no attempt left.
CALLBACK_STATUSES = ("pending", "dialling", "placed", "answered", "machine", "failed")


class CallbackRequest(Base):
    """A call-back to place (rappel): one per incoming call from a registered carer mobile."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        UniqueConstraint("incoming_call_sid"),
        CheckConstraint(sql_in("status", CALLBACK_STATUSES), name="status"),
        Index("ix_callback_requests_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incoming_call_sid: Mapped[str] = mapped_column(String(64))
    mobile_e164: Mapped[str] = mapped_column(String(20))
    callback_number_e164: Mapped[str] = mapped_column(String(20))
    # Set when the call-back number belongs to one company: only its carers may punch.
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outbound_call_sid: Mapped[str | None] = mapped_column(String(64))
    last_call_status: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CallbackMobile(Base):
    """The last call-back granted to a mobile; the rate limit is one row per mobile so that
    two workers deciding at once cannot both grant one."""

    __tablename__ = "callback_mobiles"

    mobile_e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_request_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CallbackCall(Base):
    """One outbound call-back call and the flow replies stored so far."""

    __tablename__ = "callback_calls"
    __table_args__ = (UniqueConstraint("call_sid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[int] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    mobile_e164: Mapped[str] = mapped_column(String(20))
    callback_number_e164: Mapped[str] = mapped_column(String(20))
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(2))
    replies: Mapped[list[Any]] = mapped_column(JSON, default=list)
    ended: Mapped[bool] = mapped_column(Boolean, default=False)
    busy_token: Mapped[str | None] = mapped_column(String(32))
    busy_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CallbackWebhook(Base):
    """A webhook already answered: ``step`` names it within its call (``start``, ``g12`` for
    the answer to the gather at reply 12, ``status:busy``…), ``response`` is what was sent."""

    __tablename__ = "callback_webhooks"
    __table_args__ = (UniqueConstraint("call_sid", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    step: Mapped[str] = mapped_column(String(32))
    response: Mapped[str] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
