"""The prompt ids of the landline call flow (SPEC.md section 3, the names in brackets).

The ids are shared with the prompt catalogue, the recorded sound files
(``telegestion/<prompt id>`` in each Asterisk language folder) and the call journal, so they are
spelled once here and never renamed: a renamed id is a silent prompt on every installed server.
"""

from __future__ import annotations

NUMBER_NOT_IN_SERVICE = "number-not-in-service"
WELCOME = "welcome"
ENTER_COMPANY_CODE = "enter-company-code"
INVALID_COMPANY_CODE = "invalid-company-code"
ENTER_CARER_CODE = "enter-carer-code"
INVALID_CARER_CODE = "invalid-carer-code"
TOO_MANY_ATTEMPTS = "too-many-attempts"
GOODBYE = "goodbye"
ARRIVAL_RECORDED = "arrival-recorded"
DEPARTURE_RECORDED = "departure-recorded"
PRESS_2_TO_CORRECT = "press-2-to-correct"
CORRECTION_RECORDED = "correction-recorded"
ENTER_TASK_CODES = "enter-task-codes"
INVALID_TASK_CODE = "invalid-task-code"
TASK_CODES_RECORDED = "task-codes-recorded"
PRESS_9_IF_ABSENT = "press-9-if-absent"
ABSENCE_RECORDED = "absence-recorded"
SERVICE_UNAVAILABLE = "service-unavailable"
TECHNICAL_PROBLEM = "technical-problem"

#: Every prompt the flow can ask a transport to play; a start-up check uses it to find a missing
#: sound file before a carer does.
ALL_PROMPT_IDS: tuple[str, ...] = (
    NUMBER_NOT_IN_SERVICE,
    WELCOME,
    ENTER_COMPANY_CODE,
    INVALID_COMPANY_CODE,
    ENTER_CARER_CODE,
    INVALID_CARER_CODE,
    TOO_MANY_ATTEMPTS,
    GOODBYE,
    ARRIVAL_RECORDED,
    DEPARTURE_RECORDED,
    PRESS_2_TO_CORRECT,
    CORRECTION_RECORDED,
    ENTER_TASK_CODES,
    INVALID_TASK_CODE,
    TASK_CODES_RECORDED,
    PRESS_9_IF_ABSENT,
    ABSENCE_RECORDED,
    SERVICE_UNAVAILABLE,
    TECHNICAL_PROBLEM,
)
