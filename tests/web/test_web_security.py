"""The login rules on their own: argon2id hashes, tokens, CSRF, expiry, throttling, origins."""

from __future__ import annotations

import datetime as dt

from telegestion.web.security import (
    SessionPolicy,
    ThrottlePolicy,
    after_failure,
    csrf_matches,
    csrf_token,
    hash_password,
    locked,
    needs_rehash,
    new_token,
    origin_allowed,
    origin_of,
    password_matches,
    password_problem,
    session_alive,
    token_digest,
)

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def test_passwords_are_hashed_with_argon2id_and_its_parameters() -> None:
    """The stored hash is argon2id with its memory, time and parallelism costs, salted."""
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second  # a salt of its own
    assert "correct horse" not in first
    assert not needs_rehash(first)


def test_a_hash_made_with_other_costs_still_matches_and_is_rehashed() -> None:
    """Hashes stored with the library's former 64 MiB default keep working, and are flagged for
    re-hashing at their owner's next login."""
    from argon2 import PasswordHasher

    old = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash("correct horse")
    assert password_matches(old, "correct horse")
    assert needs_rehash(old)


def test_password_check_accepts_only_the_password() -> None:
    """The right password matches; a wrong one, a missing or damaged hash never do (no error)."""
    stored = hash_password("correct horse battery")
    assert password_matches(stored, "correct horse battery")
    assert not password_matches(stored, "correct horse batterY")
    assert not password_matches(None, "correct horse battery")
    assert not password_matches("not a hash", "correct horse battery")


def test_short_passwords_are_refused() -> None:
    """A new password needs ten characters and no surrounding spaces."""
    assert password_problem("short") is not None
    assert password_problem(" padded password ") is not None
    assert password_problem("long enough pass") is None


def test_tokens_are_random_and_stored_as_digests() -> None:
    """Two tokens differ; the digest is a SHA-256 hex that does not contain the token."""
    token = new_token()
    assert token != new_token() and len(token) >= 43
    assert len(token_digest(token)) == 64 and token not in token_digest(token)


def test_csrf_token_belongs_to_its_session() -> None:
    """A form token matches only the session secret it came from; an empty one never."""
    secret, other = new_token(), new_token()
    token = csrf_token(secret)
    assert csrf_matches(secret, token)
    assert not csrf_matches(other, token)
    assert not csrf_matches(secret, "")
    assert not csrf_matches(secret, None)
    assert not csrf_matches(secret, token.upper())


def test_session_ends_when_idle_or_past_its_end() -> None:
    """Alive while used within the idle time and before the absolute end; dead after either."""
    policy = SessionPolicy(idle=dt.timedelta(minutes=60), max_age=dt.timedelta(hours=12))
    end = T0 + policy.max_age
    assert session_alive(T0, end, T0 + dt.timedelta(minutes=59), policy)
    assert not session_alive(T0, end, T0 + dt.timedelta(minutes=60), policy)
    late = end - dt.timedelta(minutes=1)
    assert session_alive(late, end, late, policy)
    assert not session_alive(end, end, end, policy)


def test_failures_lock_after_the_limit_and_old_ones_are_forgotten() -> None:
    """The fifth failure in a row locks for the lockout; failures older than it start over."""
    policy = ThrottlePolicy(max_failures=5, lockout=dt.timedelta(minutes=15))
    failures, until, last = 0, None, None
    for n in range(4):
        now = T0 + dt.timedelta(minutes=n)
        failures, until = after_failure(failures, last, now, policy)
        last = now
        assert until is None and failures == n + 1
    failures, until = after_failure(failures, last, T0 + dt.timedelta(minutes=4), policy)
    assert until == T0 + dt.timedelta(minutes=19) and failures == 0
    assert locked(until, T0 + dt.timedelta(minutes=18))
    assert not locked(until, T0 + dt.timedelta(minutes=19))
    assert after_failure(4, T0, T0 + dt.timedelta(minutes=15), policy) == (1, None)


def test_origin_check() -> None:
    """Same-site or absent origins pass; another site does not."""
    allowed = frozenset({"http://tg.local:8080", "https://tg.example"})
    assert origin_allowed(None, allowed)
    assert origin_allowed("https://tg.example", allowed)
    assert origin_allowed("HTTP://TG.LOCAL:8080/", allowed)
    assert not origin_allowed("https://evil.example", allowed)
    assert not origin_allowed("null", allowed)
    assert origin_of("https://tg.example/anomalies?x=1") == "https://tg.example"
    assert origin_of("not a url") == ""
