"""What each Twilio webhook does (SPEC.md section 4), once its signature has been checked.

- ``incoming``: a carer calls the call-back number. The call is always rejected as busy (the
  carer pays nothing); a call-back is recorded only for a registered, active carer mobile, at
  most one per mobile per two minutes, and placed a few seconds later by any worker
  (``callback.placement``). Anything else gets nothing dialled: no toll fraud through us.
- ``flow``: the call-back call speaks. Its first request (once answered, with ``AnsweredBy``)
  starts the flow; each gather posts back to ``flow?s=N``, ``N`` being the reply the gather
  waits at. An answering machine gets a hang-up and a journal entry.
- ``status``: Twilio's final word on a call-back call. ``no-answer``, ``busy`` and ``failed``
  are journaled and retried once; ``completed`` while the flow still waits on the carer is the
  carer hanging up, given to the flow like any hang-up.

Idempotency: every webhook is named within its call (``start``, ``g<N>``, ``status:<status>``)
and its answer stored with the flow's new replies in one transaction; the same webhook again
gets the stored answer and changes nothing, whichever worker it reaches. The webhooks of one
call are served one at a time (``CallbackStore.acquire``); one that finds the call busy is
answered ``busy`` for the web layer to try again shortly.

Synchronous (database work): the web layer runs these on worker threads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence

from callback import twiml
from callback.config import FLOW_PATH, CallbackConfig
from callback.store import CallbackStore, CallState, RequestView
from callback.turn import Keyed, play_turn
from ivr.call_store import CallRecord, CallStore
from ivr.callback_flow import CallbackSettings
from ivr.flow_driver import ScriptedReply
from telegestion.phones import is_withheld, to_e164

log = logging.getLogger(__name__)

ORIGIN = "twilio"
"""The journal's and the punches' origin for Twilio calls; the call key is the ``CallSid``."""
REJECTED_ORIGIN = "twilio-rejected"
"""Origin of the journal rows of refused webhooks (bad signature): kept apart so that a forged
request can never write into a real call's journal."""

TWIML_TYPE = "text/xml; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
RETRIED_STATUSES = frozenset({"no-answer", "busy", "failed"})
ENDED_STATUSES = frozenset({"completed", "no-answer", "busy", "failed", "canceled"})


@dataclasses.dataclass(frozen=True)
class WebAnswer:
    """The HTTP answer to a webhook, and what the worker must schedule after it.

    ``dispatch_at``: a call-back became due then (place it). ``busy``: another worker is
    serving this call right now; ask again shortly.
    """

    status: int
    body: str
    content_type: str = TWIML_TYPE
    dispatch_at: dt.datetime | None = None
    busy: bool = False


def bad_request(message: str) -> WebAnswer:
    return WebAnswer(400, message + "\n", TEXT_TYPE)


class CallbackWebhooks:
    """The three webhooks over one database; one instance per worker, shared by threads."""

    def __init__(
        self,
        config: CallbackConfig,
        call_store: CallStore,
        store: CallbackStore,
        *,
        clock: Callable[[], dt.datetime],
        flow_settings: CallbackSettings | None = None,
        default_language: str = "fr",
    ) -> None:
        self.config = config
        self.call_store = call_store
        self.store = store
        self.clock = clock
        self.flow_settings = flow_settings or CallbackSettings()
        self.default_language = default_language

    # --- incoming: the carer calls the call-back number -----------------------------------------

    def incoming(self, form: Mapping[str, str]) -> WebAnswer:
        call_sid = form.get("CallSid", "").strip()
        if not call_sid:
            return bad_request("CallSid is missing")
        reject = WebAnswer(200, twiml.reject_busy())
        now = self.clock()
        region = self.config.default_region
        record = CallRecord(
            origin=ORIGIN,
            call_key=call_sid,
            transport="twilio",
            called_raw=form.get("To", ""),
            caller_raw=form.get("From", ""),
            caller_presentation=None,
            started_at=now,
            default_region=region,
        )

        def refuse(**detail: object) -> WebAnswer:
            record.add(now, "hangup", {"by": "server", "reason": "rejected_no_callback", **detail})
            self.call_store.write_journal(record, ended_at=now)
            return reject

        called = to_e164(record.called_raw, region)
        number = self.store.callback_number(called) if called is not None else None
        record.add(
            now,
            "lookup",
            {"what": "called_number", "called_raw": record.called_raw, "found": number is not None},
        )
        if number is None:
            log.warning("incoming call to %r: not one of our call-back numbers", record.called_raw)
            return refuse()
        record.company_id = number.company_id
        mobile = None if is_withheld(record.caller_raw) else to_e164(record.caller_raw, region)
        carers = self.store.mobile_carers(mobile, number.company_id) if mobile else []
        record.add(
            now,
            "lookup",
            {
                "what": "carer_mobile",
                "found": bool(carers),
                "withheld": mobile is None,
                "carer_ids": [c.carer_id for c in carers],
            },
        )
        if mobile is None or not carers:
            return refuse()
        companies = {c.company_id for c in carers}
        if record.company_id is None and len(companies) == 1:
            record.company_id = next(iter(companies))
        languages = {c.language for c in carers}
        if len(languages) == 1:
            language = languages.pop()
        else:
            language = number.company_language or self.default_language
        granted = self.store.grant(
            incoming_call_sid=call_sid,
            mobile_e164=mobile,
            callback_number_e164=number.number_e164,
            company_id=number.company_id,
            language=language,
            now=now,
            delay=dt.timedelta(seconds=self.config.delay_s),
            window=dt.timedelta(seconds=self.config.rate_window_s),
        )
        if granted.grant == "duplicate":
            return reject  # Twilio sent this webhook again: it was handled and journaled once
        record.add(
            now,
            "lookup",
            {
                "what": "callback_request",
                "granted": granted.grant == "created",
                "reason": granted.grant,
                "request_id": granted.request_id,
                "due_at": granted.due_at.isoformat() if granted.due_at else None,
            },
        )
        if granted.grant != "created":
            return refuse()
        record.add(now, "hangup", {"by": "server", "reason": "rejected_for_callback"})
        self.call_store.write_journal(record, ended_at=now)
        return dataclasses.replace(reject, dispatch_at=granted.due_at)

    # --- flow: the call-back call speaks ----------------------------------------------------------

    def flow(self, form: Mapping[str, str], query: Mapping[str, str]) -> WebAnswer:
        call_sid = form.get("CallSid", "").strip()
        if not call_sid:
            return bad_request("CallSid is missing")
        hung_up = form.get("CallStatus", "") in ENDED_STATUSES
        if "s" not in query:
            return self._start(call_sid, form, query)
        try:
            waiting_at = int(query["s"])
        except ValueError:
            return bad_request("s must be a number")
        # Without a hang-up, no Digits is a timeout (actionOnEmptyResult); with one, keys that
        # came with it still count.
        digits = form.get("Digits", "")
        keyed = Keyed(digits, form.get("FinishedOnKey", "")) if digits or not hung_up else None
        return self._turn(
            call_sid, f"g{waiting_at}", keyed=keyed, hung_up=hung_up, waiting_at=waiting_at
        )

    def _start(self, call_sid: str, form: Mapping[str, str], query: Mapping[str, str]) -> WebAnswer:
        try:
            request_id, attempt = int(query["r"]), int(query["a"])
        except (KeyError, ValueError):
            return bad_request("r and a must name the call-back request and attempt")
        now = self.clock()
        request = self.store.request(request_id)
        if request is None:
            log.error("call %s: unknown call-back request %s", call_sid, request_id)
            return WebAnswer(200, twiml.hangup())
        answered_by = form.get("AnsweredBy", "")
        if answered_by.startswith("machine") or answered_by == "fax":
            response = twiml.hangup()
            if self.store.answer_once(call_sid, "start", response, now):
                self.store.open_call(call_sid, request, attempt, now, ended=True)
                self.store.set_status(request_id, "machine", now, form.get("CallStatus"))
                record = self._record(call_sid, request, now)
                record.add(
                    now,
                    "hangup",
                    {"by": "server", "reason": "answering_machine", "answered_by": answered_by},
                )
                self.call_store.write_journal(record, ended_at=now)
            return WebAnswer(200, self.store.answer_of(call_sid, "start") or response)
        self.store.open_call(call_sid, request, attempt, now, ended=False)
        self.store.set_status(request_id, "answered", now, form.get("CallStatus"))
        return self._turn(call_sid, "start", keyed=None, hung_up=False, waiting_at=None)

    def _turn(
        self,
        call_sid: str,
        step: str,
        *,
        keyed: Keyed | None,
        hung_up: bool,
        waiting_at: int | None,
    ) -> WebAnswer:
        """Serve one webhook of a call under the call's lease, exactly once."""
        token = uuid.uuid4().hex
        now = self.clock()
        if not self.store.acquire(call_sid, token, now, dt.timedelta(seconds=self.config.lease_s)):
            done = self.store.answer_of(call_sid, step)
            if done is not None:
                return WebAnswer(200, done)
            if self.store.call_state(call_sid) is None:
                log.error("webhook %s for unknown call-back call %s", step, call_sid)
                return WebAnswer(200, twiml.hangup())
            return WebAnswer(503, "call busy, try again\n", TEXT_TYPE, busy=True)
        saved = False
        try:
            done = self.store.answer_of(call_sid, step)
            if done is not None:
                return WebAnswer(200, done)  # a webhook Twilio sent twice: same answer
            state = self.store.call_state(call_sid)
            assert state is not None  # the lease exists only on an existing row
            if state.ended or (waiting_at is not None and len(state.replies) != waiting_at):
                # Over already (the status callback said so first), or not the gather the call
                # waits on: nothing of the flow to run.
                if not state.ended:
                    log.error(
                        "call %s: webhook for the gather at %s, the call waits at %s",
                        call_sid,
                        waiting_at,
                        len(state.replies),
                    )
                response = twiml.hangup()
                saved = self._save(call_sid, token, step, response, state, state.replies, now)
                return WebAnswer(200, response)
            record = self._record(call_sid, state, now)
            turn = play_turn(
                state,
                self.call_store,
                record,
                keyed=keyed,
                hung_up=hung_up,
                action_url=lambda n: self.config.url(FLOW_PATH, s=n),
                clock=self.clock,
                settings=self.flow_settings,
            )
            if turn.summary is not None:
                self.call_store.finish(record, turn.summary)
            else:
                self.call_store.write_journal(record)
            saved = self._save(
                call_sid, token, step, turn.twiml, state, turn.replies, now, ended=turn.ended
            )
            return WebAnswer(200, turn.twiml)
        finally:
            if not saved:
                self.store.release(call_sid, token)

    def _save(
        self,
        call_sid: str,
        token: str,
        step: str,
        response: str,
        state: CallState,
        replies: Sequence[ScriptedReply],
        now: dt.datetime,
        *,
        ended: bool | None = None,
    ) -> bool:
        saved = self.store.save_turn(
            call_sid,
            token,
            step=step,
            response=response,
            replies=replies,
            ended=state.ended if ended is None else ended,
            now=now,
        )
        if not saved:
            log.error("call %s: lease lost before %s was saved", call_sid, step)
        return saved

    # --- status: Twilio's final word on a call-back call -------------------------------------

    def status(self, form: Mapping[str, str], query: Mapping[str, str]) -> WebAnswer:
        call_sid = form.get("CallSid", "").strip()
        if not call_sid:
            return bad_request("CallSid is missing")
        call_status = form.get("CallStatus", "").strip()
        answered_by = form.get("AnsweredBy", "")
        done = WebAnswer(200, twiml.empty())
        if call_status not in ENDED_STATUSES:
            return done  # progress events carry nothing we act on
        try:
            request_id: int | None = int(query["r"])
            attempt = int(query["a"])
        except (KeyError, ValueError):
            request_id, attempt = None, 0
        now = self.clock()
        step = f"status:{call_status}"
        if call_status == "completed":
            state = self.store.call_state(call_sid)
            if state is not None and not state.ended:
                # The carer hung up while the flow waited on them.
                answer = self._turn(call_sid, step, keyed=None, hung_up=True, waiting_at=None)
                return answer if answer.busy else done
            if state is None and self.store.answer_once(call_sid, step, done.body, now):
                request = self.store.request(request_id) if request_id is not None else None
                if request is not None:
                    self.store.set_status(request.request_id, "answered", now, call_status)
                    record = self._record(call_sid, request, now)
                    record.add(
                        now,
                        "hangup",
                        {"call_status": call_status, "answered_by": answered_by or None},
                    )
                    self.call_store.write_journal(record, ended_at=now)
            return done
        if not self.store.answer_once(call_sid, step, done.body, now):
            return done  # Twilio sent this status twice
        request = self.store.request(request_id) if request_id is not None else None
        if request is None:
            log.error("status %s for call %s of no known call-back", call_status, call_sid)
            return done
        retry_at = None
        if call_status in RETRIED_STATUSES:
            retry_at = self.store.attempt_failed(
                request.request_id,
                attempt,
                why=f"call {call_status}",
                call_status=call_status,
                now=now,
                retry_at=now + dt.timedelta(seconds=self.config.retry_s),
                max_attempts=self.config.max_attempts,
            )
        record = self._record(call_sid, request, now)
        record.add(
            now,
            "hangup",
            {
                "call_status": call_status,
                "attempt": attempt,
                "retry_at": retry_at.isoformat() if retry_at else None,
            },
        )
        self.call_store.write_journal(record, ended_at=now)
        return dataclasses.replace(done, dispatch_at=retry_at)

    # --- refused webhooks ---------------------------------------------------------------------

    def rejected(self, path: str, form: Mapping[str, str], reason: str, remote: str) -> None:
        """Journal a webhook refused before anything else happened (bad signature)."""
        now = self.clock()
        record = CallRecord(
            origin=REJECTED_ORIGIN,
            call_key=uuid.uuid4().hex,
            transport="twilio",
            called_raw=form.get("To", "")[:64],
            caller_raw=form.get("From", "")[:64],
            caller_presentation=None,
            started_at=now,
            default_region=self.config.default_region,
        )
        record.add(
            now,
            "error",
            {
                "error": reason,
                "path": path,
                "call_sid": form.get("CallSid", "")[:64] or None,
                "remote": remote,
            },
        )
        self.call_store.write_journal(record, ended_at=now)

    # --- plumbing -------------------------------------------------------------------------------

    def _record(self, call_sid: str, of: CallState | RequestView, now: dt.datetime) -> CallRecord:
        """The journal of a call-back call: called is the call-back number the carer dialled,
        caller the carer's mobile, as for the punches."""
        if isinstance(of, CallState):
            callback_number, mobile = of.start.callback_number_raw, of.start.mobile_raw
            company_id = of.start.company_id
        else:
            callback_number, mobile = of.callback_number_e164, of.mobile_e164
            company_id = of.company_id
        return CallRecord(
            origin=ORIGIN,
            call_key=call_sid,
            transport="twilio",
            called_raw=callback_number,
            caller_raw=mobile,
            caller_presentation=None,
            started_at=now,
            default_region=self.config.default_region,
            company_id=company_id,
        )
