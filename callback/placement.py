"""Placing the call-backs that are due, whichever worker recorded them.

A call-back waits in the database (``callback_requests``) until it is due: a few seconds after
the carer's call, or a minute after an attempt that went unanswered. Any worker that looks
(after its own delay, or on its regular poll) claims the due ones, places each call with the
dialer and records the answer, so a delay or a retry survives the death of the worker that
scheduled it. Each placement, and each refusal by Twilio, goes to the journal of the carer's
incoming call.

Synchronous (database and REST): run it on a worker thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from callback.config import FLOW_PATH, STATUS_PATH, CallbackConfig
from callback.dialer import Dialer
from callback.store import CallbackStore
from callback.webhooks import ORIGIN
from ivr.call_store import CallRecord, CallStore

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Placed:
    """What one look at the due call-backs did: calls placed, and retries now scheduled."""

    placed: tuple[str, ...]
    retries_at: tuple[dt.datetime, ...]


def place_due_callbacks(
    config: CallbackConfig,
    store: CallbackStore,
    call_store: CallStore,
    dialer: Dialer,
    clock: Callable[[], dt.datetime],
) -> Placed:
    now = clock()
    claimed = store.claim_due(
        now, lease=dt.timedelta(seconds=config.lease_s), max_attempts=config.max_attempts
    )
    placed: list[str] = []
    retries: list[dt.datetime] = []
    for request in claimed:
        attempt = request.attempts
        record = CallRecord(
            origin=ORIGIN,
            call_key=request.incoming_call_sid,
            transport="twilio",
            called_raw=request.callback_number_e164,
            caller_raw=request.mobile_e164,
            caller_presentation=None,
            started_at=now,
            default_region=config.default_region,
            company_id=request.company_id,
        )
        query = {"r": request.request_id, "a": attempt}
        try:
            call_sid = dialer.place(
                to=request.mobile_e164,
                from_=request.callback_number_e164,
                url=config.url(FLOW_PATH, **query),
                status_callback=config.url(STATUS_PATH, **query),
            )
        except Exception as exc:  # Twilio refused, or could not be reached
            log.warning("call-back %s attempt %s not placed: %s", request.request_id, attempt, exc)
            retry_at = store.attempt_failed(
                request.request_id,
                attempt,
                why=f"not placed: {exc}",
                call_status=None,
                now=clock(),
                retry_at=clock() + dt.timedelta(seconds=config.retry_s),
                max_attempts=config.max_attempts,
            )
            if retry_at is not None:
                retries.append(retry_at)
            record.add(
                clock(),
                "error",
                {
                    "what": "callback_call",
                    "attempt": attempt,
                    "error": str(exc)[:200],
                    "retry_at": retry_at.isoformat() if retry_at else None,
                },
            )
        else:
            store.placed(request.request_id, attempt, call_sid, clock())
            placed.append(call_sid)
            record.add(
                clock(),
                "lookup",
                {"what": "callback_call", "attempt": attempt, "placed": True, "call_sid": call_sid},
            )
        call_store.write_journal(record)
    return Placed(tuple(placed), tuple(retries))
