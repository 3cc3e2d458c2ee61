"""The flow's replies as JSON, so a call's progress can wait in the database between webhooks.

A call-back call is resumed on each webhook by replaying every reply the flow has had
(``ivr.flow_driver.resume_flow``), so the replies must come back exactly as they were: the same
types, the same tuples. Each reply dataclass is stored as an object tagged with its type name;
only the types listed here can be read back, so a row written by hand cannot make the server
build anything else.

Pure: plain values in, plain values out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ivr import effects as fx
from ivr.flow_driver import HangUp, ScriptedReply

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        fx.Keys,
        fx.CalledNumber,
        fx.CompanyInfo,
        fx.CarerInfo,
        fx.CarerMatch,
        fx.CarerMatches,
        fx.ClientInfo,
        fx.ClientLabel,
        fx.VisitChoice,
        fx.VisitChoices,
        fx.PunchRecorded,
        fx.Failure,
        HangUp,
    )
}
_TYPE_KEY = "type"


class ReplyCodecError(ValueError):
    """Stored replies that this version cannot read (a type it does not know)."""


def encode_replies(replies: Sequence[ScriptedReply]) -> list[Any]:
    return [_encode(reply) for reply in replies]


def decode_replies(data: Sequence[Any]) -> list[ScriptedReply]:
    return [_decode(item) for item in data]


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if dataclasses.is_dataclass(value) and type(value).__name__ in _TYPES:
        fields = {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TYPE_KEY: type(value).__name__, **fields}
    raise ReplyCodecError(f"cannot store a reply of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v) for v in value)
    if isinstance(value, dict):
        name = value.get(_TYPE_KEY)
        cls = _TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ReplyCodecError(f"unknown stored reply type {name!r}")
        return cls(**{k: _decode(v) for k, v in value.items() if k != _TYPE_KEY})
    return value
