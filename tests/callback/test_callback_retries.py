"""Status callbacks: unanswered call-backs are journaled and retried once; machines hung up on."""

from __future__ import annotations

import pytest
from callback_data import CALLBACK_NUMBER, FATOU_MOBILE
from callback_harness import FakeTwilioApi, PlacedCall, TestTime, TwilioSide, Worker, journal, rows
from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import CallbackRequest, Punch


def first_call(
    worker: Worker, twilio: TwilioSide, api: FakeTwilioApi, time: TestTime
) -> tuple[str, PlacedCall]:
    incoming = twilio.new_sid()
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER, CallSid=incoming)
    time.advance(5)
    return incoming, PlacedCall(twilio, api.calls()[-1])


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed"])
def test_unanswered_call_back_is_retried_once_after_a_minute(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    status: str,
) -> None:
    """A call-back that fails is journaled and placed again 60 s later, and only once."""
    _, call = first_call(worker, twilio, fake_api, test_time)
    assert call.flow_url.endswith("&a=1")
    assert call.status(worker, status).status == 200
    test_time.advance(59.9)
    assert len(fake_api.calls()) == 1
    test_time.advance(0.1)
    assert len(fake_api.calls()) == 2
    retry = PlacedCall(twilio, fake_api.calls()[-1])
    assert retry.flow_url.endswith("&a=2") and retry.to == FATOU_MOBILE
    retry.status(worker, "no-answer")
    test_time.advance(600)
    assert len(fake_api.calls()) == 2
    [request] = rows(sessions, CallbackRequest)
    assert (request.status, request.attempts, request.last_call_status) == (
        "failed",
        2,
        "no-answer",
    )
    record, events = journal(sessions, call.sid)
    assert events[-1].kind == "hangup"
    assert events[-1].detail["call_status"] == status
    assert events[-1].detail["retry_at"] is not None
    assert record.ended_at is not None
    _, retry_events = journal(sessions, retry.sid)
    assert retry_events[-1].detail["retry_at"] is None


def test_a_replayed_status_callback_retries_once(
    worker: Worker, twilio: TwilioSide, fake_api: FakeTwilioApi, test_time: TestTime
) -> None:
    """Twilio sending the same no-answer twice schedules one retry, not two."""
    _, call = first_call(worker, twilio, fake_api, test_time)
    call.status(worker, "no-answer")
    call.status(worker, "no-answer")
    test_time.advance(600)
    assert len(fake_api.calls()) == 2


def test_a_stale_status_for_an_older_attempt_changes_nothing(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """A late report about attempt 1 once attempt 2 is placed neither retries nor fails it."""
    _, call = first_call(worker, twilio, fake_api, test_time)
    call.status(worker, "busy")
    test_time.advance(60)
    call.status(worker, "failed")  # a second, late report about the first call
    test_time.advance(600)
    assert len(fake_api.calls()) == 2
    assert rows(sessions, CallbackRequest)[0].status == "placed"


def test_an_answering_machine_is_hung_up_on_and_not_retried(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """Answered by a machine: hang up at once, say nothing, journal it, call no more."""
    _, call = first_call(worker, twilio, fake_api, test_time)
    answer = call.answer(worker, answered_by="machine_end_beep")
    assert answer.hangs_up() and answer.says() == []
    call.hang_up(worker)
    test_time.advance(600)
    assert len(fake_api.calls()) == 1
    assert rows(sessions, CallbackRequest)[0].status == "machine"
    assert rows(sessions, Punch) == []
    _, events = journal(sessions, call.sid)
    assert [e.detail.get("reason") for e in events] == ["answering_machine"]
    assert events[0].detail["answered_by"] == "machine_end_beep"


def test_a_call_twilio_refuses_to_place_is_retried(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """An API error on placing is journaled on the carer's call and retried after a minute."""
    fake_api.fail_next(400, 21215, "Geo permission")
    incoming = twilio.new_sid()
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER, CallSid=incoming)
    test_time.advance(5)
    assert len(fake_api.calls()) == 1 and fake_api.calls()[0].sid is None
    test_time.advance(60)
    assert [c.sid is not None for c in fake_api.calls()] == [False, True]
    _, events = journal(sessions, incoming)
    refused = [e for e in events if e.kind == "error"]
    assert len(refused) == 1 and "Geo permission" in refused[0].detail["error"]
    assert events[-1].detail["placed"] is True
