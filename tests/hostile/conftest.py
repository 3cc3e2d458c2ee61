"""The hostile-input tests drive the harnesses of ``tests/ivr``; make them importable here."""

from __future__ import annotations

import sys
from pathlib import Path

_IVR = str(Path(__file__).resolve().parents[1] / "ivr")
if _IVR not in sys.path:
    sys.path.append(_IVR)
