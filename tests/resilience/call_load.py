"""A sustained call load on a FastAGI worker, acting as Asterisk; one JSON line per ended call.

Run as its own process (by ``serve_harness.CallLoad`` and ``bench/soak.py``), so the callers and
the worker share no reactor, no GIL and no fate: the worker can be killed while calls are up.

Each call is a carer of the synthetic directory (``serve_harness.seed_directory``) punching from
their own client's landline, the shared number for company 042 (company code then carer code)
and the dedicated number for 117. What the carer does after keying varies, as on a real line:
half listen to the end, a quarter hang up as soon as the readback is over, a quarter hang up at
a random moment (cutting some readbacks short). Prompts last as long as the real sound files,
divided by ``--speed``.

The line printed for a call says what the carer HEARD: ``heard`` is ``arrival`` or
``departure`` when the readback prompt started playing on the caller's line, whatever came
after. That is the promise checked at the end: a carer who heard it must have that punch.
Times are wall-clock (epoch seconds) so a test can tell which calls fell in an outage.
``keys_lost`` counts keys typed while the server was reading none (a loaded machine): a code
that failed for that reason says nothing about the database.

SIGUSR1 stops placing new calls; the last line (``{"event": "done", "placed": N}``) comes once
the calls in progress have ended. A test places "enough" calls and stops when its scenario is
over, whatever the machine's speed.

    python call_load.py --port 4573 --rate 20 --count 200 --per-company 40 --prefix t1
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from pathlib import Path

from ivr.asterisk_sim import (
    CallRecord,
    HangUp,
    KeyPace,
    SimulatedCall,
    WaitForInput,
    WaitForPrompt,
    accelerated,
    parse_keys,
    place_call,
)
from ivr.prompt_catalogue import prompt_durations, sound_path
from ivr.prompt_ids import ARRIVAL_RECORDED, DEPARTURE_RECORDED, PRESS_2_TO_CORRECT

ROOT = Path(__file__).resolve().parents[2]
SHARED = "0800123456"
DEDICATED = "0800117117"
READBACKS = {ARRIVAL_RECORDED: "arrival", DEPARTURE_RECORDED: "departure"}


def carer_code(index: int) -> str:
    return f"{10000 + index:05d}"


def landline(company: int, index: int) -> str:
    """A valid Paris number, distinct per company (0: 042, 1: 117) and index."""
    return f"01{4 + company}{index:07d}"


def build_call(n: int, rng: random.Random, per_company: int, prefix: str, speed: float) -> tuple:
    durations = _durations()
    company = n % 2
    index = rng.randrange(per_company)
    keys = carer_code(index) if company else f"042 {carer_code(index)}"
    wait = rng.random() < 0.5
    script: list = []
    for group in keys.split():
        script += [WaitForInput(after_prompt=wait), *parse_keys(group)]
    behaviour = rng.random()
    hang_up_after = None
    if behaviour < 0.25:
        script += [WaitForPrompt(sound_path(PRESS_2_TO_CORRECT)), HangUp()]
        style = "hangs_up_after_readback"
    elif behaviour < 0.5:
        hang_up_after = rng.uniform(3.0, 22.0)
        style = "hangs_up_anytime"
    else:
        style = "listens_to_the_end"
    call = SimulatedCall(
        called=DEDICATED if company else SHARED,
        caller=landline(company, index),
        script=tuple(script),
        hang_up_after=hang_up_after,
        durations=durations,
        pace=KeyPace(tone=0.12, gap=rng.uniform(0.18, 0.48)),
        uniqueid=f"{prefix}.{n}",
        # Close the session 5 s after a hang-up the server has not acted on (the default 30 s
        # would hide for that long the calls a stalled worker keeps open).
        max_linger_after_hangup=5.0,
    )
    meta = {"company": "117" if company else "042", "carer": index, "style": style}
    return accelerated(call, speed), meta


_DURATIONS: dict[str, float] = {}


def _durations() -> dict[str, float]:
    if not _DURATIONS:
        sounds = ROOT / "asterisk_conf" / "sounds"
        _DURATIONS.update({sound_path(p): s for p, s in prompt_durations(sounds, "fr").items()})
    return _DURATIONS


def heard_readback(record: CallRecord) -> str | None:
    """``arrival``/``departure`` if that readback started playing on the line, else None."""
    heard = None
    for sound in record.prompts:
        kind = READBACKS.get(sound.rsplit("/", 1)[-1])
        if kind is not None:
            heard = kind
    return heard


def summary(record: CallRecord, meta: dict) -> dict:
    start = record.started_at
    return {
        "uid": record.uniqueid,
        "heard": heard_readback(record),
        "status": record.variables.get("TELEGESTION_STATUS"),
        "connected": record.connected,
        "answered": record.answered,
        "agistatus": record.agistatus,
        "hung_up_by": record.hung_up_by,
        "server_closed": record.server_closed,
        "t_start": start,
        "t_answer": None if record.answered_at is None else start + record.answered_at,
        "t_end": start + record.ended_at,
        # The call is over for the carer at the hang-up; the FastAGI session may outlive it.
        "t_hangup": start
        + (record.hung_up_at if record.hung_up_at is not None else record.ended_at),
        "talk_s": record.talk_seconds,
        "prompts": [p.rsplit("/", 1)[-1] for p in record.prompts],
        "keys_lost": len(record.keys_lost),
        "error": record.error,
        **meta,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=10.0, help="new calls per second")
    parser.add_argument("--count", type=int, help="calls to place (default: rate x duration)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--per-company", type=int, default=40)
    parser.add_argument("--prefix", default="load", help="uniqueid prefix, unique per run")
    parser.add_argument("--speed", type=float, default=1.0, help="divide caller-side times")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    # Imported here: the test process imports this module for its directory helpers and must
    # not get a reactor installed by doing so.
    from twisted.internet import reactor

    count = args.count if args.count is not None else int(args.rate * args.duration)
    rng = random.Random(args.seed)
    calls = [build_call(n, rng, args.per_company, args.prefix, args.speed) for n in range(count)]
    remaining = {"calls": count}
    pending: list = []
    started = time.monotonic()

    def emit(line: dict) -> None:
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    def maybe_done() -> None:
        if remaining["calls"] == 0:
            placed = count - sum(1 for d in pending if d.cancelled)
            elapsed = round(time.monotonic() - started, 2)
            emit({"event": "done", "placed": placed, "elapsed_s": elapsed})
            reactor.stop()

    def launch(n: int) -> None:
        call, meta = calls[n]

        def ended(record: object) -> None:
            if isinstance(record, CallRecord):
                emit(summary(record, meta))
            else:  # pragma: no cover - place_call turns failures into records
                emit({"uid": call.uniqueid, "heard": None, "error": str(record), **meta})
            remaining["calls"] -= 1
            maybe_done()

        place_call(reactor, args.host, args.port, call, connect_timeout=2.0).addBoth(ended)

    def schedule() -> None:
        pending.extend(reactor.callLater(n / args.rate, launch, n) for n in range(count))
        maybe_done()

    def stop_placing() -> None:
        """SIGUSR1: place no new call; end once the calls in progress have."""
        for delayed in pending:
            if delayed.active():
                delayed.cancel()
                remaining["calls"] -= 1
        maybe_done()

    signal.signal(signal.SIGTERM, lambda *_: reactor.callFromThread(reactor.stop))
    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(stop_placing))
    reactor.callWhenRunning(schedule)
    reactor.run()


if __name__ == "__main__":
    main()
