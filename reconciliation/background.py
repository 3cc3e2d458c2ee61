"""Reconciliation after a call, without ever holding up the threads that serve calls.

The call's own reconciliation runs at once on the thread that finished the call (the carer
has hung up), which keeps it immediate and its result visible as soon as the call is over.
But a batch (``telegestion reconcile``) may hold the same carers for seconds: rather than
keep a call thread waiting that long, the run gives up after a short wait and is handed to one
background thread, which retries it patiently. The queue is drained when the process exits,
so a short-lived AGI script still reconciles its punch.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from reconciliation.store import CarersBusy, reconcile_after_call

log = logging.getLogger(__name__)

#: How long a call's thread waits for another run on the same carers before handing over.
CALL_LOCK_WAIT_MS = 250


class Later:
    """One daemon thread running jobs in order; :meth:`drain` waits for the queue to empty."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="telegestion-reconcile-later", daemon=True
                )
                self._thread.start()
        self._jobs.put((fn, args))

    def _run(self) -> None:
        while True:
            fn, args = self._jobs.get()
            try:
                fn(*args)
            except Exception:
                log.exception("deferred reconciliation failed")
            finally:
                self._jobs.task_done()

    def drain(self) -> None:
        self._jobs.join()


LATER = Later()
atexit.register(LATER.drain)


def reconcile_call(engine: Engine, origin: str, call_key: str, now: datetime) -> None:
    """Reconcile a finished call's punch now, or soon after if its carers are busy."""
    try:
        reconcile_after_call(engine, origin, call_key, now=now, lock_wait_ms=CALL_LOCK_WAIT_MS)
    except CarersBusy:
        log.info("carers busy: reconciliation of call %s/%s deferred", origin, call_key)
        LATER.submit(_patiently, engine, origin, call_key, now)


def _patiently(engine: Engine, origin: str, call_key: str, now: datetime) -> None:
    reconcile_after_call(engine, origin, call_key, now=now)
