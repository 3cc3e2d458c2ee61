"""Hostile requests at the Twilio webhooks, over real HTTP on loopback, on SQLite and PostgreSQL.

``tests/callback/test_callback_gate.py`` pins the gate's basic refusals; here: bodies too big
with or without a declared length, bad bytes and encodings (NUL included), missing fields,
signatures reused on another request, and a whole finished call replayed. A refused request
answers a clear 4xx and changes no row (a bad signature adds only its ``twilio-rejected``
journal entry); a replay answers 200 with TwiML and never adds a punch or a call-back.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest
from callback_data import CALLBACK_NUMBER, FATOU_MOBILE
from callback_harness import (
    PUBLIC_URL,
    FakeTwilioApi,
    PlacedCall,
    TestTime,
    TwilioSide,
    Worker,
    rows,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from callback.forms import MAX_BODY_BYTES
from telegestion.model import Base, Call, Punch

FORM = "application/x-www-form-urlencoded"
INCOMING = f"{PUBLIC_URL}/twilio/voice/incoming"
REJECT = '<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="busy"/></Response>'


def snapshot(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Row counts of every table: what a refused request must leave as it found it."""
    with sessions() as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def raw_post(
    worker: Worker,
    path: str,
    body: bytes | Iterator[bytes],
    headers: dict[str, str],
) -> tuple[int, str]:
    """POST exactly these bytes (an iterator is sent chunked, with no Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", worker.port_number, timeout=30)
    try:
        chunked = not isinstance(body, bytes)
        conn.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def chunks(total: int, size: int) -> Iterator[bytes]:
    yield b"CallSid=CA1&From="
    sent = 0
    while sent < total:
        yield b"7" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize(
    ("body", "declared"),
    [
        pytest.param(b"CallSid=CA1&From=" + b"7" * (1 << 20), True, id="declared-1MiB"),
        pytest.param(b"CallSid=CA1&Pad=" + b"x" * MAX_BODY_BYTES, True, id="declared-limit+17"),
        pytest.param(None, False, id="chunked-1MiB-no-length"),
        pytest.param(b"small", False, id="chunked-small-chunks-over-limit"),
    ],
)
def test_oversized_bodies_get_413_and_change_nothing(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    body: bytes | None,
    declared: bool,
) -> None:
    """Too big, whether the length is declared or the body comes chunked: 413, no row, no call."""
    before = snapshot(sessions)
    headers = {"Content-Type": FORM, "X-Twilio-Signature": "c2lnbmVk"}
    if declared:
        assert body is not None
        sent: bytes | Iterator[bytes] = body
    elif body is None:
        sent = chunks(1 << 20, 65536)
    else:
        sent = chunks(MAX_BODY_BYTES + 1, 100)
    status, text = raw_post(worker, "/twilio/voice/incoming", sent, headers)
    assert (status, text) == (413, f"body over {MAX_BODY_BYTES} bytes\n")
    test_time.advance(300)
    assert fake_api.calls() == []
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    ("path", "body", "content_type", "says"),
    [
        ("incoming", b"CallSid=CA1&From=%FF%FE", FORM, "body is not form-encoded"),
        ("incoming", b"CallSid=CA1&From=%2B33612345678%00", FORM, "NUL"),
        ("incoming", b"CallSid=CA\x001&From=%2B33612345678", FORM, "NUL"),
        ("incoming", b"CallSid=CA1&From=\xc3\xa9", FORM, "ASCII"),
        (
            "incoming",
            b'--x\r\nContent-Disposition: form-data; name="CallSid"\r\n\r\nCA1\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "expected a body of type",
        ),
        ("incoming", b"CallSid=CA1", "text/plain", "expected a body of type"),
        ("incoming", b"CallSid=CA1&&From=x", FORM, "not form-encoded"),
        ("flow?s=%FF", b"CallSid=CA1&Digits=1", FORM, "query string is not form-encoded"),
        ("flow?s=1&s=2", b"CallSid=CA1&Digits=1", FORM, "repeats the field 's'"),
        ("flow?s=1%00", b"CallSid=CA1&Digits=1", FORM, "NUL"),
    ],
)
def test_bad_bytes_and_encodings_get_400_and_change_nothing(
    worker: Worker,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
    path: str,
    body: bytes,
    content_type: str,
    says: str,
) -> None:
    """Bytes no Twilio form holds are refused with 400 and the reason, before any row is read."""
    before = snapshot(sessions)
    headers = {"Content-Type": content_type, "X-Twilio-Signature": "c2lnbmVk"}
    status, text = raw_post(worker, f"/twilio/voice/{path}", body, headers)
    assert status == 400
    assert says in text
    assert text.count("\n") == 1
    test_time.advance(300)
    assert fake_api.calls() == []
    assert snapshot(sessions) == before


@pytest.mark.parametrize(
    ("url", "params", "says"),
    [
        (INCOMING, {"From": FATOU_MOBILE, "To": CALLBACK_NUMBER}, "CallSid is missing"),
        (f"{PUBLIC_URL}/twilio/voice/status?r=1&a=1", {"CallStatus": "busy"}, "CallSid is missing"),
        (f"{PUBLIC_URL}/twilio/voice/flow", {"CallSid": "CA1"}, "r and a must name"),
        (f"{PUBLIC_URL}/twilio/voice/flow?r=x&a=1", {"CallSid": "CA1"}, "r and a must name"),
        (f"{PUBLIC_URL}/twilio/voice/flow?s=one", {"CallSid": "CA1"}, "s must be a number"),
    ],
)
def test_signed_requests_missing_fields_get_400_and_change_nothing(
    worker: Worker,
    twilio: TwilioSide,
    sessions: sessionmaker[Session],
    url: str,
    params: dict[str, str],
    says: str,
) -> None:
    """A genuinely signed request without the fields it needs: 400 naming them, no row."""
    before = snapshot(sessions)
    answer = twilio.post(worker, url, params)
    assert answer.status == 400
    assert answer.body.startswith(says) and answer.body.count("\n") == 1
    assert snapshot(sessions) == before


def test_an_incoming_call_without_a_caller_is_refused_without_a_call_back(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """No From at all: rejected busy like any unknown caller (TwiML 200), nothing dialled."""
    params = {"CallSid": twilio.new_sid(), "To": CALLBACK_NUMBER}
    answer = twilio.post(worker, INCOMING, params)
    assert (answer.status, answer.body) == (200, REJECT)
    test_time.advance(300)
    assert fake_api.calls() == []


def test_a_signature_reused_on_another_request_is_refused(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """A captured valid signature sent with another caller or to another URL: 403 each time."""
    genuine = {"CallSid": twilio.new_sid(), "From": "+33600000000", "To": CALLBACK_NUMBER}
    signature = twilio.validator.compute_signature(INCOMING, genuine)
    before = snapshot(sessions)
    altered = {**genuine, "From": FATOU_MOBILE}
    assert twilio.post(worker, INCOMING, altered, signature=signature).status == 403
    status_url = f"{PUBLIC_URL}/twilio/voice/status?r=1&a=1"
    assert twilio.post(worker, status_url, genuine, signature=signature).status == 403
    test_time.advance(300)
    assert fake_api.calls() == []
    after = snapshot(sessions)
    assert after["calls"] == before["calls"] + 2  # the two twilio-rejected journal entries
    assert {k: v for k, v in after.items() if k not in ("calls", "call_events")} == {
        k: v for k, v in before.items() if k not in ("calls", "call_events")
    }
    assert {c.origin for c in rows(sessions, Call)} == {"twilio-rejected"}


def test_a_whole_finished_call_replayed_changes_nothing(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """Every webhook of a finished call sent again, status last: same TwiML, no second punch."""
    incoming_sid = twilio.new_sid()
    assert twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER, CallSid=incoming_sid).body == (
        REJECT
    )
    test_time.advance(5)
    call = PlacedCall(twilio, fake_api.calls()[-1])
    sent: list[tuple[str, dict[str, str], str]] = []

    def play(url: str, params: dict[str, str]) -> None:
        call.last = twilio.post(worker, url, params)
        assert call.last.status == 200
        sent.append((url, params, call.last.body))

    play(call.flow_url, call.params(AnsweredBy="human"))
    play(call.action_url(), call.params(Digits="12345"))
    play(call.action_url(), call.params(Digits="1"))
    play(call.action_url(), call.params())  # silence at the readback: goodbye
    play(call.status_url, call.params("completed", CallDuration="31"))
    [punch] = rows(sessions, Punch)
    before = snapshot(sessions)
    placed = len(fake_api.calls())
    test_time.advance(180)  # past the two-minute window: a replayed incoming is still not new
    for url, params, body in [*sent, *reversed(sent)]:
        again = twilio.post(worker, url, params)
        assert (again.status, again.body) == (200, body)
    again = twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER, CallSid=incoming_sid)
    assert (again.status, again.body) == (200, REJECT)
    test_time.advance(300)
    assert len(fake_api.calls()) == placed
    assert snapshot(sessions) == before
    assert [p.id for p in rows(sessions, Punch)] == [punch.id]


def test_a_status_replayed_after_the_call_ended_is_answered_and_ignored(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """A late or repeated status (completed, then busy or no-answer) never retries a done call."""
    assert twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER).body == REJECT
    test_time.advance(5)
    call = PlacedCall(twilio, fake_api.calls()[-1])
    call.answer(worker)
    call.press(worker, "12345")
    call.press(worker, "1")
    assert call.hang_up(worker).status == 200
    before = snapshot(sessions)
    for status in ("completed", "completed", "no-answer", "busy", "failed"):
        answer = call.status(worker, status)
        assert answer.status == 200
        assert answer.body.startswith("<?xml")
    test_time.advance(600)
    assert len(fake_api.calls()) == 1
    after = snapshot(sessions)
    assert after["punches"] == before["punches"] == 1
    assert after["callback_requests"] == before["callback_requests"]
