"""Properties of reconcile() over generated carer days (hypothesis).

The generated worlds straddle the Paris daylight-saving nights of 2026 (March 29, October 25)
or an ordinary day, mix two companies that share carer ids (one in a zone without DST), and
contain night interventions, back-to-back chains, substitutes, withheld callers, absence
reports, duplicates and stray punches.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recon_factory import MemoryStore

from reconciliation.engine import day_bounds, gather, reconcile
from reconciliation.model import (
    CarerDay,
    CompanyRules,
    PlannedIn,
    PunchIn,
    ResolutionIn,
    Result,
)
from reconciliation.rounding import whole_minutes
from reconciliation.scope import refresh_after_planned, refresh_after_punch

ANCHORS = [date(2026, 3, 28), date(2026, 10, 24), date(2026, 5, 4)]
ZONES = {1: "Europe/Paris", 2: "America/Cayenne"}
CLIENTS = {1: [100, 101, 102], 2: [200, 201]}
CARERS = [1, 2, 3]
EMPTY = Result((), (), (), {})

# Example counts follow the active hypothesis profile (100 by default): the two incremental
# properties get all of it, the cheaper ones half, to keep the area fast.
_PROFILE_EXAMPLES = settings.default.max_examples
SETTINGS = settings(
    max_examples=max(10, _PROFILE_EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INCREMENTAL = settings(SETTINGS, max_examples=_PROFILE_EXAMPLES)


@dataclass(frozen=True)
class World:
    rules: dict[int, CompanyRules]
    punches: list[PunchIn]
    planned: list[PlannedIn]
    now: datetime


@st.composite
def company_rules(draw: st.DrawFn, timezone: str) -> CompanyRules:
    return CompanyRules(
        timezone=timezone,
        arrival_tolerance_min=draw(st.sampled_from([0, 10, 15])),
        departure_tolerance_min=draw(st.sampled_from([0, 15, 20])),
        match_window_min=draw(st.sampled_from([60, 120])),
        max_visit_hours=draw(st.sampled_from([10, 12])),
        rounding_rule=draw(st.sampled_from(["keep_planned_within_tolerance", "punched"])),
        rounding_step_min=draw(st.sampled_from([0, 5, 15, 30])),
        rounding_direction=draw(st.sampled_from(["nearest", "company", "carer"])),
    )


@st.composite
def worlds(draw: st.DrawFn) -> World:
    anchor = draw(st.sampled_from(ANCHORS))
    rules = {c: draw(company_rules(zone)) for c, zone in ZONES.items()}
    bases = {c: day_bounds(anchor, zone)[0] for c, zone in ZONES.items()}
    # A crowded world puts everyone at one client per company, where substitutes compete.
    crowded = draw(st.booleans())
    clients = {c: names[:1] if crowded else names for c, names in CLIENTS.items()}
    planned: list[PlannedIn] = []
    for _ in range(draw(st.integers(0, 6))):
        company = draw(st.sampled_from([1, 1, 1, 2]))
        carer = draw(st.sampled_from(CARERS))
        client = draw(st.sampled_from(clients[company]))
        start = bases[company] + timedelta(minutes=15 * draw(st.integers(0, 3 * 96 - 1)))
        for _link in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
            end = start + timedelta(minutes=draw(st.sampled_from([30, 60, 120, 240, 480])))
            planned.append(PlannedIn(1000 + len(planned), company, client, carer, start, end))
            start = end
    punches: list[PunchIn] = []

    def add(company: int, carer: int, client: int | None, kind: str, at: datetime) -> None:
        withheld = client is None and draw(st.booleans())
        source = draw(st.sampled_from(["landline", "landline", "landline", "callback"]))
        status = (
            "client_absent" if kind == "arrival" and draw(st.integers(0, 15)) == 0 else ("recorded")
        )
        punches.append(
            PunchIn(
                id=1 + len(punches),
                company_id=company,
                carer_id=carer,
                client_id=client,
                kind=kind,  # type: ignore[arg-type]
                at=at + timedelta(seconds=draw(st.sampled_from([0, 0, 17, 42]))),
                source=source,  # type: ignore[arg-type]
                caller_withheld=withheld,
                caller_unknown=client is None and not withheld,
                location_verified=source == "landline",
                client_has_landline=draw(st.booleans()),
                status=status,  # type: ignore[arg-type]
            )
        )

    for item in planned:
        if not draw(st.integers(0, 3)):
            continue
        carer = item.carer_id if draw(st.integers(0, 4)) else draw(st.sampled_from(CARERS))
        client = item.client_id if draw(st.integers(0, 5)) else None
        if draw(st.integers(0, 7)):
            add(
                item.company_id,
                carer,
                client,
                "arrival",
                item.start + timedelta(minutes=draw(st.integers(-40, 40))),
            )
        if draw(st.integers(0, 7)):
            add(
                item.company_id,
                carer,
                client,
                "departure",
                item.end + timedelta(minutes=draw(st.integers(-40, 40))),
            )
    for _ in range(draw(st.integers(0, 8 if crowded else 4))):
        company = draw(st.sampled_from([1, 2]))
        client = draw(st.sampled_from([*clients[company], None]))
        minute = draw(st.integers(0, 3 * 1440))
        add(
            company,
            draw(st.sampled_from(CARERS)),
            client,
            draw(st.sampled_from(["arrival", "departure"])),
            bases[company] + timedelta(minutes=minute),
        )
    now = bases[1] + timedelta(minutes=draw(st.integers(0, 5 * 1440)))
    return World(rules, punches, planned, now)


@st.composite
def resolved_worlds(draw: st.DrawFn) -> tuple[World, list[ResolutionIn]]:
    """A world and resolutions of some of the anomalies a first run raised."""
    world = draw(worlds())
    first = reconcile(world.rules, world.punches, world.planned, [], world.now)
    resolutions: list[ResolutionIn] = []
    for seq, found in enumerate(first.anomalies):
        if draw(st.integers(0, 2)):
            continue
        action = draw(
            st.sampled_from(
                ["dismiss", "accept_punched", "use_planned", "mark_not_done", "set_times", "link"]
            )
        )
        if action == "set_times":
            resolutions.append(
                ResolutionIn(
                    found.key,
                    "set_times",
                    {"start": found.at, "end": found.at + timedelta(minutes=45)},
                    seq,
                )
            )
        elif action == "link":
            same_company = [p for p in world.planned if p.company_id == found.company_id]
            if same_company and found.visit_key is not None:
                target = draw(st.sampled_from(same_company))
                resolutions.append(
                    ResolutionIn(found.key, "link_to_intervention", {"planned_id": target.id}, seq)
                )
        else:
            resolutions.append(ResolutionIn(found.key, action, {}, seq))  # type: ignore[arg-type]
    return world, resolutions


def universe(world: World, *results: Result) -> set[CarerDay]:
    """Every carer-day that could own something in the world."""
    days = {day for r in results for day in owners_days(r)}
    span = {d + timedelta(days=k) for d in days for k in (-1, 0, 1)}
    return {CarerDay(c, k, d) for c in ZONES for k in CARERS for d in span}


def owners_days(result: Result) -> set[date]:
    owners = [v.owner for v in result.visits] + [m.owner for m in result.matches]
    owners += [a.owner for a in result.anomalies] + [r.owner for r in result.realised.values()]
    return {o.day for o in owners}


@SETTINGS
@given(worlds(), st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(world: World, rnd: object) -> None:
    """Shuffled punches and planned interventions give an equal result."""
    punches, planned = list(world.punches), list(world.planned)
    rnd.shuffle(punches)  # type: ignore[attr-defined]
    rnd.shuffle(planned)  # type: ignore[attr-defined]
    assert reconcile(world.rules, punches, planned, [], world.now) == reconcile(
        world.rules, world.punches, world.planned, [], world.now
    )


@SETTINGS
@given(resolved_worlds())
def test_rerun_is_idempotent_and_keys_are_unique(case: tuple[World, list[ResolutionIn]]) -> None:
    """Re-runs are equal, keys unique, and resolving never adds or drops an anomaly."""
    # Re-running gives the same result, anomaly keys are unique, and a resolution never adds or
    # removes an anomaly except the one a link answered (kept, resolved).
    world, resolutions = case
    first = reconcile(world.rules, world.punches, world.planned, resolutions, world.now)
    second = reconcile(world.rules, world.punches, world.planned, resolutions, world.now)
    assert first == second
    all_keys = [a.key for a in first.anomalies]
    assert len(all_keys) == len(set(all_keys))
    if not any(r.link_target is not None for r in resolutions):
        bare = reconcile(world.rules, world.punches, world.planned, [], world.now)
        assert all_keys == [a.key for a in bare.anomalies]
        resolved = {r.anomaly_key for r in resolutions}
        assert {a.key for a in first.anomalies if not a.is_open} == resolved & set(all_keys)


@INCREMENTAL
@given(resolved_worlds())
def test_each_carer_day_alone_equals_the_batch(case: tuple[World, list[ResolutionIn]]) -> None:
    """Reconciling one carer-day with what scope.gather loads gives what the batch gives it."""
    world, resolutions = case
    batch = reconcile(world.rules, world.punches, world.planned, resolutions, world.now)
    store = MemoryStore(world.punches, world.planned, resolutions)
    for target in sorted(universe(world, batch)):
        inputs = gather([target], world.rules, store)
        alone = reconcile(
            world.rules, inputs.punches, inputs.planned, inputs.resolutions, world.now
        )
        assert alone.for_owners({target}) == batch.for_owners({target}), target


@INCREMENTAL
@given(worlds(), st.randoms(use_true_random=False))
def test_adding_records_one_at_a_time_equals_the_batch(world: World, rnd: object) -> None:
    """Records added one by one, each refreshing what scope names, end equal to the batch."""
    # Punches and plans arriving one by one in any order, each refreshing the carer-days that
    # scope says it can change, end with the batch result in every carer-day.
    events: list[PunchIn | PlannedIn] = [*world.punches, *world.planned]
    rnd.shuffle(events)  # type: ignore[attr-defined]
    store = MemoryStore()
    stored: dict[CarerDay, Result] = {}
    for event in events:
        if isinstance(event, PunchIn):
            store.punches[event.id] = event
            targets = refresh_after_punch(event, world.rules, store)
        else:
            store.planned[event.id] = event
            targets = refresh_after_planned(event, world.rules, store)
        inputs = gather(targets, world.rules, store)
        result = reconcile(world.rules, inputs.punches, inputs.planned, [], world.now)
        for target in targets:
            stored[target] = result.for_owners({target})
    batch = reconcile(world.rules, world.punches, world.planned, [], world.now)
    for target in sorted(universe(world, batch, *stored.values())):
        assert stored.get(target, EMPTY) == batch.for_owners({target}), target


@SETTINGS
@given(worlds(), st.randoms(use_true_random=False))
def test_removing_or_moving_punches_one_at_a_time_equals_the_batch(
    world: World, rnd: object
) -> None:
    """Punches deleted or moved one by one, refreshing both versions, end equal to the batch."""
    store = MemoryStore(world.punches, world.planned)
    batch = reconcile(world.rules, world.punches, world.planned, [], world.now)
    stored = {t: batch.for_owners({t}) for t in universe(world, batch)}
    changes = list(world.punches)
    rnd.shuffle(changes)  # type: ignore[attr-defined]
    for old in changes[: len(changes) // 2]:
        if rnd.random() < 0.5:  # type: ignore[attr-defined]
            del store.punches[old.id]
            targets = refresh_after_punch(old, world.rules, store)
        else:
            moved = replace(old, at=old.at + timedelta(minutes=rnd.randint(-90, 90)))  # type: ignore[attr-defined]
            store.punches[old.id] = moved
            targets = refresh_after_punch(old, world.rules, store)
            targets |= refresh_after_punch(moved, world.rules, store)
        inputs = gather(targets, world.rules, store)
        result = reconcile(world.rules, inputs.punches, inputs.planned, [], world.now)
        for target in targets:
            stored[target] = result.for_owners({target})
    final = reconcile(world.rules, list(store.punches.values()), world.planned, [], world.now)
    for target in sorted(universe(world, final, *stored.values())):
        assert stored.get(target, EMPTY) == final.for_owners({target}), target


@SETTINGS
@given(resolved_worlds())
def test_no_intervention_gets_two_visits(case: tuple[World, list[ResolutionIn]]) -> None:
    """No plan gets two visits; what one visit covers is one back-to-back chain."""
    # Each planned id appears in at most one match, and what one visit covers is a chain of
    # back-to-back interventions of one client and one planned carer.
    world, resolutions = case
    result = reconcile(world.rules, world.punches, world.planned, resolutions, world.now)
    planned_ids = [m.planned_id for m in result.matches]
    assert len(planned_ids) == len(set(planned_ids))
    by_id = {p.id: p for p in world.planned}
    covered: dict[str, list[PlannedIn]] = {}
    for match in result.matches:
        covered.setdefault(match.visit_key, []).append(by_id[match.planned_id])
    for chain in covered.values():
        chain.sort(key=lambda p: p.start)
        for before, after in itertools.pairwise(chain):
            assert before.end == after.start
            assert (before.client_id, before.carer_id) == (after.client_id, after.carer_id)


@SETTINGS
@given(worlds())
def test_realised_minutes_stay_within_the_punched_span(world: World) -> None:
    """Realised time exceeds the punched part only by tolerances and rounding."""
    # Without resolutions, realised time exceeds the punched part of the visit only by what the
    # rules allow: the tolerances under keep-planned, and rounding (nearest: one step in all;
    # company: nothing; carer: under one step at each end).
    result = reconcile(world.rules, world.punches, world.planned, [], world.now)
    by_id = {p.id: p for p in world.planned}
    for match in result.matches:
        realised = result.realised[match.planned_id]
        if realised.status != "realised" or match.start is None or match.end is None:
            continue
        assert realised.realised_start is not None and realised.realised_end is not None
        assert realised.realised_minutes == whole_minutes(
            realised.realised_start, realised.realised_end
        )
        rules = world.rules[by_id[match.planned_id].company_id]
        step = timedelta(minutes=rules.rounding_step_min)
        allowance = {"nearest": step, "company": timedelta(0), "carer": 2 * step}[
            rules.rounding_direction
        ]
        if rules.rounding_rule == "keep_planned_within_tolerance":
            allowance += rules.arrival_tolerance + rules.departure_tolerance
        punched = max(match.end - match.start, timedelta(0))
        assert realised.realised_end - realised.realised_start <= punched + allowance
