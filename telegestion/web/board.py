"""The live board of the day: what state each planned intervention is in right now.

A pure rule, so the board and its tests agree on what "late" means (SPEC.md section 5:
``late_alert_min`` after the planned start without an arrival).
"""

from __future__ import annotations

import datetime as dt

STATES = ("expected", "late_start", "arrived", "client_absent", "done", "not_done")

LABELS = {
    "expected": "expected",
    "late_start": "late start",
    "arrived": "arrived",
    "client_absent": "client absent",
    "done": "done",
    "not_done": "not done",
}


def board_state(
    *,
    planned_start: dt.datetime,
    status: str,
    arrived: bool,
    left: bool,
    open_codes: frozenset[str],
    client_absent: bool,
    now: dt.datetime,
    late_alert: dt.timedelta,
) -> str:
    """One of :data:`STATES` for a planned intervention of today."""
    if client_absent or "CLIENT_ABSENT" in open_codes:
        return "client_absent"
    if status == "realised" or left:
        return "done"
    if status == "not_done":
        return "not_done"
    if arrived:
        return "arrived"
    if "LATE_START_ALERT" in open_codes or now >= planned_start + late_alert:
        return "late_start"
    return "expected"
