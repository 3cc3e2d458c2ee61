"""A `telegestion serve` subprocess on the test database, and calls placed on it from another
process, as a real Asterisk would (the server and its callers never share a reactor)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from telegestion.importing import import_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PLACE_CALLS = ROOT / "tests" / "ivr" / "place_calls_client.py"

SHARED = "0800123456"
UNKNOWN_NUMBER = "0800999999"
MME_DUBOIS = "0145678912"  # client C-0001 of company 042
FATOU = "12345"  # carer I-01 of 042, active


def load_examples(sessions: sessionmaker[Session]) -> None:
    for kind in ("companies", "numbers", "clients", "carers", "planning"):
        import_file(sessions, kind, EXAMPLES / f"{kind}.csv")


class Server:
    """One `telegestion serve` process; its stderr (JSON log lines) is collected as it comes."""

    def __init__(self, db_url: str, cwd: Path, node: str = "ops", **env: str) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("TELEGESTION_")}
        environ.update(
            TELEGESTION_DATABASE_URL=db_url,
            TELEGESTION_NODE=node,
            TELEGESTION_DB_POOL_SIZE="4",
            **env,
        )
        self.node = node
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "telegestion.cli",
                "serve",
                "--agi-port",
                "0",
                "--http-port",
                "0",
                "--listen",
                "127.0.0.1",
            ],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        assert self.proc.stdout is not None
        banner = self.proc.stdout.readline()
        match = re.search(r"FastAGI on [\d.]+:(\d+), HTTP on port (\d+)", banner)
        if match is None:
            self.kill()
            raise AssertionError(f"serve did not start: {banner!r} {self.lines[-5:]}")
        self.agi_port, self.http_port = int(match.group(1)), int(match.group(2))

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def log_records(self) -> list[dict[str, Any]]:
        """Every stderr line, each of which must be one JSON object."""
        return [json.loads(line) for line in self.lines if line.strip()]

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}{path}", timeout=5
            ) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/healthz")
        return status, json.loads(body)

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.terminate()
        try:
            return self.wait()
        finally:
            self.kill()


def start_calls(port: int, specs: list[dict[str, Any]], tmp_path: Path, speed: float) -> Any:
    """Place ``specs`` from another process; ``finish()`` on the result gives one dict per
    call (``status``: the TELEGESTION_STATUS the dialplan would read)."""
    spec_file = tmp_path / f"calls-{time.monotonic_ns()}.jsonl"
    spec_file.write_text("".join(json.dumps(s) + "\n" for s in specs))
    proc = subprocess.Popen(
        [sys.executable, str(PLACE_CALLS), "127.0.0.1", str(port), str(spec_file), str(speed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    class Running:
        def finish(self, timeout: float = 120) -> list[dict[str, Any]]:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err
            return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    return Running()


def place(port: int, specs: list[dict[str, Any]], tmp_path: Path, speed: float = 20):
    return start_calls(port, specs, tmp_path, speed).finish()


def until(condition: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Poll ``condition`` (a real process's state: no event to wait on) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


def connect_refused(port: int) -> bool:
    """True when nothing listens on ``port`` any more."""
    try:
        with contextlib.closing(socket.create_connection(("127.0.0.1", port), timeout=2)):
            return False
    except ConnectionRefusedError:
        return True
