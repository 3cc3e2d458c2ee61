"""The landline flow's waits, from the operator's settings.

``FlowSettings`` (``ivr.flow``) holds every timing of the flow; the few an operator has reason
to tune (a slower code timeout for carers new to the service, shorter readback waits) come
from ``telegestion.settings``, so the FastAGI server and the classic AGI script use the same.
"""

from __future__ import annotations

from dataclasses import replace

from ivr.flow import FlowSettings
from telegestion.settings import Settings


def flow_settings(settings: Settings, base: FlowSettings | None = None) -> FlowSettings:
    """``base`` (the flow's defaults) with the waits the settings give."""
    return replace(
        base or FlowSettings(),
        code_timeout_s=settings.flow_code_timeout_s,
        arrival_readback_wait_s=settings.flow_arrival_readback_wait_s,
        departure_readback_wait_s=settings.flow_departure_readback_wait_s,
        task_codes_timeout_s=settings.flow_task_codes_timeout_s,
    )
