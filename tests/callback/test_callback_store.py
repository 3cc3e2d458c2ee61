"""The call-back's rows decide races: one grant, one claim, one lease, all or nothing."""

from __future__ import annotations

import datetime as dt

from callback_data import CALLBACK_NUMBER, FATOU_MOBILE, T0
from sqlalchemy.orm import Session, sessionmaker

from callback.store import CallbackStore, Granted, RequestView
from ivr.effects import Keys
from telegestion.model import CallbackWebhook

LEASE = dt.timedelta(seconds=30)
TWO_MINUTES = dt.timedelta(minutes=2)


def grant(store: CallbackStore, sid: str, now: dt.datetime = T0) -> Granted:
    return store.grant(
        incoming_call_sid=sid,
        mobile_e164=FATOU_MOBILE,
        callback_number_e164=CALLBACK_NUMBER,
        company_id=None,
        language="fr",
        now=now,
        delay=dt.timedelta(seconds=5),
        window=TWO_MINUTES,
    )


def test_grant_is_once_per_incoming_call_and_per_two_minutes(
    sessions: sessionmaker[Session],
) -> None:
    """The same incoming call is a duplicate; another within the window is rate limited."""
    store = CallbackStore(sessions)
    first = grant(store, "CA1")
    assert first.grant == "created"
    assert grant(store, "CA1").grant == "duplicate"
    assert grant(store, "CA2", T0 + dt.timedelta(seconds=119)).grant == "rate_limited"
    assert grant(store, "CA3", T0 + TWO_MINUTES).grant == "created"


def test_a_due_request_is_claimed_once_and_a_dead_workers_claim_expires(
    sessions: sessionmaker[Session],
) -> None:
    """Two workers claiming at once get it once; a claim never confirmed is taken again later."""
    store = CallbackStore(sessions)
    grant(store, "CA1")
    due = T0 + dt.timedelta(seconds=5)
    assert store.claim_due(due - dt.timedelta(seconds=1), lease=LEASE, max_attempts=2) == []
    [claimed] = store.claim_due(due, lease=LEASE, max_attempts=2)
    assert isinstance(claimed, RequestView) and claimed.attempts == 1
    assert store.claim_due(due, lease=LEASE, max_attempts=2) == []
    # The claiming worker died before placing the call: after the lease, another takes it.
    [again] = store.claim_due(due + LEASE + dt.timedelta(seconds=1), lease=LEASE, max_attempts=2)
    assert again.attempts == 2
    # And after the last attempt's lease, nothing is dialled any more.
    assert store.claim_due(due + 3 * LEASE, lease=LEASE, max_attempts=2) == []
    assert store.request(again.request_id).status == "failed"  # type: ignore[union-attr]


def test_a_call_lease_is_exclusive_until_saved_and_a_lost_lease_saves_nothing(
    sessions: sessionmaker[Session],
) -> None:
    """One worker at a time on a call; a turn saved after its lease was taken over is dropped."""
    store = CallbackStore(sessions)
    grant(store, "CA1")
    [request] = store.claim_due(T0 + dt.timedelta(seconds=5), lease=LEASE, max_attempts=2)
    store.open_call("CAout", request, 1, T0, ended=False)
    assert store.acquire("CAout", "worker-a", T0, LEASE)
    assert not store.acquire("CAout", "worker-b", T0 + dt.timedelta(seconds=29), LEASE)
    later = T0 + LEASE + dt.timedelta(seconds=1)
    assert store.acquire("CAout", "worker-b", later, LEASE)
    lost = store.save_turn(
        "CAout", "worker-a", step="start", response="<a/>", replies=[None], ended=False, now=later
    )
    assert lost is False
    with sessions() as s:
        assert s.query(CallbackWebhook).count() == 0
    assert store.call_state("CAout").replies == ()  # type: ignore[union-attr]
    saved = store.save_turn(
        "CAout",
        "worker-b",
        step="start",
        response="<b/>",
        replies=[None, Keys("12345", False)],
        ended=False,
        now=later,
    )
    assert saved is True
    assert store.answer_of("CAout", "start") == "<b/>"
    assert store.call_state("CAout").replies == (None, Keys("12345", False))  # type: ignore[union-attr]
    assert store.acquire("CAout", "worker-a", later, LEASE)  # saving gave the lease back
