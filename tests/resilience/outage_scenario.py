"""One scenario for every database fault: calls before, during and after it, then the verdict.

The fault is timed against the calls, not the clock: it starts once enough carers have heard
their readback with the database up, and ends once enough calls have been answered and ended
inside it, so each phase really holds calls however fast or slow the machine is.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from serve_harness import CallLoad, ServeProcess, Verdict, ended_within, wait_for_punches

#: Carers who heard a readback before the fault starts.
HEARD_BEFORE = 6
#: Calls answered and ended inside the fault before it ends.
ENDED_DURING = 6
#: ...of which carers who listen to the end (the ones who must hear their readback).
FINISHERS_DURING = 2
#: Carers who heard a readback in calls answered after the fault.
HEARD_AFTER = 3
#: Time for the spool to reach the database once it is back.
REPLAY_DEADLINE_S = 45.0


@dataclasses.dataclass
class OutageRun:
    records: list[dict[str, Any]]
    verdict: Verdict
    fault_started: float
    fault_ended: float
    worker: ServeProcess

    def explain(self) -> str:
        """The verdict, and what the worker logged about the first calls it blames."""
        blamed = [*self.verdict.lost, *(uid for uid, _, _ in self.verdict.wrong_kind)]
        blamed += self.verdict.duplicated
        return f"{self.verdict.describe()}\n{self.worker.log_about(blamed[:3])}"

    def before(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["t_hangup"] < self.fault_started]

    def during(self) -> list[dict[str, Any]]:
        return ended_within(self.records, self.fault_started, self.fault_ended)

    def after(self) -> list[dict[str, Any]]:
        return ended_within(self.records, self.fault_ended, float("inf"))


def enough_inside(records: list[dict[str, Any]], fault_started: float) -> bool:
    inside = ended_within(records, fault_started, float("inf"))
    finishers = [r for r in inside if r["style"] == "listens_to_the_end"]
    return len(inside) >= ENDED_DURING and len(finishers) >= FINISHERS_DURING


def run_outage(
    url: str,
    worker: ServeProcess,
    load: CallLoad,
    *,
    begin: Callable[[], None],
    end: Callable[[], None],
    during: Callable[[float], None] = lambda _t: None,
) -> OutageRun:
    """Drive ``load`` through ``begin()``…``end()``; ``during(fault_started)`` runs inside."""
    load.wait_heard(HEARD_BEFORE)
    fault_started = time.time()
    begin()
    try:
        load.wait_until(lambda records: enough_inside(records, fault_started), timeout=60)
        during(fault_started)
    finally:
        end()
    fault_ended = time.time()
    # Calls after the fault too, read back with the database up again; then no more calls.
    load.wait_until(
        lambda records: (
            sum(1 for r in records if r["heard"] and r["t_answer"] > fault_ended) >= HEARD_AFTER
        ),
        timeout=60,
    )
    records = load.finish(stop_placing=True)
    verdict = wait_for_punches(
        url, worker.node, records, timeout=REPLAY_DEADLINE_S, settled=worker.caught_up
    )
    return OutageRun(records, verdict, fault_started, fault_ended, worker)


def assert_no_punch_lost(run: OutageRun) -> None:
    """The promise, and proof that each phase held calls that were read back."""
    assert run.verdict.ok, run.explain()
    for phase in ("before", "during", "after"):
        calls = getattr(run, phase)()
        outcomes = Counter(str(r["status"]) for r in calls)
        assert any(r["heard"] for r in calls), (
            f"no call heard a readback {phase} the fault; outcomes {dict(outcomes)}"
        )


def assert_carers_were_served_during(run: OutageRun) -> None:
    """A carer who keys valid codes and listens to the end hears the readback, outage or not."""
    finishers = [
        r for r in run.during() if r["style"] == "listens_to_the_end" and not r["keys_lost"]
    ]
    assert finishers, "no call listened to the end inside the fault"
    refused = [(r["uid"], r["status"], r["prompts"][-3:]) for r in finishers if not r["heard"]]
    assert not refused, f"{len(refused)} of {len(finishers)} carers not read back: {refused[:3]}"
