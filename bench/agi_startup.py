"""Start-up of the classic AGI script: from the spawn to its first command (ANSWER) on stdout.

Asterisk forks the script for every call and the caller hears silence until it answers, so the
time that counts is the whole start: interpreter, imports, settings, reading the environment
block. Each run spawns the script exactly as Asterisk does (pipes on stdin/stdout, the classic
environment block written at once, the AGI() arguments on the command line), takes the time
at which the first byte arrives on its stdout, checks that it is ``ANSWER``, and kills it: the
rest of the call is not measured here, and a killed run leaves no work behind to slow down the
next one.

With ``--first-prompt N`` it also places N whole calls through the simulated Asterisk on a
SQLite database of the examples, and reports the time from the spawn to the first prompt
(the database layer loaded, the called number looked up): what the caller hears as the
ring-to-welcome gap.

    .venv/bin/python bench/agi_startup.py --runs 40 --first-prompt 10
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.300

CALLED = "0800123456"
CALLER = "0145678912"


def environment_block(uniqueid: str) -> bytes:
    """A classic AGI environment block as Asterisk 22 writes it (no agi_network lines)."""
    lines = [
        ("agi_request", "telegestion.agi"),
        ("agi_channel", "PJSIP/trunk-00000001"),
        ("agi_language", "fr"),
        ("agi_type", "PJSIP"),
        ("agi_uniqueid", uniqueid),
        ("agi_version", "22.10.1"),
        ("agi_callerid", CALLER),
        ("agi_calleridname", "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", CALLED),
        ("agi_rdnis", "unknown"),
        ("agi_context", "telegestion-shared"),
        ("agi_extension", CALLED),
        ("agi_priority", "3"),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", "140308715464384"),
        ("agi_arg_1", CALLED),
        ("agi_arg_2", CALLER),
    ]
    return "".join(f"{k}: {v}\n" for k, v in lines).encode() + b"\n"


def time_to_first_command(argv: Sequence[str], env: dict[str, str], run: int) -> float:
    """Seconds from the spawn to the first line on the script's stdout, which must be ANSWER."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*argv, CALLED, CALLER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        bufsize=0,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(environment_block(f"{int(time.time())}.{run}"))
        out = b""
        first: float | None = None
        deadline = started + 10
        while b"\n" not in out:
            left = deadline - time.perf_counter()
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, left))
            if not ready:
                raise RuntimeError(f"no command within 10 s; stderr: {proc.stderr.read1(2000)!r}")
            data = os.read(proc.stdout.fileno(), 4096)
            if not data:
                raise RuntimeError(f"the script ended without a command: {proc.stderr.read()!r}")
            if first is None:
                first = time.perf_counter()
            out += data
        if not out.startswith(b"ANSWER\n"):
            raise RuntimeError(f"first command is not ANSWER: {out[:80]!r}")
        assert first is not None
        return first - started
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    worst = ordered[-1]
    verdict = "ok" if p90 < TARGET_S else "OVER TARGET"
    return (
        f"{name:<44} runs={len(ordered):<4} p50={p50 * 1000:6.1f} ms  "
        f"p90={p90 * 1000:6.1f} ms  max={worst * 1000:6.1f} ms  [{verdict}]"
    )


def first_prompt_times(script: Sequence[str], count: int, env: dict[str, str]) -> list[float]:
    """Whole calls on a fresh SQLite database: spawn to the first STREAM FILE / GET DATA."""
    from ivr.asterisk_sim import SimulatedCall, parse_keys
    from ivr.asterisk_sim_process import run_agi_scripts
    from telegestion import migrate
    from telegestion.db import make_engine, make_session_factory
    from telegestion.importing import import_file

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        sessions = make_session_factory(engine)
        for kind in ("companies", "numbers", "clients", "carers"):
            import_file(sessions, kind, ROOT / "examples" / f"{kind}.csv")
        engine.dispose()
        call_env = dict(env, TELEGESTION_DATABASE_URL=url)
        times = []
        for _ in range(count):
            call = SimulatedCall(CALLED, CALLER, script=tuple(parse_keys(">042>12345")))
            (run,) = run_agi_scripts(script, [call], env=call_env, cwd=tmp)
            first = next(
                e.at
                for e in run.record.dialogue
                if e.kind == "command" and e.text.startswith(("STREAM FILE", "GET DATA"))
            )
            times.append(first)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="spawns per variant (default 40)")
    parser.add_argument(
        "--first-prompt",
        type=int,
        default=0,
        metavar="N",
        help="also place N whole calls and time the spawn to the first prompt",
    )
    args = parser.parse_args()

    bin_dir = Path(sys.executable).parent
    console_script = bin_dir / "telegestion-agi"
    variants = [
        (
            "python -m agi_scripts.telegestion_agi",
            [sys.executable, "-m", "agi_scripts.telegestion_agi"],
        )
    ]
    if console_script.exists():
        variants.insert(0, ("telegestion-agi (console script)", [str(console_script)]))
    else:
        print(f"note: {console_script} is not installed (pip install -e .)", file=sys.stderr)

    # Asterisk passes its own environment; no TELEGESTION_ settings here: the defaults.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
    env["TELEGESTION_DATABASE_URL"] = "sqlite:////nonexistent/unused.db"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    exit_status = 0
    for name, argv in variants:
        time_to_first_command(argv, env, 0)  # bytecode caches written, files in the page cache
        samples = [time_to_first_command(argv, env, run) for run in range(1, args.runs + 1)]
        line = summary(name + ": spawn -> ANSWER", samples)
        print(line, flush=True)
        if "OVER" in line:
            exit_status = 1
    if args.first_prompt:
        script = variants[0][1]
        samples = first_prompt_times(script, args.first_prompt, env)
        print(summary(variants[0][0] + ": spawn -> first prompt", samples).rsplit("  [", 1)[0])
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
