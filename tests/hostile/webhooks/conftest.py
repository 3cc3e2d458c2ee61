"""The call-back tests' fixtures (loopback reactor, fake Twilio API, workers, directory), reused.

The hostile webhook tests drive the very same harness as ``tests/callback``; its conftest is
loaded under another module name and its fixtures re-exported, rather than copied.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_CALLBACK = Path(__file__).resolve().parents[2] / "callback"
if str(_CALLBACK) not in sys.path:
    sys.path.append(str(_CALLBACK))

_spec = importlib.util.spec_from_file_location("_callback_conftest", _CALLBACK / "conftest.py")
assert _spec is not None and _spec.loader is not None
_callback_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_callback_conftest)

_sqlite_template = _callback_conftest._sqlite_template
_postgres_schema = _callback_conftest._postgres_schema
db_url = _callback_conftest.db_url
engine = _callback_conftest.engine
sessions = _callback_conftest.sessions
directory = _callback_conftest.directory
loop = _callback_conftest.loop
fake_api = _callback_conftest.fake_api
test_time = _callback_conftest.test_time
twilio = _callback_conftest.twilio
make_worker = _callback_conftest.make_worker
worker = _callback_conftest.worker
