"""The rules behind logging in: password hashes, session tokens, CSRF tokens, expiry, throttling.

Plain functions without I/O, so each rule is tested on its own and read in one place.

- Passwords are hashed with argon2id (memory-hard: a stolen ``users`` table costs an attacker
  memory as well as time per guess); the parameters travel inside each hash, so raising them
  later re-hashes each password at its owner's next login.
- The browser holds a random session token; the database holds only its SHA-256.
- Each form carries a token derived from the session's secret (synchronizer token); a form
  posted from another site cannot know it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: argon2id at OWASP's recommended floor (19 MiB, 2 passes, 1 lane) rather than the library's
#: 64 MiB default: each login being checked holds this much memory inside a FastAGI worker
#: whose whole budget is a few hundred MB during the 8:00 burst, and several coordinators may
#: log in at once.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@cache
def _dummy_hash() -> str:
    """Verified against when the login does not exist, so a wrong login costs the same time as
    a wrong password and does not reveal which logins exist. Made at the first such login, not
    at import: every worker imports this module, few ever see a login."""
    return _HASHER.hash(secrets.token_hex(16))


MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` is the one hashed; never raises on a damaged hash."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if password != password.strip():
        return "the password must not start or end with a space"
    return None


def new_token() -> str:
    """A session token or secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The token every form of this session carries."""
    return hmac.new(session_secret.encode("utf-8"), b"csrf-form", hashlib.sha256).hexdigest()


def csrf_matches(session_secret: str, sent: str | None) -> bool:
    if not sent:
        return False
    return hmac.compare_digest(csrf_token(session_secret), sent)


def same_value(expected: str, sent: str | None) -> bool:
    """Constant-time comparison of a double-submitted value (the login form's token)."""
    return bool(sent) and hmac.compare_digest(expected.encode(), (sent or "").encode())


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: dt.timedelta
    max_age: dt.timedelta


def session_alive(
    last_seen_at: dt.datetime, expires_at: dt.datetime, now: dt.datetime, policy: SessionPolicy
) -> bool:
    """A session lives while it has been used within ``idle`` and before its absolute end."""
    return now < expires_at and now - last_seen_at < policy.idle


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    max_failures: int
    lockout: dt.timedelta


def locked(locked_until: dt.datetime | None, now: dt.datetime) -> bool:
    return locked_until is not None and now < locked_until


def after_failure(
    failures: int, last_failure_at: dt.datetime | None, now: dt.datetime, policy: ThrottlePolicy
) -> tuple[int, dt.datetime | None]:
    """The failure count and lock after one more wrong password.

    Failures older than the lockout period are forgotten; reaching ``max_failures`` locks the
    login for ``lockout`` and starts counting afresh.
    """
    if last_failure_at is None or now - last_failure_at >= policy.lockout:
        failures = 0
    failures += 1
    if failures >= policy.max_failures:
        return 0, now + policy.lockout
    return failures, None


def origin_allowed(origin: str | None, allowed: frozenset[str]) -> bool:
    """``Origin`` (or the scheme and host of ``Referer``) names this site, or is absent.

    Browsers send ``Origin`` on every cross-site POST; absent means an old client or a tool,
    which the CSRF token still guards.
    """
    if origin is None or origin == "":
        return True
    return origin.rstrip("/").lower() in allowed


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case ('' when it has none)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()
