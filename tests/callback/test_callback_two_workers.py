"""Two workers on one database share a call-back: no state in a worker, no double punch."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from callback_data import CALLBACK_NUMBER, FATOU_MOBILE, Directory
from callback_harness import FakeTwilioApi, PlacedCall, TestTime, TwilioSide, Worker, journal, rows
from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import CallbackWebhook, Punch


def test_alternate_webhooks_on_two_workers_make_one_call(
    make_worker: Callable[..., Worker],
    directory: Directory,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """Incoming on A, placed by B (A never wakes), then every webhook on the other worker."""
    a, b = make_worker(), make_worker()
    twilio.incoming(a, FATOU_MOBILE, CALLBACK_NUMBER)
    test_time.advance(4, workers=[b])
    assert fake_api.calls() == []
    test_time.advance(1, workers=[b])  # due now: B's regular poll finds it in the database
    [placed] = fake_api.calls()
    call = PlacedCall(twilio, placed)
    assert call.answer(a).gather() is not None
    assert "Madame D." in call.press(b, "12345").spoken()
    assert call.press(a, "1").spoken().startswith("Arrivée enregistrée")
    assert call.press(b, "2").spoken().startswith("Correction enregistrée")
    assert call.silence(a).hangs_up()
    call.hang_up(b)
    [punch] = rows(sessions, Punch)
    assert (punch.client_id, punch.kind, punch.source) == (
        directory.dubois,
        "departure",
        "callback",
    )
    record, events = journal(sessions, call.sid)
    assert record.outcome == "punch_recorded"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    inputs = [e.detail["field"] for e in events if e.kind == "input"]
    assert inputs == ["carer_code", "visit_menu", "correction", "readback"]


def test_the_same_webhook_on_both_workers_at_once_punches_once(
    make_worker: Callable[..., Worker],
    directory: Directory,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """A webhook delivered twice at the same moment, to two workers, is served once."""
    a, b = make_worker(), make_worker()
    twilio.incoming(a, FATOU_MOBILE, CALLBACK_NUMBER)
    test_time.advance(5)
    call = PlacedCall(twilio, fake_api.calls()[0])
    call.answer(a)
    call.press(b, "12345")
    action, params = call.action_url(), call.params(Digits="1")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda w: twilio.post(w, action, params), [a, b, a, b]))
    assert {x.status for x in answers} == {200}
    assert len({x.body for x in answers}) == 1
    assert "Arrivée enregistrée" in answers[0].body
    assert len(rows(sessions, Punch)) == 1
    steps = [w.step for w in rows(sessions, CallbackWebhook)]
    assert len(steps) == len(set(steps))
