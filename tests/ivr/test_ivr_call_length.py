"""SPEC.md section 3: a punch call lasts under 20 s on a dedicated number and under 25 s on a
shared one, from answer to hang-up, with the prompts at the length of the committed sound files,
for a carer who waits for each prompt and for one who types over them."""

from __future__ import annotations

import pytest
from ivr_harness import (
    AMINATA,
    DEDICATED_117,
    MME_DUBOIS,
    MME_FOURNIER,
    SHARED,
    Worker,
    load_examples,
    real_durations,
)
from sqlalchemy.orm import Session, sessionmaker

from ivr.asterisk_sim import KeyPace, SimulatedCall, parse_keys

#: A carer who keys a digit every 600 ms: the slow end of SPEC's 300-600 ms.
SLOW = KeyPace(tone=0.12, gap=0.48)

CASES = [
    # (number, caller, key script, budget in seconds)
    (DEDICATED_117, MME_FOURNIER, "," + AMINATA, 20.0),  # waits for each prompt
    (DEDICATED_117, MME_FOURNIER, ">" + AMINATA, 20.0),  # types over the prompts
    (SHARED, MME_DUBOIS, ",042,12345", 25.0),
    (SHARED, MME_DUBOIS, ">042>12345", 25.0),
]


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize(("called", "caller", "keys", "budget"), CASES)
def test_punch_calls_fit_the_budget(
    sessions: sessionmaker[Session],
    called: str,
    caller: str,
    keys: str,
    budget: float,
    language: str,
) -> None:
    """Arrival and then departure each end within the budget, in both languages."""
    load_examples(sessions)
    if language == "en":
        from sqlalchemy import update

        from telegestion.model import Company

        with sessions() as s, s.begin():
            s.execute(update(Company).values(language="en"))
    worker = Worker(sessions)
    call = SimulatedCall(
        called=called,
        caller=caller,
        script=tuple(parse_keys(keys)),
        durations=real_durations(language),
        pace=SLOW,
        language=language,
    )
    arrival, departure = worker.call(call), worker.call(call)
    for record, kind in ((arrival, "arrival"), (departure, "departure")):
        assert record.variables["TELEGESTION_STATUS"] == "punch_recorded"
        assert f"telegestion/{kind}-recorded" in record.prompts
        assert record.hung_up_by == "server"
        assert record.talk_seconds is not None and record.talk_seconds < budget, (
            kind,
            record.talk_seconds,
            record.render(),
        )
