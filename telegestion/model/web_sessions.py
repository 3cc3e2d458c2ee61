"""Logged-in browser sessions of the coordinator and support pages, and login throttling.

Sessions live in the database, not in a worker's memory: any HTTP worker answers any request,
and disabling a user ends their sessions everywhere at once. Only a hash of the cookie's token
is stored, so a copy of the database does not let anyone log in as a coordinator.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class WebSession(Base):
    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the random token the browser holds in its cookie (hex).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The secret each form's CSRF token is derived from; never sent to the browser as is.
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Absolute end, whatever the activity: a stolen cookie does not live forever.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed password attempts per login: a few in a row lock the login for a while.

    Keyed by the login typed (existing or not), so guessing passwords costs the same whether or
    not the account exists, and a worker restart does not reset the count.
    """

    __tablename__ = "login_throttles"

    login: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
