"""The call pages' reading of the journal: the support data layer, scoped to the viewer.

Searching, tracing and the diagnosis live in :mod:`telegestion.support`, shared with
``telegestion trace``; this module turns a query string into its arguments and passes the
viewer's companies, so a page shows exactly what the visibility rule there allows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from ..localtime import LocalTimeError, parse_instant
from ..support.records import CallTrace
from ..support.ticket import ticket_text
from ..support.trace import call_trace, search_calls
from .accounts import Viewer

PAGE_SIZE = 50


@dataclass(frozen=True)
class CallSearch:
    caller: str
    called: str
    start: str
    end: str
    timezone: str
    page: int
    rows: tuple[CallTrace, ...] = ()
    more: bool = False
    problems: tuple[str, ...] = field(default=())


def _timezone(viewer: Viewer) -> str:
    return viewer.companies[0].timezone if viewer.companies else "UTC"


def search(
    session: Session, viewer: Viewer, query: dict[str, str], region: str = "FR"
) -> CallSearch:
    """A page of the journal; the time window is read in the viewer's (first) company's zone."""
    timezone = _timezone(viewer)
    problems: list[str] = []

    def instant(name: str) -> dt.datetime | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        try:
            return parse_instant(raw, timezone)
        except LocalTimeError as exc:
            problems.append(f"{name}: {exc}; ignored")
            return None

    try:
        page = max(1, min(int(query.get("page", "1")), 10_000))
    except ValueError:
        page = 1
    caller = query.get("caller", "").strip()[:40]
    called = query.get("called", "").strip()[:40]
    rows = search_calls(
        session,
        caller=caller or None,
        called=called or None,
        start=instant("from"),
        end=instant("to"),
        company_ids=viewer.company_ids,
        limit=PAGE_SIZE + 1,
        offset=(page - 1) * PAGE_SIZE,
        region=region,
    )
    return CallSearch(
        caller=caller,
        called=called,
        start=query.get("from", "")[:20],
        end=query.get("to", "")[:20],
        timezone=timezone,
        page=page,
        rows=tuple(rows[:PAGE_SIZE]),
        more=len(rows) > PAGE_SIZE,
        problems=tuple(problems),
    )


def trace(session: Session, viewer: Viewer, call_id: int) -> CallTrace | None:
    """One call in full, or None when it is missing or not the viewer's."""
    return call_trace(session, call_id, viewer.company_ids)


def ticket(found: CallTrace) -> str:
    return ticket_text(found)
