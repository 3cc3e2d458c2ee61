"""Plain data in and out of reconciliation (rapprochement des pointages), SPEC.md section 5.

The rules run over these frozen records only, so the database layer, the tests and a benchmark
can all feed them without a session, a clock or a reactor. Ids are the database primary keys
(``int``): they must be unique per table across companies, because anomaly keys are built from
them and must never collide.

Anomaly keys are natural keys: ``CODE:subject`` where each subject token names what the anomaly
is about (``p12`` punch 12, ``v12`` the visit opened by punch 12, ``i7`` planned intervention 7).
The same facts always give the same key, so a re-run upserts instead of duplicating and a
coordinator's resolution stays attached to the anomaly it answered.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PunchKind = Literal["arrival", "departure"]
PunchSource = Literal["landline", "callback", "manual", "import"]
PunchStatus = Literal["recorded", "client_absent"]
RoundingRule = Literal["keep_planned_within_tolerance", "punched"]
RoundingDirection = Literal["nearest", "company", "carer"]
Severity = Literal["B", "W"]
RealisedStatus = Literal["planned", "realised", "not_done"]
MatchHow = Literal["own", "carried_over", "substitute", "unknown_client", "linked"]
ResolutionAction = Literal[
    "accept_punched",
    "use_planned",
    "set_times",
    "link_to_intervention",
    "create_intervention",
    "mark_not_done",
    "dismiss",
]

RESOLUTION_ACTIONS: frozenset[str] = frozenset(
    {
        "accept_punched",
        "use_planned",
        "set_times",
        "link_to_intervention",
        "create_intervention",
        "mark_not_done",
        "dismiss",
    }
)
LINK_ACTIONS: frozenset[str] = frozenset({"link_to_intervention", "create_intervention"})
ROUNDING_STEPS: frozenset[int] = frozenset({0, 5, 10, 15, 30})
DUPLICATE_WINDOW = timedelta(minutes=10)


class AnomalyCode(StrEnum):
    """The anomaly table of SPEC.md section 5, minus CODE_BRUTE_FORCE (raised by the IVR)."""

    MISSING_ARRIVAL = "MISSING_ARRIVAL"
    MISSING_DEPARTURE = "MISSING_DEPARTURE"
    NO_PUNCH = "NO_PUNCH"
    UNPLANNED_VISIT = "UNPLANNED_VISIT"
    SUBSTITUTE_CARER = "SUBSTITUTE_CARER"
    UNKNOWN_CALLER_NUMBER = "UNKNOWN_CALLER_NUMBER"
    CALLER_ID_WITHHELD = "CALLER_ID_WITHHELD"
    OVERLAPPING_VISITS = "OVERLAPPING_VISITS"
    LATE_ARRIVAL = "LATE_ARRIVAL"
    EARLY_DEPARTURE = "EARLY_DEPARTURE"
    OVERTIME = "OVERTIME"
    TOO_SHORT = "TOO_SHORT"
    DUPLICATE_PUNCH = "DUPLICATE_PUNCH"
    LOCATION_UNVERIFIED = "LOCATION_UNVERIFIED"
    CLIENT_ABSENT = "CLIENT_ABSENT"
    LATE_START_ALERT = "LATE_START_ALERT"


BLOCKING_CODES: frozenset[AnomalyCode] = frozenset(
    {
        AnomalyCode.MISSING_ARRIVAL,
        AnomalyCode.MISSING_DEPARTURE,
        AnomalyCode.NO_PUNCH,
        AnomalyCode.UNPLANNED_VISIT,
        AnomalyCode.SUBSTITUTE_CARER,
        AnomalyCode.UNKNOWN_CALLER_NUMBER,
        AnomalyCode.CALLER_ID_WITHHELD,
        AnomalyCode.OVERLAPPING_VISITS,
        AnomalyCode.CLIENT_ABSENT,
    }
)


def severity_of(code: AnomalyCode) -> Severity:
    """B blocks the export of the interventions the anomaly is about until it is resolved."""
    return "B" if code in BLOCKING_CODES else "W"


def _require_aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value


@dataclass(frozen=True, slots=True)
class CompanyRules:
    """Per-company reconciliation settings; the defaults are those of SPEC.md section 5."""

    timezone: str = "Europe/Paris"
    arrival_tolerance_min: int = 15
    departure_tolerance_min: int = 15
    match_window_min: int = 120
    max_visit_hours: int = 12
    min_visit_min: int = 3
    late_alert_min: int = 15
    rounding_rule: RoundingRule = "keep_planned_within_tolerance"
    rounding_step_min: int = 0
    rounding_direction: RoundingDirection = "nearest"
    # Derived once, because the rules read them for every punch and intervention.
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    max_visit: timedelta = field(init=False, repr=False, compare=False)
    match_window: timedelta = field(init=False, repr=False, compare=False)
    arrival_tolerance: timedelta = field(init=False, repr=False, compare=False)
    departure_tolerance: timedelta = field(init=False, repr=False, compare=False)
    min_visit: timedelta = field(init=False, repr=False, compare=False)
    late_alert: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.rounding_step_min not in ROUNDING_STEPS:
            raise ValueError(
                f"rounding_step_min must be one of {sorted(ROUNDING_STEPS)}, "
                f"got {self.rounding_step_min}"
            )
        if self.rounding_rule not in ("keep_planned_within_tolerance", "punched"):
            raise ValueError(f"unknown rounding_rule {self.rounding_rule!r}")
        if self.rounding_direction not in ("nearest", "company", "carer"):
            raise ValueError(f"unknown rounding_direction {self.rounding_direction!r}")
        for name in (
            "arrival_tolerance_min",
            "departure_tolerance_min",
            "match_window_min",
            "min_visit_min",
            "late_alert_min",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_visit_hours <= 0:
            raise ValueError("max_visit_hours must be positive")
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc
        derived = {
            "tz": tz,
            "max_visit": timedelta(hours=self.max_visit_hours),
            "match_window": timedelta(minutes=self.match_window_min),
            "arrival_tolerance": timedelta(minutes=self.arrival_tolerance_min),
            "departure_tolerance": timedelta(minutes=self.departure_tolerance_min),
            "min_visit": timedelta(minutes=self.min_visit_min),
            "late_alert": timedelta(minutes=self.late_alert_min),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True, slots=True)
class PunchIn:
    """A recorded punch (pointage).

    ``client_id`` is None when the caller number did not identify a client (withheld, unknown, or
    ``0 = not listed`` on the call-back menu). ``caller_unknown`` means a number was presented but
    it is not a landline of a client of the company. A ``client_absent`` punch is the report of
    SPEC.md section 3 step 9, not an arrival: it stands alone and never pairs.
    """

    id: int
    company_id: int
    carer_id: int
    client_id: int | None
    kind: PunchKind
    at: datetime
    source: PunchSource = "landline"
    caller_withheld: bool = False
    caller_unknown: bool = False
    location_verified: bool = True
    client_has_landline: bool = True
    status: PunchStatus = "recorded"

    def __post_init__(self) -> None:
        _require_aware("PunchIn.at", self.at)
        if self.kind not in ("arrival", "departure"):
            raise ValueError(f"punch {self.id}: kind must be arrival or departure")
        if self.status not in ("recorded", "client_absent"):
            raise ValueError(f"punch {self.id}: status must be recorded or client_absent")


@dataclass(frozen=True, slots=True)
class PlannedIn:
    """A planned intervention (intervention planifiée)."""

    id: int
    company_id: int
    client_id: int
    carer_id: int
    start: datetime
    end: datetime
    service: str = ""
    financer: str = ""

    def __post_init__(self) -> None:
        _require_aware("PlannedIn.start", self.start)
        _require_aware("PlannedIn.end", self.end)
        if self.end < self.start:
            raise ValueError(f"planned intervention {self.id} ends before it starts")


@dataclass(frozen=True, slots=True)
class ResolutionIn:
    """The current resolution of one anomaly, as the coordinator last decided it.

    ``params``: ``set_times`` needs ``start`` and ``end`` (aware datetimes);
    ``link_to_intervention`` and ``create_intervention`` need ``planned_id``. ``seq`` orders
    decisions (the database row id is a good one): when several compete, the latest one wins.
    """

    anomaly_key: str
    action: ResolutionAction
    params: Mapping[str, object] = field(default_factory=dict)
    seq: int = 0

    def __post_init__(self) -> None:
        if self.action not in RESOLUTION_ACTIONS:
            raise ValueError(f"unknown resolution action {self.action!r}")
        if self.action == "set_times":
            start, end = self.params.get("start"), self.params.get("end")
            if not isinstance(start, datetime) or not isinstance(end, datetime):
                raise ValueError("set_times needs params start and end (datetimes)")
            _require_aware("set_times start", start)
            _require_aware("set_times end", end)
            if end < start:
                raise ValueError("set_times: end is before start")
        if self.action in LINK_ACTIONS and not isinstance(self.params.get("planned_id"), int):
            raise ValueError(f"{self.action} needs params planned_id (int)")

    @property
    def link_target(self) -> int | None:
        if self.action in LINK_ACTIONS:
            target = self.params["planned_id"]
            assert isinstance(target, int)
            return target
        return None

    @property
    def set_times(self) -> tuple[datetime, datetime]:
        start, end = self.params["start"], self.params["end"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        return start, end


@dataclass(frozen=True, slots=True, order=True)
class CarerDay:
    """One carer's day in one company: the unit the database layer reconciles and stores.

    Every output carries the CarerDay that owns it: a visit belongs to the local day it starts
    on, a planned intervention (and what is said about it) to the local day it starts on.
    """

    company_id: int
    carer_id: int
    day: date


@dataclass(frozen=True, slots=True)
class Visit:
    """An arrival and the departure that closes it (or what is left of one).

    ``end`` is None while the visit is open (no departure yet, or never). A visit that lacks its
    arrival is a point: ``start == end ==`` the departure time. A client-absent report is a point
    visit too, with ``absence_report`` set.
    """

    key: str
    company_id: int
    carer_id: int
    client_id: int | None
    arrival_punch_id: int | None
    departure_punch_id: int | None
    start: datetime
    end: datetime | None
    day: date
    absence_report: bool = False

    @property
    def owner(self) -> CarerDay:
        return CarerDay(self.company_id, self.carer_id, self.day)

    @property
    def closed(self) -> bool:
        """Both punches known: the only visits with a real duration."""
        return self.arrival_punch_id is not None and self.departure_punch_id is not None

    @property
    def punch_ids(self) -> tuple[int, ...]:
        return tuple(p for p in (self.arrival_punch_id, self.departure_punch_id) if p is not None)


@dataclass(frozen=True, slots=True)
class VisitMatch:
    """The part of a visit that counts for one planned intervention.

    A visit spanning back-to-back interventions is cut at the planned boundaries, so ``start`` of
    a later part is the planned boundary, not a punch. ``start`` is None when the visit has no
    arrival; ``end`` is None when it has no departure.
    """

    visit_key: str
    planned_id: int
    start: datetime | None
    end: datetime | None
    how: MatchHow
    owner: CarerDay


@dataclass(frozen=True, slots=True)
class AnomalyOut:
    """An anomaly the rules raise now.

    ``about_planned_ids`` lists the planned interventions whose export it blocks when it is
    blocking and unresolved. ``resolution`` is the action of the resolution that answered it, or
    None while it is open. ``at`` is the punch time or planned start it is about.
    """

    key: str
    code: AnomalyCode
    severity: Severity
    company_id: int
    carer_id: int
    client_id: int | None
    planned_id: int | None
    punch_id: int | None
    visit_key: str | None
    at: datetime
    detail: Mapping[str, object]
    about_planned_ids: tuple[int, ...]
    owner: CarerDay
    resolution: ResolutionAction | None = None

    @property
    def is_open(self) -> bool:
        return self.resolution is None

    @property
    def blocks(self) -> bool:
        return self.severity == "B" and self.resolution is None


@dataclass(frozen=True, slots=True)
class Realised:
    """What the export to the core model says about one planned intervention.

    ``done_by_carer_id`` is who did it (a substitute carer, when one did): payroll pays them.
    Times and minutes are set only when ``status`` is ``realised``.
    """

    planned_id: int
    status: RealisedStatus
    realised_start: datetime | None
    realised_end: datetime | None
    realised_minutes: int | None
    done_by_carer_id: int | None
    visit_keys: tuple[str, ...]
    owner: CarerDay


@dataclass(frozen=True, slots=True)
class Result:
    """Everything one reconciliation run produced, in a canonical order (visits and anomalies
    by key, matches and realised by planned id)."""

    visits: tuple[Visit, ...]
    matches: tuple[VisitMatch, ...]
    anomalies: tuple[AnomalyOut, ...]
    realised: Mapping[int, Realised]

    def for_owners(self, owners: Collection[CarerDay]) -> Result:
        """Keep what the given carer-days own: what the database writes after an incremental run."""
        keep = set(owners)
        return Result(
            visits=tuple(v for v in self.visits if v.owner in keep),
            matches=tuple(m for m in self.matches if m.owner in keep),
            anomalies=tuple(a for a in self.anomalies if a.owner in keep),
            realised={k: r for k, r in self.realised.items() if r.owner in keep},
        )

    def for_days(self, company_id: int, first: date, last: date) -> Result:
        """Keep what one company's carer-days from ``first`` to ``last`` own (a batch range)."""

        def inside(owner: CarerDay) -> bool:
            return owner.company_id == company_id and first <= owner.day <= last

        return Result(
            visits=tuple(v for v in self.visits if inside(v.owner)),
            matches=tuple(m for m in self.matches if inside(m.owner)),
            anomalies=tuple(a for a in self.anomalies if inside(a.owner)),
            realised={k: r for k, r in self.realised.items() if inside(r.owner)},
        )

    def open_anomalies(self) -> tuple[AnomalyOut, ...]:
        return tuple(a for a in self.anomalies if a.is_open)


# --- anomaly keys -----------------------------------------------------------------------------


def visit_key_for(first_punch_id: int) -> str:
    """A visit is named after its first punch, which never changes once the visit exists."""
    return f"v{first_punch_id}"


def anomaly_key(
    code: AnomalyCode,
    *,
    punch_id: int | None = None,
    visit_key: str | None = None,
    planned_id: int | None = None,
) -> str:
    parts = [str(code)]
    if planned_id is not None:
        parts.append(f"i{planned_id}")
    if visit_key is not None:
        parts.append(visit_key)
    if punch_id is not None:
        parts.append(f"p{punch_id}")
    return ":".join(parts)


@dataclass(frozen=True, slots=True)
class KeySubjects:
    """What an anomaly key names, so the database can index resolutions by punch and planned id."""

    code: str
    punch_id: int | None
    visit_first_punch_id: int | None
    planned_id: int | None

    @property
    def punch_ids(self) -> tuple[int, ...]:
        return tuple(p for p in (self.punch_id, self.visit_first_punch_id) if p is not None)


def parse_anomaly_key(key: str) -> KeySubjects:
    """Inverse of :func:`anomaly_key`; raises ValueError on a key this module did not make."""
    code, *tokens = key.split(":")
    punch = visit = planned = None
    try:
        for token in tokens:
            kind, number = token[0], int(token[1:])
            if kind == "p":
                punch = number
            elif kind == "v":
                visit = number
            elif kind == "i":
                planned = number
            else:
                raise ValueError(token)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"not a reconciliation anomaly key: {key!r}") from exc
    return KeySubjects(code, punch, visit, planned)


def punch_anomaly(
    code: AnomalyCode,
    punch: PunchIn,
    *,
    owner: CarerDay,
    detail: Mapping[str, object],
    visit_key: str | None = None,
    about_planned_ids: tuple[int, ...] = (),
) -> AnomalyOut:
    """An anomaly about one punch: keyed by the punch, placed at its time, its kind in detail."""
    return AnomalyOut(
        key=anomaly_key(code, punch_id=punch.id),
        code=code,
        severity=severity_of(code),
        company_id=punch.company_id,
        carer_id=punch.carer_id,
        client_id=punch.client_id,
        planned_id=about_planned_ids[0] if about_planned_ids else None,
        punch_id=punch.id,
        visit_key=visit_key,
        at=punch.at,
        detail={"kind": punch.kind, **detail},
        about_planned_ids=about_planned_ids,
        owner=owner,
    )
