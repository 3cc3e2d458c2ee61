"""The call-back's rows: requests to place, the rate limit, calls by ``CallSid``, answered
webhooks (``telegestion.model.callback``).

Every decision two workers could take at once is one conditional ``UPDATE`` or one unique
insert, so it holds on SQLite and on PostgreSQL alike without locks held across requests:

- granting a call-back: the mobile's rate-limit row is read ``FOR UPDATE`` and the request is
  unique by the incoming ``CallSid``, so a replayed incoming webhook or two calls from one mobile
  at once give one call-back;
- placing it: a worker claims a due request by moving it from ``pending`` to ``dialling``;
- serving a webhook: a worker takes the call's lease, checks that this webhook was not already
  answered, and stores the new replies and the answer together while still holding the lease.

Methods are synchronous, one short transaction each: callers run them on a worker thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from callback.reply_codec import decode_replies, encode_replies
from ivr.effects import CallbackStart
from ivr.flow_driver import ScriptedReply
from telegestion.model import (
    CallbackCall,
    CallbackMobile,
    CallbackRequest,
    CallbackWebhook,
    Carer,
    Company,
    ServiceNumber,
)

log = logging.getLogger(__name__)

Grant = Literal["created", "duplicate", "rate_limited"]


@dataclasses.dataclass(frozen=True)
class Granted:
    """What became of an incoming call: a new request, one already made for this very
    incoming call (a replayed webhook), or a refusal by the rate limit."""

    grant: Grant
    request_id: int | None = None
    due_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class CallbackNumber:
    """A call-back number of ours; ``company_id`` when it serves one company only."""

    number_e164: str
    company_id: int | None
    company_language: str | None


@dataclasses.dataclass(frozen=True)
class MobileCarer:
    """An active carer who owns the calling mobile, with their company's language."""

    carer_id: int
    company_id: int
    language: str


@dataclasses.dataclass(frozen=True)
class RequestView:
    """A call-back request as the web layer needs it."""

    request_id: int
    incoming_call_sid: str
    mobile_e164: str
    callback_number_e164: str
    company_id: int | None
    language: str
    status: str
    attempts: int
    outbound_call_sid: str | None


@dataclasses.dataclass(frozen=True)
class CallState:
    """One outbound call-back call: how to start its flow and the replies so far."""

    call_sid: str
    request_id: int
    attempt: int
    start: CallbackStart
    replies: tuple[ScriptedReply, ...]
    ended: bool


class CallbackStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # --- the directory, as the incoming webhook needs it --------------------------------------

    def callback_number(self, number_e164: str) -> CallbackNumber | None:
        """Our call-back number of that E.164, if it is one (kind ``callback``)."""
        with self.sessions() as session:
            row = session.execute(
                select(ServiceNumber.company_id, Company.language)
                .outerjoin(Company, Company.id == ServiceNumber.company_id)
                .where(ServiceNumber.number_e164 == number_e164, ServiceNumber.kind == "callback")
            ).first()
        if row is None:
            return None
        return CallbackNumber(number_e164, row.company_id, row.language)

    def mobile_carers(self, mobile_e164: str, company_id: int | None) -> list[MobileCarer]:
        """The active carers registered with this mobile (of one company, if given)."""
        query = (
            select(Carer.id, Carer.company_id, Company.language)
            .join(Company, Company.id == Carer.company_id)
            .where(Carer.mobile_e164 == mobile_e164, Carer.active.is_(True))
            .order_by(Company.code)
        )
        if company_id is not None:
            query = query.where(Carer.company_id == company_id)
        with self.sessions() as session:
            return [MobileCarer(*row) for row in session.execute(query)]

    # --- requests -------------------------------------------------------------------------------

    def grant(
        self,
        *,
        incoming_call_sid: str,
        mobile_e164: str,
        callback_number_e164: str,
        company_id: int | None,
        language: str,
        now: dt.datetime,
        delay: dt.timedelta,
        window: dt.timedelta,
    ) -> Granted:
        """Record a call-back to place at ``now + delay``, unless this incoming call already has
        one or the mobile had one within ``window``."""
        try:
            with self.sessions() as session, session.begin():
                existing = self._request_for_incoming(session, incoming_call_sid)
                if existing is not None:
                    return Granted("duplicate", existing.id, existing.due_at)
                last = session.get(CallbackMobile, mobile_e164, with_for_update=True)
                if last is not None and last.last_request_at > now - window:
                    return Granted("rate_limited")
                if last is None:
                    session.add(CallbackMobile(mobile_e164=mobile_e164, last_request_at=now))
                else:
                    last.last_request_at = now
                request = CallbackRequest(
                    incoming_call_sid=incoming_call_sid,
                    mobile_e164=mobile_e164,
                    callback_number_e164=callback_number_e164,
                    company_id=company_id,
                    language=language,
                    status="pending",
                    attempts=0,
                    due_at=now + delay,
                    created_at=now,
                    updated_at=now,
                )
                session.add(request)
                session.flush()
                return Granted("created", request.id, request.due_at)
        except IntegrityError:
            # Another worker won a race: on this incoming call, or on this mobile.
            with self.sessions() as session:
                existing = self._request_for_incoming(session, incoming_call_sid)
            if existing is not None:
                return Granted("duplicate", existing.id, existing.due_at)
            return Granted("rate_limited")

    @staticmethod
    def _request_for_incoming(session: Session, incoming_call_sid: str) -> CallbackRequest | None:
        return session.scalars(
            select(CallbackRequest).where(CallbackRequest.incoming_call_sid == incoming_call_sid)
        ).first()

    def request(self, request_id: int) -> RequestView | None:
        with self.sessions() as session:
            row = session.get(CallbackRequest, request_id)
            return _view(row) if row is not None else None

    def claim_due(
        self, now: dt.datetime, *, lease: dt.timedelta, max_attempts: int, limit: int = 20
    ) -> list[RequestView]:
        """Claim the requests due now (and those a dead worker left half-placed), counting one
        attempt each; a request another worker claims first is skipped."""
        claimable = or_(
            and_(CallbackRequest.status == "pending", CallbackRequest.due_at <= now),
            and_(CallbackRequest.status == "dialling", CallbackRequest.claimed_until < now),
        )
        with self.sessions() as session, session.begin():
            session.execute(
                update(CallbackRequest)
                .where(claimable, CallbackRequest.attempts >= max_attempts)
                .values(status="failed", claimed_until=None, updated_at=now)
            )
            ids = session.scalars(
                select(CallbackRequest.id)
                .where(claimable)
                .order_by(CallbackRequest.due_at, CallbackRequest.id)
                .limit(limit)
            ).all()
        claimed: list[RequestView] = []
        for request_id in ids:
            with self.sessions() as session, session.begin():
                result = session.execute(
                    update(CallbackRequest)
                    .where(CallbackRequest.id == request_id, claimable)
                    .values(
                        status="dialling",
                        claimed_until=now + lease,
                        attempts=CallbackRequest.attempts + 1,
                        updated_at=now,
                    )
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    row = session.get(CallbackRequest, request_id)
                    assert row is not None
                    claimed.append(_view(row))
        return claimed

    def placed(self, request_id: int, attempt: int, call_sid: str, now: dt.datetime) -> None:
        """Twilio took the call. Its first webhook may already have moved the request on
        (Twilio can call the flow before the API answer arrives): then only keep the SID."""
        with self.sessions() as session, session.begin():
            row = session.get(CallbackRequest, request_id, with_for_update=True)
            if row is None or row.attempts != attempt:
                return
            row.outbound_call_sid = call_sid
            row.claimed_until = None
            row.updated_at = now
            if row.status == "dialling":
                row.status = "placed"

    def attempt_failed(
        self,
        request_id: int,
        attempt: int,
        *,
        why: str,
        call_status: str | None,
        now: dt.datetime,
        retry_at: dt.datetime | None,
        max_attempts: int,
    ) -> dt.datetime | None:
        """Retry a failed attempt at ``retry_at`` if attempts are left, else give up; returns
        when the retry is due, ``None`` when there is none. A report about an older attempt
        than the request's latest changes nothing."""
        with self.sessions() as session, session.begin():
            row = session.get(CallbackRequest, request_id, with_for_update=True)
            if row is None or row.attempts != attempt or row.status not in ("dialling", "placed"):
                return None
            row.last_error = why[:200]
            row.last_call_status = call_status
            row.claimed_until = None
            row.updated_at = now
            if retry_at is not None and attempt < max_attempts:
                row.status = "pending"
                row.due_at = retry_at
                return retry_at
            row.status = "failed"
            return None

    def set_status(
        self, request_id: int, status: str, now: dt.datetime, call_status: str | None = None
    ) -> None:
        with self.sessions() as session, session.begin():
            row = session.get(CallbackRequest, request_id)
            if row is None:
                return
            row.status = status
            row.updated_at = now
            if call_status is not None:
                row.last_call_status = call_status

    # --- calls, webhooks --------------------------------------------------------------------------

    def open_call(
        self, call_sid: str, request: RequestView, attempt: int, now: dt.datetime, ended: bool
    ) -> None:
        """Create the call's row on its first webhook; a second first webhook finds it."""
        try:
            with self.sessions() as session, session.begin():
                if session.scalar(select(CallbackCall.id).where(CallbackCall.call_sid == call_sid)):
                    return
                session.add(
                    CallbackCall(
                        call_sid=call_sid,
                        request_id=request.request_id,
                        attempt=attempt,
                        mobile_e164=request.mobile_e164,
                        callback_number_e164=request.callback_number_e164,
                        company_id=request.company_id,
                        language=request.language,
                        replies=[],
                        ended=ended,
                        started_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            log.info("call %s opened by another worker at the same time", call_sid)

    def acquire(self, call_sid: str, token: str, now: dt.datetime, lease: dt.timedelta) -> bool:
        """Take the call's lease: no other worker serves a webhook of this call meanwhile."""
        with self.sessions() as session, session.begin():
            result = session.execute(
                update(CallbackCall)
                .where(
                    CallbackCall.call_sid == call_sid,
                    or_(CallbackCall.busy_until.is_(None), CallbackCall.busy_until < now),
                )
                .values(busy_token=token, busy_until=now + lease)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, call_sid: str, token: str) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                update(CallbackCall)
                .where(CallbackCall.call_sid == call_sid, CallbackCall.busy_token == token)
                .values(busy_token=None, busy_until=None)
            )

    def call_state(self, call_sid: str) -> CallState | None:
        with self.sessions() as session:
            row = session.scalars(
                select(CallbackCall).where(CallbackCall.call_sid == call_sid)
            ).first()
            if row is None:
                return None
            return CallState(
                call_sid=row.call_sid,
                request_id=row.request_id,
                attempt=row.attempt,
                start=CallbackStart(
                    mobile_raw=row.mobile_e164,
                    callback_number_raw=row.callback_number_e164,
                    language=row.language,
                    company_id=row.company_id,
                ),
                replies=tuple(decode_replies(row.replies or [])),
                ended=row.ended,
            )

    def answer_of(self, call_sid: str, step: str) -> str | None:
        """The answer already sent to this webhook, if it was answered."""
        with self.sessions() as session:
            return session.scalar(
                select(CallbackWebhook.response).where(
                    CallbackWebhook.call_sid == call_sid, CallbackWebhook.step == step
                )
            )

    def save_turn(
        self,
        call_sid: str,
        token: str,
        *,
        step: str,
        response: str,
        replies: Sequence[ScriptedReply],
        ended: bool,
        now: dt.datetime,
    ) -> bool:
        """Store the replies and the answer of one webhook and give the lease back, all or
        nothing; ``False`` when the lease was lost meanwhile (nothing stored)."""
        with self.sessions() as session, session.begin():
            result = session.execute(
                update(CallbackCall)
                .where(CallbackCall.call_sid == call_sid, CallbackCall.busy_token == token)
                .values(
                    replies=encode_replies(replies),
                    ended=ended,
                    busy_token=None,
                    busy_until=None,
                    updated_at=now,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return False  # the update matched nothing: there is nothing to undo
            session.add(CallbackWebhook(call_sid=call_sid, step=step, response=response, at=now))
            return True

    def answer_once(self, call_sid: str, step: str, response: str, now: dt.datetime) -> bool:
        """Record a webhook that needs no lease (a status report); ``False`` if it was
        already answered, so the caller does its work only once."""
        try:
            with self.sessions() as session, session.begin():
                session.add(
                    CallbackWebhook(call_sid=call_sid, step=step, response=response, at=now)
                )
            return True
        except IntegrityError:
            return False


def _view(row: CallbackRequest) -> RequestView:
    return RequestView(
        request_id=row.id,
        incoming_call_sid=row.incoming_call_sid,
        mobile_e164=row.mobile_e164,
        callback_number_e164=row.callback_number_e164,
        company_id=row.company_id,
        language=row.language,
        status=row.status,
        attempts=row.attempts,
        outbound_call_sid=row.outbound_call_sid,
    )
