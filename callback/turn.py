"""One webhook's share of a call-back call: resume the flow, run it to the next gather.

Twilio holds the call; this server holds nothing between webhooks. Each webhook rebuilds the
flow from its stored replies (``ivr.flow_driver.resume_flow``), gives it what Twilio just
reported (the keys of the gather it was waiting on, or that the carer hung up), and runs it
until it needs the carer again: world effects go to the database (``ivr.call_store``), plays
pile up as ``<Say>``, and the next ``Gather`` ends the turn with the TwiML to send. The replies
of this turn are returned for the caller to store with its answer.

A hang-up follows the flow's rule (``ivr.effects``): keys that arrived with it are still given
to the flow and the world effects they lead to are completed (a PIN keyed just before hanging
up still punches), and the hang-up is thrown at the next channel effect.

Synchronous (database work): run it on a worker thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from callback import twiml
from callback.store import CallState
from ivr import effects as fx
from ivr.call_store import CallRecord, CallStore
from ivr.callback_flow import CallbackSettings, run_callback
from ivr.flow_driver import HANG_UP, ScriptedReply, resume_flow

log = logging.getLogger(__name__)

#: A flow that yields more than this in one turn without waiting for the carer is broken.
MAX_EFFECTS_PER_TURN = 500


@dataclasses.dataclass(frozen=True)
class Keyed:
    """What a gather's action webhook reported: ``Digits`` and ``FinishedOnKey``."""

    digits: str
    finished_on_key: str = ""

    def keys_for(self, gather: fx.Gather) -> fx.Keys:
        """The reply to ``gather``: Twilio ends a gather on ``#`` (not in ``Digits``), on its
        ``numDigits``, or on its timeout, and only the first two are not a timeout."""
        ended_by_key = self.finished_on_key == "#" or len(self.digits) >= gather.max_digits
        return fx.Keys(self.digits, timed_out=not ended_by_key)


@dataclasses.dataclass(frozen=True)
class Turn:
    """The answer to send and the call's replies after this turn; ``summary`` once it ended."""

    twiml: str
    replies: tuple[ScriptedReply, ...]
    ended: bool
    summary: fx.CallSummary | None


def play_turn(
    state: CallState,
    store: CallStore,
    record: CallRecord,
    *,
    keyed: Keyed | None,
    hung_up: bool,
    action_url: Callable[[int], str],
    clock: Callable[[], dt.datetime],
    settings: CallbackSettings | None = None,
) -> Turn:
    """Run the call from its stored replies to the next gather (or its end).

    ``action_url(n)`` is the URL the gather waiting at reply ``n`` posts to; ``n`` is how the
    next webhook proves which gather it answers.
    """
    resumed = resume_flow(run_callback(state.start, settings), state.replies)
    replies: list[ScriptedReply] = list(state.replies)
    if resumed.replayed.summary is not None or resumed.replayed.next_effect is None:
        return Turn(twiml.hangup(), tuple(replies), True, None)
    flow = resumed.flow
    effect: fx.Effect = resumed.replayed.next_effect
    plays: list[fx.Play] = []
    try:
        for _ in range(MAX_EFFECTS_PER_TURN):
            reply: fx.Reply
            if isinstance(effect, fx.Journal):
                record.add(clock(), effect.kind, dict(effect.detail))
                reply = None
            elif not fx.is_channel_effect(effect):
                reply = _world(store, effect, record, clock)
            elif isinstance(effect, fx.Gather) and keyed is not None:
                reply = keyed.keys_for(effect)
                keyed = None
            elif hung_up:
                record.add(clock(), "hangup", {"during": type(effect).__name__})
                replies.append(HANG_UP)
                effect = flow.throw(fx.CallerHungUp())
                continue
            elif isinstance(effect, fx.Gather):
                _journal_segments(record, effect.segments, clock)
                return Turn(
                    twiml.turn(plays, effect, action_url(len(replies))), tuple(replies), False, None
                )
            else:
                if isinstance(effect, fx.Play):
                    plays.append(effect)
                    _journal_segments(record, effect.segments, clock)
                reply = None  # Answer: Twilio answered before calling; Hangup: rendered last
            replies.append(reply)
            effect = flow.send(reply)
        raise RuntimeError(f"the flow ran {MAX_EFFECTS_PER_TURN} effects without a gather")
    except StopIteration as stop:
        return Turn(twiml.turn(plays, None, None), tuple(replies), True, stop.value)


def _world(
    store: CallStore, effect: fx.Effect, record: CallRecord, clock: Callable[[], dt.datetime]
) -> fx.Reply:
    try:
        return store.answer(effect, record)
    except Exception as exc:  # a bug or an unexpected row: end the call politely
        log.exception("world effect %s failed for call %s", type(effect).__name__, record.call_key)
        record.add(clock(), "error", {"effect": type(effect).__name__, "error": str(exc)[:200]})
        return fx.Failure(f"{type(effect).__name__}: {type(exc).__name__}")


def _journal_segments(
    record: CallRecord, segments: tuple[fx.Segment, ...], clock: Callable[[], dt.datetime]
) -> None:
    """Journal what the carer is told, in the landline transports' words."""
    for segment in segments:
        if isinstance(segment, fx.Prompt):
            detail: dict[str, object] = {"prompt": segment.prompt_id}
        elif isinstance(segment, fx.SayTime):
            detail = {"say_time": f"{segment.hour:02d}:{segment.minute:02d}"}
        else:
            choice = segment.choice
            detail = {
                "visit_choice": segment.key,
                "client_id": choice.client_id,
                "kind": choice.kind,
                "time": f"{choice.local_hour:02d}:{choice.local_minute:02d}",
            }
        record.add(clock(), "prompt", detail)
