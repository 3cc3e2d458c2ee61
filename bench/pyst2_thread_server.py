"""Baseline for the FastAGI benchmark: the same call flow served one thread per call with
pyst2's ``AGI`` class over the socket (``agi_scripts.pyst2_channel``), as a classic
``socketserver.ThreadingTCPServer`` FastAGI server would. Database work runs inline in each
call's thread.

    python bench/pyst2_thread_server.py --port 4574   (TELEGESTION_DATABASE_URL as usual)
"""

from __future__ import annotations

import argparse
import signal
import socketserver
import sys
import threading

from agi_scripts.pyst2_channel import Pyst2Channel
from ivr.agi_call import agi_call, execute_sync
from ivr.call_store import CallStore
from telegestion.db import make_engine, make_session_factory
from telegestion.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=4574)
    parser.add_argument("--db-pool", type=int, default=40)
    args = parser.parse_args()
    settings = load_settings()
    engine = make_engine(
        settings.database_url,
        statement_timeout_ms=settings.statement_timeout_ms,
        pool_size=args.db_pool,
    )
    engine.pool._timeout = 60  # type: ignore[attr-defined]  # threads queue for connections
    store = CallStore(make_session_factory(engine), default_region=settings.default_region)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            fd = self.request.fileno()
            try:
                channel = Pyst2Channel.on_fds(fd, fd)
                program = agi_call(
                    channel.env,
                    store,
                    node="baseline",
                    transport="fastagi",
                    region=settings.default_region,
                )
                execute_sync(program, channel)
            except Exception as exc:  # one call's failure must not stop the server
                print(f"call failed: {exc!r}", file=sys.stderr)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024

    server = Server(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"baseline listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
    engine.dispose()


if __name__ == "__main__":
    main()
