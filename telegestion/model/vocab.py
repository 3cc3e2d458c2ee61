"""The closed vocabularies of SPEC.md, in one place.

They are checked by the database (CHECK constraints) as well as by the importers, so a value that
slips past one layer is still refused by the other.
"""

from __future__ import annotations

NUMBER_KINDS = ("shared", "dedicated", "callback")
LANGUAGES = ("fr", "en")
PUNCH_KINDS = ("arrival", "departure")
PUNCH_SOURCES = ("landline", "callback", "manual", "import")
PUNCH_STATUSES = ("recorded", "client_absent")
TRANSPORTS = ("fastagi", "agi", "twilio")
CALL_OUTCOMES = (
    "punch_recorded",
    "unknown_called_number",
    "company_code_failed",
    "carer_code_failed",
    "caller_hung_up",
    "locked_out",
    "error",
)
EVENT_KINDS = ("prompt", "input", "lookup", "punch", "error", "hangup")
INTERVENTION_STATUSES = ("planned", "realised", "not_done")
ROUNDING_RULES = ("keep_planned_within_tolerance", "punched")
ROUNDING_STEPS = (0, 5, 10, 15, 30)
ROUNDING_DIRECTIONS = ("nearest", "company", "carer")
ANOMALY_SEVERITIES = ("B", "W")
ANOMALY_STATUSES = ("open", "resolved", "closed")
ANOMALY_CODES = (
    "MISSING_ARRIVAL",
    "MISSING_DEPARTURE",
    "NO_PUNCH",
    "UNPLANNED_VISIT",
    "SUBSTITUTE_CARER",
    "UNKNOWN_CALLER_NUMBER",
    "CALLER_ID_WITHHELD",
    "OVERLAPPING_VISITS",
    "LATE_ARRIVAL",
    "EARLY_DEPARTURE",
    "OVERTIME",
    "TOO_SHORT",
    "DUPLICATE_PUNCH",
    "LOCATION_UNVERIFIED",
    "CODE_BRUTE_FORCE",
    "CLIENT_ABSENT",
    "LATE_START_ALERT",
)
RESOLUTION_ACTIONS = (
    "accept_punched",
    "use_planned",
    "set_times",
    "link_to_intervention",
    "create_intervention",
    "mark_not_done",
    "dismiss",
)
RESOLUTION_REASONS = (
    "phone_out_of_order",
    "client_on_the_phone",
    "carer_forgot_to_call",
    "carer_used_another_phone",
    "client_absent",
    "care_refused",
    "replacement_carer",
    "schedule_changed",
    "system_fault",
    "other",
)
USER_ROLES = ("coordinator", "support")


def sql_in(column: str, values: tuple[str, ...] | tuple[int, ...]) -> str:
    """A portable ``column IN (...)`` check for a CHECK constraint."""
    rendered = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values)
    return f"{column} IN ({rendered})"
