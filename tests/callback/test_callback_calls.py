"""Call-backs end to end on one worker: Twilio's webhooks signed and posted over loopback, the
real twilio REST client placing calls on the fake Calls API, the real database."""

from __future__ import annotations

import datetime as dt

import pytest
from callback_data import (
    CALLBACK_NUMBER,
    CALLBACK_NUMBER_117,
    FATOU_MOBILE,
    JANE_MOBILE,
    NADIA_MOBILE,
    STRANGER_MOBILE,
    T0,
    Directory,
)
from callback_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    FakeTwilioApi,
    PlacedCall,
    TestTime,
    TwilioSide,
    Worker,
    journal,
    rows,
)
from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import CallbackRequest, CallbackWebhook, Punch

REJECT = '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>'


def placed_call(
    worker: Worker,
    twilio: TwilioSide,
    api: FakeTwilioApi,
    time: TestTime,
    mobile: str = FATOU_MOBILE,
    number: str = CALLBACK_NUMBER,
) -> PlacedCall:
    assert twilio.incoming(worker, mobile, number).body == REJECT
    time.advance(5)
    return PlacedCall(twilio, api.calls()[-1])


def test_registered_mobile_is_rejected_then_called_back_after_the_delay(
    worker: Worker, twilio: TwilioSide, fake_api: FakeTwilioApi, test_time: TestTime
) -> None:
    """The carer's call is refused as busy and the call-back placed 5 s later, as Twilio wants."""
    answer = twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER)
    assert (answer.status, answer.body) == (200, REJECT)
    test_time.advance(4.9)
    assert fake_api.calls() == []
    test_time.advance(0.1)
    [placed] = fake_api.calls()
    assert placed.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert placed.form["To"] == FATOU_MOBILE
    assert placed.form["From"] == CALLBACK_NUMBER
    assert placed.form["Url"].startswith(f"{PUBLIC_URL}/twilio/voice/flow?")
    assert placed.form["StatusCallback"].startswith(f"{PUBLIC_URL}/twilio/voice/status?")
    assert placed.form["MachineDetection"] == "Enable"
    assert placed.form["Method"] == placed.form["StatusCallbackMethod"] == "POST"


@pytest.mark.parametrize(
    ("mobile", "number"),
    [
        (STRANGER_MOBILE, CALLBACK_NUMBER),
        (NADIA_MOBILE, CALLBACK_NUMBER),  # her carer record is inactive
        ("anonymous", CALLBACK_NUMBER),
        (FATOU_MOBILE, "+33800123456"),  # a landline service number, not a call-back number
        (FATOU_MOBILE, CALLBACK_NUMBER_117),  # the call-back number of another company
    ],
)
def test_nothing_is_dialled_for_anyone_else(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    mobile: str,
    number: str,
) -> None:
    """Unknown, inactive or withheld callers, and wrong numbers, are rejected and never called."""
    sid = twilio.new_sid()
    assert twilio.incoming(worker, mobile, number, CallSid=sid).body == REJECT
    test_time.advance(600)
    assert fake_api.calls() == []
    assert rows(sessions, CallbackRequest) == []
    call, events = journal(sessions, sid)
    assert (call.transport, call.caller_raw, call.ended_at) == ("twilio", mobile, T0)
    assert events[-1].kind == "hangup"
    assert events[-1].detail["reason"] == "rejected_no_callback"


def test_one_call_back_per_mobile_per_two_minutes(
    worker: Worker, twilio: TwilioSide, fake_api: FakeTwilioApi, test_time: TestTime
) -> None:
    """A second call within two minutes gets no second call-back; after two minutes it does."""
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER)
    test_time.advance(60)
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER)
    test_time.advance(59.9)
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER)
    test_time.advance(10)
    assert len(fake_api.calls()) == 1
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER)  # 129.9 s after the first
    test_time.advance(5)
    assert len(fake_api.calls()) == 2


def test_a_replayed_incoming_webhook_dials_once(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """Twilio sending the same incoming webhook twice makes one call-back and one journal."""
    sid = twilio.new_sid()
    assert twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER, CallSid=sid).body == REJECT
    assert twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER, CallSid=sid).body == REJECT
    test_time.advance(200)
    assert len(fake_api.calls()) == 1
    assert len(rows(sessions, CallbackRequest)) == 1
    _, events = journal(sessions, sid)
    assert [e.detail.get("what") for e in events].count("callback_request") == 1


def test_a_french_call_back_records_an_unverified_callback_punch(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    directory: Directory,
) -> None:
    """PIN, menu in French naming "Madame D.", key 1: an arrival at Mrs Dubois from the mobile."""
    call = placed_call(worker, twilio, fake_api, test_time)
    pin = call.answer(worker)
    assert pin.spoken() == "Télégestion, bonjour. Tapez votre code intervenant."
    assert pin.gather().attrib["numDigits"] == "5"  # type: ignore[union-attr]
    menu = call.press(worker, "12345")
    assert menu.spoken() == (
        "Pour la visite de neuf heures chez Madame D., tapez 1. "
        "Pour la visite de onze heures chez Monsieur M., tapez 2. "
        "Si votre visite n'est pas dans la liste, tapez 0."
    )
    assert "Dubois" not in menu.body and "Martin" not in menu.body
    readback = call.press(worker, "1")
    assert readback.spoken().startswith("Arrivée enregistrée à neuf heures cinq.")
    end = call.silence(worker)
    assert end.says() == ["Au revoir."] and end.hangs_up()
    call.hang_up(worker)
    [punch] = rows(sessions, Punch)
    assert (punch.origin, punch.call_key) == ("twilio", call.sid)
    assert (punch.source, punch.location_verified) == ("callback", False)
    assert (punch.carer_id, punch.client_id, punch.kind) == (
        directory.fatou,
        directory.dubois,
        "arrival",
    )
    assert punch.caller_e164 == FATOU_MOBILE
    record, events = journal(sessions, call.sid)
    assert (record.transport, record.outcome, record.hangup_step) == (
        "twilio",
        "punch_recorded",
        None,
    )
    assert (record.carer_id, record.client_id) == (directory.fatou, directory.dubois)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {"prompt": "goodbye"} in [e.detail for e in events]


def test_an_english_departure_with_task_codes(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    directory: Directory,
) -> None:
    """An English company: the open visit is offered first, closed by a departure, tasks kept."""
    with sessions() as s, s.begin():
        s.add(
            Punch(
                origin="node1",
                call_key="1795333838.1",
                company_id=directory.company_en,
                carer_id=directory.jane,
                client_id=directory.whitfield,
                kind="arrival",
                at=T0 - dt.timedelta(minutes=62),
                source="landline",
            )
        )
    call = placed_call(worker, twilio, fake_api, test_time, JANE_MOBILE, CALLBACK_NUMBER_117)
    assert call.answer(worker).spoken() == "Hello, visit recording. Enter your carer code."
    menu = call.press(worker, "54321")
    assert menu.spoken().startswith("To end the visit started at seven oh three a.m. at Mrs W.")
    readback = call.press(worker, "1")
    assert readback.spoken().startswith("Departure recorded at eight oh five a.m.")
    assert call.silence(worker).spoken() == "Task codes, star between each, then hash."
    end = call.press(worker, "01*12", finished_on_key="#")
    assert end.says() == ["Tasks recorded.", "Goodbye."] and end.hangs_up()
    punch = rows(sessions, Punch)[-1]
    assert (punch.kind, punch.client_id, punch.task_codes) == (
        "departure",
        directory.whitfield,
        "01 12",
    )
    assert (punch.source, punch.location_verified) == ("callback", False)


def test_replayed_flow_webhooks_never_advance_twice(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """The same webhook twice gets the same TwiML: one punch, and a correction applied once."""
    call = placed_call(worker, twilio, fake_api, test_time)
    call.answer(worker)
    call.press(worker, "12345")
    menu_action = call.action_url()
    first = call.press(worker, "1")
    again = twilio.post(worker, menu_action, call.params(Digits="1"))
    assert again == first
    readback_action = call.action_url()
    corrected = call.press(worker, "2")
    assert corrected.spoken().startswith("Correction enregistrée. Départ enregistré")
    assert twilio.post(worker, readback_action, call.params(Digits="2")) == corrected
    [punch] = rows(sessions, Punch)
    assert (punch.kind, punch.original_kind) == ("departure", "arrival")
    steps = [w.step for w in rows(sessions, CallbackWebhook)]
    assert len(steps) == len(set(steps))


@pytest.mark.parametrize(
    ("keys_before", "how", "step", "outcome", "punches"),
    [
        ([], "status", "welcome", "caller_hung_up", 0),
        (["12345"], "status", "visit_menu", "caller_hung_up", 0),
        (["12345"], "empty_gather", "visit_menu", "caller_hung_up", 0),
        (["12345", "1"], "status", "readback", "punch_recorded", 1),
        (["12345", "1", "2"], "empty_gather", "correction", "punch_recorded", 1),
    ],
)
def test_a_carer_who_hangs_up(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    keys_before: list[str],
    how: str,
    step: str,
    outcome: str,
    punches: int,
) -> None:
    """A hang-up (final status ``completed``, or a gather posting nothing with the call over)
    ends the call at that step; a punch already made stays, and nothing is said after."""
    call = placed_call(worker, twilio, fake_api, test_time)
    call.answer(worker)
    for keys in keys_before:
        call.press(worker, keys)
    if how == "status":
        assert call.hang_up(worker).status == 200
    else:
        assert call.silence(worker, status="completed").hangs_up()
    call.hang_up(worker)  # the final status comes anyway: it changes nothing more
    record, events = journal(sessions, call.sid)
    assert (record.outcome, record.hangup_step) == (outcome, step)
    assert len(rows(sessions, Punch)) == punches
    assert events[-1].kind == "hangup"


def test_keys_sent_with_the_hang_up_still_punch(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    directory: Directory,
) -> None:
    """A menu key that reached Twilio as the carer hung up still records the punch."""
    call = placed_call(worker, twilio, fake_api, test_time)
    call.answer(worker)
    call.press(worker, "12345")
    call.press(worker, "2", status="completed")
    [punch] = rows(sessions, Punch)
    assert punch.client_id == directory.martin
    record, _ = journal(sessions, call.sid)
    assert (record.outcome, record.hangup_step) == ("punch_recorded", "readback")
