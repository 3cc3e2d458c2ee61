"""Load generator for the FastAGI benchmark: behaves like Asterisk on the wire.

Places calls at a steady rate for a duration on a FastAGI server, each a simulated Asterisk
channel (``ivr.asterisk_sim``: the transcripts' env block and reply forms) whose prompts last
as long as the real sound files and whose carer keys a digit every 300-600 ms, half of them
waiting for each prompt, half typing over. Prints one JSON object with what it measured.

Run by ``bench/bench_fastagi.py``; usable alone:
    python bench/agi_loadgen.py --ports 4573 --rate 100 --duration 60 --per-company 3000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

from twisted.internet import reactor

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed_directory import DEDICATED, SHARED, carer_code, landline

from ivr.asterisk_sim import KeyPace, SimulatedCall, WaitForInput, parse_keys, place_call
from ivr.prompt_catalogue import prompt_durations, sound_path

ROOT = Path(__file__).resolve().parents[1]


def build_calls(count: int, per_company: int, seed: int) -> list[tuple[SimulatedCall, dict]]:
    rng = random.Random(seed)
    durations = {
        sound_path(p): s
        for p, s in prompt_durations(ROOT / "asterisk_conf" / "sounds", "fr").items()
    }
    calls = []
    for i in range(count):
        company = i % 2  # 0: shared (042), 1: dedicated (117)
        index = (i // 2) % per_company
        code = carer_code(index)
        keys = code if company else "042" + " " + code
        wait = rng.random() < 0.5
        script: list = []
        for group in keys.split():
            script += [WaitForInput(after_prompt=wait), *parse_keys(group)]
        pace = KeyPace(tone=0.12, gap=rng.uniform(0.18, 0.48))
        call = SimulatedCall(
            called=SHARED if company == 0 else DEDICATED,
            caller=landline(company, index),
            script=tuple(script),
            durations=durations,
            pace=pace,
            uniqueid=f"{1795500000 + i // 1000}.{i}",
        )
        calls.append((call, {"company": "042" if company == 0 else "117", "index": index}))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--ports", required=True, help="comma-separated worker ports; calls go round-robin"
    )
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--per-company", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    count = int(args.rate * args.duration)
    ports = [int(p) for p in args.ports.split(",")]
    calls = build_calls(count, args.per_company, args.seed)
    records: list = [None] * count
    in_progress = {"now": 0, "peak": 0}
    started = time.monotonic()
    lag: list[float] = []

    def launch(i: int) -> None:
        due = started + i / args.rate
        lag.append(time.monotonic() - due)
        in_progress["now"] += 1
        in_progress["peak"] = max(in_progress["peak"], in_progress["now"])

        def done(record: object) -> None:
            in_progress["now"] -= 1
            records[i] = record
            if all(r is not None for r in records):
                reactor.stop()

        port = ports[i % len(ports)]
        place_call(reactor, args.host, port, calls[i][0], connect_timeout=2.0).addBoth(done)

    def schedule() -> None:
        for i in range(count):
            reactor.callLater(i / args.rate, launch, i)

    reactor.callWhenRunning(schedule)
    reactor.run()
    elapsed = time.monotonic() - started

    turnaround: list[float] = []
    outcomes: dict[str, int] = {}
    talk: list[float] = []
    for record in records:
        status = record.variables.get("TELEGESTION_STATUS") if record.connected else "not_connected"
        outcomes[str(status)] = outcomes.get(str(status), 0) + 1
        if record.talk_seconds is not None:
            talk.append(record.talk_seconds)
        previous = None
        for entry in record.dialogue:
            # The server's time for a command: from the reply (or the env block) Asterisk sent
            # to the next command it received. Notices (HANGUP lines) start no wait.
            if entry.kind == "reply":
                previous = entry.at
            elif entry.kind == "command" and previous is not None:
                turnaround.append(entry.at - previous)
                previous = None
    turnaround.sort()
    talk.sort()

    def pct(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")

    print(
        json.dumps(
            {
                "calls": count,
                "elapsed_s": round(elapsed, 1),
                "outcomes": outcomes,
                "peak_in_progress": in_progress["peak"],
                "commands_measured": len(turnaround),
                "turnaround_ms": {
                    q: round(pct(turnaround, v) * 1000, 2)
                    for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
                },
                "talk_s": {
                    q: round(pct(talk, v), 1)
                    for q, v in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))
                },
                "launch_lag_ms_p99": round(pct(sorted(lag), 0.99) * 1000, 1),
                "loadgen_peak_rss_mb": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
                ),
                "loadgen_cpu_s": round(
                    resource.getrusage(resource.RUSAGE_SELF).ru_utime
                    + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                    1,
                ),
                "expected": [meta for _, meta in calls],
                "uniqueids": [call.uniqueid for call, _ in calls],
            }
        )
    )


if __name__ == "__main__":
    main()
