"""Names and times of the support tests' world: the examples' directory on their planning day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PARIS = ZoneInfo("Europe/Paris")
DAY = dt.date(2026, 11, 24)  # the examples' planning day

SHARED = "0800 123 456"
DEDICATED_117 = "0800 117 117"
DUBOIS = "01 45 67 89 12"  # client C-0001 of 042
MARTIN = "01.43.21.65.87"  # client C-0002 of 042
FOURNIER = "01 39 52 44 10"  # client J-103 of 117
FATOU_MOBILE = "06 12 34 56 78"  # carer I-01 of 042


def paris(hour: int, minute: int, second: int = 0) -> dt.datetime:
    """An instant of the examples' day, given in Paris time."""
    return dt.datetime(DAY.year, DAY.month, DAY.day, hour, minute, second, tzinfo=PARIS)


Place = Callable[..., object]
