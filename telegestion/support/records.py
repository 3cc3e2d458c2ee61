"""What support staff see of one call: the call row, its journal, its punches and a diagnosis.

Plain frozen data, built by ``telegestion.support.trace`` from the database and read by the
command line, the pages and the ticket: none of them needs a session to show a call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class JournalEvent:
    """One row of ``call_events``: ``kind`` is prompt/input/lookup/punch/error/hangup."""

    seq: int
    at: dt.datetime
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class AnomalyRef:
    """An anomaly raised about a punch of the call (or the visit it belongs to)."""

    anomaly_id: int
    code: str
    status: str
    severity: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    about: str = "punch"
    """``punch`` when raised about this very punch, ``visit`` when about its visit (a late
    arrival shown on the departure's call)."""


@dataclass(frozen=True)
class PunchLine:
    """A punch the call made, as it stands now (a correction with key 2 shows in
    ``original_kind``; an absence report in ``status``)."""

    punch_id: int
    kind: str
    original_kind: str | None
    at: dt.datetime
    local_time: str
    """``HH:MM`` in the company's time zone: what the carer heard at the readback."""
    status: str
    source: str
    location_verified: bool
    caller_withheld: bool
    client_ref: str | None
    client_name: str | None
    task_codes: str | None
    anomalies: tuple[AnomalyRef, ...] = ()


@dataclass(frozen=True)
class CallTrace:
    """One call of the journal with what support needs to answer a ticket about it.

    ``events_loaded`` is False for the rows of :func:`telegestion.support.trace.search_calls`,
    which leave ``events``, ``punches`` and ``diagnosis`` empty for speed; ``call_trace`` gives
    the full one.
    """

    call_id: int
    origin: str
    call_key: str
    transport: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    called_raw: str | None
    called_e164: str | None
    caller_raw: str | None
    caller_e164: str | None
    caller_presentation: str | None
    company_id: int | None
    company_code: str | None
    company_name: str | None
    company_timezone: str | None
    company_code_keyed: str | None
    carer_code_keyed: str | None
    carer_ref: str | None
    carer_name: str | None
    client_ref: str | None
    client_name: str | None
    outcome: str | None
    hangup_step: str | None
    events: tuple[JournalEvent, ...] = ()
    punches: tuple[PunchLine, ...] = ()
    diagnosis: tuple[str, ...] = ()
    events_loaded: bool = True

    @property
    def timezone(self) -> str:
        """The zone to show this call's times in: the company's, else UTC."""
        return self.company_timezone or "UTC"

    @property
    def reference(self) -> str:
        """The call's unique reference in the journal: origin and call key."""
        return f"{self.origin}/{self.call_key}"
