"""Stored replies: every reply the flow can get comes back from JSON exactly as it was."""

from __future__ import annotations

import json

import pytest

from callback.reply_codec import ReplyCodecError, decode_replies, encode_replies
from ivr import effects as fx
from ivr.flow_driver import HANG_UP

COMPANY = fx.CompanyInfo(3, "042", "fr", "Europe/Paris", task_codes_enabled=True)

REPLIES = [
    None,
    True,
    False,
    fx.Keys("12*45", timed_out=True),
    fx.Keys("", timed_out=False),
    fx.CalledNumber("dedicated", COMPANY),
    fx.CalledNumber("shared", None),
    COMPANY,
    fx.CarerInfo(7),
    fx.CarerMatches((fx.CarerMatch(7, COMPANY), fx.CarerMatch(9, COMPANY))),
    fx.CarerMatches(()),
    fx.ClientInfo(11),
    fx.VisitChoices(
        (
            fx.VisitChoice(11, "open", 8, 5, fx.ClientLabel("mrs", "D")),
            fx.VisitChoice(12, "planned", 11, 0, fx.ClientLabel(None, "")),
        )
    ),
    fx.PunchRecorded(5, "departure", 23, 59),
    fx.Failure("database: OperationalError"),
    HANG_UP,
]


def test_every_reply_survives_a_trip_through_json() -> None:
    """Encoded, written as JSON text, read and decoded, each reply equals the original."""
    text = json.dumps(encode_replies(REPLIES))
    assert decode_replies(json.loads(text)) == REPLIES


def test_booleans_stay_booleans() -> None:
    """A lock-out answer (bool) never comes back as an int or the other way round."""
    decoded = decode_replies(json.loads(json.dumps(encode_replies([True, 0]))))
    assert decoded[0] is True
    assert decoded[1] == 0 and not isinstance(decoded[1], bool)


def test_an_unknown_stored_type_is_refused() -> None:
    """A row naming a type this version does not know is an error, not a guess."""
    with pytest.raises(ReplyCodecError):
        decode_replies([{"type": "os.system", "command": "true"}])


def test_an_unstorable_reply_is_refused() -> None:
    """A reply type the codec does not list cannot be stored by mistake."""
    with pytest.raises(ReplyCodecError):
        encode_replies([fx.Journal("input", {})])
