"""Users of the pages and their sessions, on the database: add, list, disable, log in and out.

Each function works inside the caller's SQLAlchemy session (one short transaction); the rules
themselves (hashing, expiry, throttling) are in :mod:`telegestion.web.security`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..model import Company, LoginThrottle, User, WebSession
from ..model.vocab import USER_ROLES
from .security import (
    SessionPolicy,
    ThrottlePolicy,
    after_failure,
    hash_password,
    locked,
    needs_rehash,
    new_token,
    password_matches,
    password_problem,
    session_alive,
    token_digest,
)

_LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
#: ``last_seen_at`` is written at most this often, not on every page view.
_TOUCH_EVERY = dt.timedelta(seconds=60)


class AccountError(ValueError):
    """A user operation that cannot be done; the message says why."""


def normal_login(login: str) -> str:
    return login.strip().lower()


@dataclass(frozen=True, slots=True)
class CompanyRef:
    id: int
    code: str
    name: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking, with the companies they may see: every page query filters on these."""

    user_id: int
    login: str
    role: str
    companies: tuple[CompanyRef, ...]
    session_id: int
    csrf_secret: str

    @property
    def company_ids(self) -> frozenset[int]:
        return frozenset(c.id for c in self.companies)

    def company(self, company_id: int | None) -> CompanyRef | None:
        return next((c for c in self.companies if c.id == company_id), None)

    @property
    def may_resolve(self) -> bool:
        """Resolutions are coordinators' work (SPEC.md section 5); support reads."""
        return self.role == "coordinator"


@dataclass(frozen=True, slots=True)
class UserLine:
    login: str
    role: str
    active: bool
    company_codes: tuple[str, ...]


def add_user(
    session: Session, login: str, role: str, company_codes: list[str], password: str
) -> User:
    name = normal_login(login)
    if not _LOGIN.match(name):
        raise AccountError(f"login {login!r}: 2 to 64 characters among letters, digits and . _ @ -")
    if role not in USER_ROLES:
        raise AccountError(f"role {role!r}: choose one of {', '.join(USER_ROLES)}")
    if not company_codes:
        raise AccountError("give at least one --company CODE")
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    if session.scalar(select(User.id).where(User.login == name)) is not None:
        raise AccountError(f"user {name!r} exists already")
    wanted = sorted(set(company_codes))
    companies = list(session.scalars(select(Company).where(Company.code.in_(wanted))))
    missing = sorted(set(wanted) - {c.code for c in companies})
    if missing:
        raise AccountError(f"no company with code {', '.join(missing)}")
    user = User(login=name, password_hash=hash_password(password), role=role, active=True)
    user.companies = companies
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[UserLine]:
    users = session.scalars(select(User).order_by(User.login)).all()
    return [
        UserLine(u.login, u.role, u.active, tuple(sorted(c.code for c in u.companies)))
        for u in users
    ]


def disable_user(session: Session, login: str, now: dt.datetime) -> int:
    """Disable a user and end their sessions; returns how many sessions were ended."""
    user = session.scalar(select(User).where(User.login == normal_login(login)))
    if user is None:
        raise AccountError(f"no user {login!r}")
    user.active = False
    user.disabled_at = user.disabled_at or now
    ended = session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return int(ended.rowcount or 0)


@dataclass(frozen=True, slots=True)
class LoginResult:
    """``token`` for the cookie on success; else ``refusal`` to show (the same words whether
    the login or the password was wrong)."""

    token: str | None = None
    refusal: str | None = None


WRONG = "wrong login or password"


def log_in(
    session: Session,
    login: str,
    password: str,
    now: dt.datetime,
    sessions: SessionPolicy,
    throttle: ThrottlePolicy,
) -> LoginResult:
    name = normal_login(login)[:64]
    record = session.get(LoginThrottle, name)
    if record is not None and locked(record.locked_until, now):
        return LoginResult(refusal="too many failed attempts: try again in a few minutes")
    user = session.scalar(select(User).where(User.login == name)) if name else None
    stored = user.password_hash if user is not None else None
    if not password_matches(stored, password) or user is None or not user.active:
        if record is None:
            record = LoginThrottle(login=name, failures=0)
            session.add(record)
        record.failures, record.locked_until = after_failure(
            record.failures or 0, record.last_failure_at, now, throttle
        )
        record.last_failure_at = now
        return LoginResult(refusal=WRONG)
    if record is not None:
        session.delete(record)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = new_token()
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user.id,
            csrf_secret=new_token(),
            created_at=now,
            last_seen_at=now,
            expires_at=now + sessions.max_age,
        )
    )
    return LoginResult(token=token)


def viewer_of(
    session: Session, token: str | None, now: dt.datetime, policy: SessionPolicy
) -> Viewer | None:
    """The logged-in user behind a cookie's token, or None (unknown, expired, disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(select(WebSession).where(WebSession.token_hash == token_digest(token)))
    if row is None:
        return None
    if not session_alive(row.last_seen_at, row.expires_at, now, policy):
        session.delete(row)
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        session.delete(row)
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        row.last_seen_at = now
    companies = tuple(
        CompanyRef(c.id, c.code, c.name, c.timezone)
        for c in sorted(user.companies, key=lambda c: c.code)
    )
    return Viewer(user.id, user.login, user.role, companies, row.id, row.csrf_secret)


def log_out(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.token_hash == token_digest(token)))
