"""Tracing the call-back's incoming calls, journaled by the real ``incoming`` webhook."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from support_world import FATOU_MOBILE, paris

from callback.config import CallbackConfig
from callback.store import CallbackStore
from callback.webhooks import CallbackWebhooks
from ivr.call_store import CallStore
from telegestion.model import Company
from telegestion.support.trace import calls_around

pytestmark = pytest.mark.db

CALLBACK_NUMBER = "+33970809000"  # examples/numbers.csv, kind callback, shared


def incoming(sessions: sessionmaker[Session], at: dt.datetime, sid: str, mobile: str) -> None:
    """What Twilio posts when a carer calls the call-back number from ``mobile``."""
    clock = lambda: at.astimezone(dt.UTC)  # noqa: E731
    config = CallbackConfig("AC" + "0" * 32, "token", "https://tg.example.test", None)
    hooks = CallbackWebhooks(
        config, CallStore(sessions, clock=clock), CallbackStore(sessions), clock=clock
    )
    answer = hooks.incoming({"CallSid": sid, "From": mobile, "To": CALLBACK_NUMBER})
    assert answer.status == 200 and "Reject" in answer.body


def test_callback_request_granted_and_refused(examples: sessionmaker[Session]) -> None:
    """A registered mobile gets its call-back; an unknown one and a second try are refused."""
    incoming(examples, paris(9, 0), "CA01", "+33612345678")
    incoming(examples, paris(9, 1), "CA02", "+33612345678")
    incoming(examples, paris(9, 5), "CA03", "+33699999999")
    with examples() as session:
        c042 = session.scalars(select(Company.id).where(Company.code == "042")).one()
        granted, limited = calls_around(session, caller=FATOU_MOBILE, at=paris(9, 0))
        (stranger,) = calls_around(session, caller="06 99 99 99 99", at=paris(9, 0))
        mine = calls_around(session, caller=FATOU_MOBILE, at=paris(9, 0), company_ids={c042})
        theirs = calls_around(session, caller="06 99 99 99 99", at=paris(9, 0), company_ids={c042})
    assert granted.outcome is None and granted.transport == "twilio"
    assert granted.diagnosis[0].startswith(
        "Call-back request: the call to the call-back number was refused as busy on purpose"
    )
    assert granted.diagnosis[0].endswith("scheduled for 09:00.")
    assert limited.diagnosis == (
        "Call-back refused: this mobile already had a call-back within the last two minutes "
        "(at most one per mobile per two minutes).",
    )
    assert stranger.diagnosis[0].startswith(
        "Call-back refused: 06 99 99 99 99 is not the registered mobile of an active carer"
    )
    assert [t.call_key for t in mine] == ["CA01", "CA02"]
    assert theirs == []
