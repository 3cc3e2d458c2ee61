"""One call's journal as it happens, carried by the transport from effect to effect.

Kept apart from the database layer so that a transport can build it before SQLAlchemy is even
imported (the classic AGI script answers the call while its database layer is still loading).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable
from typing import Any

from telegestion.phones import to_e164

Clock = Callable[[], dt.datetime]

#: What a store's ``answer_from_memory`` returns when only the database can answer.
NOT_IN_MEMORY = object()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclasses.dataclass
class CallRecord:
    """Written with the punch and when the call ends; no call state lives anywhere else."""

    origin: str
    call_key: str
    transport: str
    called_raw: str
    caller_raw: str
    caller_presentation: str | None
    started_at: dt.datetime
    default_region: str = "FR"
    company_id: int | None = None
    call_id: int | None = None
    events: list[tuple[dt.datetime, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    written_events: int = 0
    #: events already in the call row before this record first wrote (a replayed call)
    seq_base: int = 0
    company_code_keyed: str | None = None
    carer_code_keyed: str | None = None

    @functools.cached_property
    def caller_e164(self) -> str | None:
        return to_e164(self.caller_raw, self.default_region)

    @functools.cached_property
    def called_e164(self) -> str | None:
        return to_e164(self.called_raw, self.default_region)

    def add(self, at: dt.datetime, kind: str, detail: dict[str, Any]) -> None:
        self.events.append((at, kind, detail))
