"""The webhook gate over HTTP: forged or missing signatures, garbage, and unconfigured workers."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from callback_data import CALLBACK_NUMBER, FATOU_MOBILE
from callback_harness import (
    PUBLIC_URL,
    FakeTwilioApi,
    LoopbackReactor,
    PlacedCall,
    TestTime,
    TwilioSide,
    Worker,
    journal,
    rows,
)
from sqlalchemy.orm import Session, sessionmaker
from twisted.web import resource

from callback.web import twilio_resource
from telegestion import migrate
from telegestion.db import make_engine, make_session_factory
from telegestion.model import Call, CallbackCall, CallbackRequest, Punch
from telegestion.settings import Settings


def rejected_journal(sessions: sessionmaker[Session]) -> list[Call]:
    return rows(sessions, Call, Call.origin == "twilio-rejected")


def test_a_forged_webhook_gets_403_a_journal_entry_and_changes_nothing(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """A menu choice signed with the wrong token is refused, journaled, and the call goes on."""
    twilio.incoming(worker, FATOU_MOBILE, CALLBACK_NUMBER)
    test_time.advance(5)
    call = PlacedCall(twilio, fake_api.calls()[0])
    call.answer(worker)
    menu = call.press(worker, "12345")
    [state_before] = rows(sessions, CallbackCall)
    forger = TwilioSide(auth_token="not-the-auth-token")
    forged = forger.post(worker, call.action_url(), call.params(Digits="1"))
    assert (forged.status, forged.body) == (403, "bad_twilio_signature\n")
    [state_after] = rows(sessions, CallbackCall)
    assert state_after.replies == state_before.replies
    assert rows(sessions, Punch) == []
    [entry] = rejected_journal(sessions)
    _, events = journal(sessions, entry.call_key)
    assert events[0].kind == "error"
    assert events[0].detail["error"] == "bad_twilio_signature"
    assert events[0].detail["call_sid"] == call.sid
    assert events[0].detail["path"] == "/twilio/voice/flow"
    assert call.last == menu
    assert call.press(worker, "1").spoken().startswith("Arrivée enregistrée")
    assert len(rows(sessions, Punch)) == 1


def test_an_unsigned_incoming_call_dials_nothing(
    worker: Worker,
    twilio: TwilioSide,
    fake_api: FakeTwilioApi,
    test_time: TestTime,
    sessions: sessionmaker[Session],
) -> None:
    """No X-Twilio-Signature: 403, journaled, no call-back recorded or placed."""
    params = {"CallSid": twilio.new_sid(), "From": FATOU_MOBILE, "To": CALLBACK_NUMBER}
    answer = twilio.post(worker, f"{PUBLIC_URL}/twilio/voice/incoming", params, signature=None)
    assert (answer.status, answer.body) == (403, "missing_twilio_signature\n")
    test_time.advance(600)
    assert fake_api.calls() == []
    assert rows(sessions, CallbackRequest) == []
    [entry] = rejected_journal(sessions)
    assert entry.caller_raw == FATOU_MOBILE


def test_a_signature_over_the_url_the_server_sees_is_refused(
    worker: Worker, twilio: TwilioSide, fake_api: FakeTwilioApi, test_time: TestTime
) -> None:
    """Signed over http://127.0.0.1:<port>/… instead of the public URL: not Twilio's, 403."""
    params = {"CallSid": twilio.new_sid(), "From": FATOU_MOBILE, "To": CALLBACK_NUMBER}
    inside = f"http://127.0.0.1:{worker.port_number}/twilio/voice/incoming"
    answer = twilio.post(worker, f"{PUBLIC_URL}/twilio/voice/incoming", params, signed_url=inside)
    assert answer.status == 403
    test_time.advance(600)
    assert fake_api.calls() == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"\xff\xfe<junk>", "application/x-www-form-urlencoded", 400, "ASCII"),
        (b'{"CallSid": "CA1"}', "application/json", 400, "expected a body of type"),
        (b"CallSid=CA1&CallSid=CA2", "application/x-www-form-urlencoded", 400, "repeats"),
        (b"CallSid=" + b"x" * 20_000, "application/x-www-form-urlencoded", 413, "body over"),
    ],
)
def test_garbage_gets_a_clear_refusal(
    worker: Worker,
    twilio: TwilioSide,
    sessions: sessionmaker[Session],
    body: bytes,
    content_type: str,
    status: int,
    says: str,
) -> None:
    """A body that is no Twilio form is refused with a status and a message, nothing journaled."""
    answer = twilio.post(
        worker,
        f"{PUBLIC_URL}/twilio/voice/incoming",
        {},
        body=body,
        content_type=content_type,
        signature=None,
    )
    assert answer.status == status
    assert says in answer.body
    assert rows(sessions, Call) == []


def test_a_signed_webhook_without_call_sid_is_a_bad_request(
    worker: Worker, twilio: TwilioSide
) -> None:
    """Signed but missing CallSid: 400 saying so."""
    answer = twilio.post(worker, f"{PUBLIC_URL}/twilio/voice/flow?s=3", {"Digits": "1"})
    assert (answer.status, answer.body) == (400, "CallSid is missing\n")


def test_only_post_is_served(worker: Worker) -> None:
    """GET on a webhook URL is not allowed (405)."""
    conn = http.client.HTTPConnection("127.0.0.1", worker.port_number, timeout=10)
    try:
        conn.request("GET", "/twilio/voice/incoming")
        assert conn.getresponse().status == 405
    finally:
        conn.close()


def test_a_worker_without_twilio_settings_answers_503(
    loop: LoopbackReactor, tmp_path: Path
) -> None:
    """No account SID, token or public URL: every Twilio URL says 503 and what to set."""
    engine = make_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    callback = twilio_resource(
        Settings(), make_session_factory(engine), reactor=loop.reactor, threadpool=loop.pool
    )
    assert callback.service is None
    root = resource.Resource()
    root.putChild(b"twilio", callback.resource)
    port, number = loop.listen(root)
    try:
        for path in ("/twilio/voice/incoming", "/twilio/voice/flow?s=1", "/twilio/voice/status"):
            conn = http.client.HTTPConnection("127.0.0.1", number, timeout=10)
            conn.request("POST", path, body=b"CallSid=CA1")
            response = conn.getresponse()
            text = response.read().decode()
            conn.close()
            assert response.status == 503
            assert "TELEGESTION_TWILIO_ACCOUNT_SID" in text and "TELEGESTION_PUBLIC_URL" in text
    finally:
        loop.call(port.stopListening)
        engine.dispose()


def test_serve_mounts_the_twilio_webhooks(tmp_path: Path) -> None:
    """`telegestion serve` with Twilio settings answers a signed incoming call with TwiML."""
    database = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = make_engine(database)
    migrate.upgrade(engine)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
    env.update(
        TELEGESTION_DATABASE_URL=database,
        TELEGESTION_TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TELEGESTION_TWILIO_AUTH_TOKEN="serve-token",
        TELEGESTION_PUBLIC_URL=PUBLIC_URL,
        TELEGESTION_TWILIO_API_URL="http://127.0.0.1:9",
    )
    command = [sys.executable, "-m", "telegestion.cli", "serve", "--listen", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--agi-port", "0", "--http-port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"HTTP on port (\d+)", line)
        assert match, f"serve did not start: {line!r}"
        served = type("Served", (), {"port_number": int(match.group(1))})()
        twilio = TwilioSide(auth_token="serve-token")
        params = {"CallSid": twilio.new_sid(), "From": FATOU_MOBILE, "To": CALLBACK_NUMBER}
        answer = twilio.post(served, f"{PUBLIC_URL}/twilio/voice/incoming", params)  # type: ignore[arg-type]
        assert answer.status == 200
        assert '<Reject reason="busy"/>' in answer.body
        forged = TwilioSide(auth_token="wrong").post(
            served,  # type: ignore[arg-type]
            f"{PUBLIC_URL}/twilio/voice/incoming",
            params,
        )
        assert forged.status == 403
    finally:
        proc.terminate()
        proc.wait(10)
