"""``telegestion serve``: the FastAGI server (and HTTP) in one process."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from .context import UsageError, open_context

log = logging.getLogger("telegestion.serve")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the FastAGI server for Asterisk, and the HTTP endpoints",
        description="Serve landline calls over FastAGI (Asterisk connects to --agi-port) and "
        "HTTP (/healthz, and the Twilio call-back webhooks under /twilio/voice/) on --http-port. "
        "Stops cleanly on SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--agi-port", type=int, help="FastAGI port (default 4573)")
    parser.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    parser.add_argument("--node", help="this worker's name, part of each punch's key")
    parser.add_argument("--listen", default=None, help="interface to listen on (default: all)")
    parser.add_argument(
        "--sounds",
        type=Path,
        default=None,
        help="folder holding <lang>/telegestion/*.wav to check at start-up "
        "(default: the sounds of this checkout)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from twisted.internet import reactor
    from twisted.web import resource, server

    from callback.web import twilio_resource
    from ivr.flow_tuning import flow_settings
    from ivr.server import BUNDLED_SOUNDS, check_prompts, start_fastagi_worker

    ctx = open_context(pre_ping=False)
    settings = dataclasses.replace(
        ctx.settings,
        **{
            k: v
            for k, v in {
                "agi_port": args.agi_port,
                "http_port": args.http_port,
                "node": args.node,
                "listen_interface": args.listen,
            }.items()
            if v is not None
        },
    )
    ctx.require_schema()
    sounds = args.sounds or BUNDLED_SOUNDS
    missing = check_prompts(sounds)
    if missing:
        names = ", ".join(f"{m.language}/{m.prompt_id}" for m in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(f"prompt sound files missing in {sounds}: {names}{more}")

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    worker = start_fastagi_worker(
        reactor,
        ctx.sessions,
        node=settings.node,
        port=settings.agi_port,
        interface=settings.listen_interface,
        db_threads=settings.db_pool_size,
        default_region=settings.default_region,
        flow_settings=flow_settings(settings),
    )

    class Health(resource.Resource):
        isLeaf = True

        def render_GET(self, request: Any) -> bytes:
            from twisted.internet.threads import deferToThreadPool

            def probe() -> bool:
                with ctx.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                return True

            def answer(ok: bool, detail: str = "") -> None:
                request.setResponseCode(200 if ok else 503)
                request.setHeader(b"content-type", b"application/json")
                body = {
                    "status": "ok" if ok else "fail",
                    "database": detail or "ok",
                    "calls_in_progress": len(worker.factory.open_connections),
                    "node": settings.node,
                }
                request.write(json.dumps(body).encode())
                request.finish()

            d = deferToThreadPool(reactor, worker.threadpool, probe)
            d.addCallbacks(answer, lambda f: answer(False, f.getErrorMessage()[:200]))
            return server.NOT_DONE_YET

    root = resource.Resource()
    root.putChild(b"healthz", Health())
    # The Twilio call-back (SPEC.md section 4); answers 503 when Twilio is not configured.
    threadpool = reactor.getThreadPool()  # type: ignore[attr-defined]
    twilio = twilio_resource(settings, ctx.sessions, reactor=reactor, threadpool=threadpool)
    root.putChild(b"twilio", twilio.resource)
    if twilio.service is not None:
        reactor.callWhenRunning(twilio.service.start)  # type: ignore[attr-defined]
        reactor.addSystemEventTrigger("before", "shutdown", twilio.service.stop)  # type: ignore[attr-defined]
    site = server.Site(root)
    site.noisy = False
    http = reactor.listenTCP(settings.http_port, site, interface=settings.listen_interface)  # type: ignore[attr-defined]

    def stop(*_: object) -> None:
        reactor.callFromThread(reactor.stop)  # type: ignore[attr-defined]

    signal.signal(signal.SIGTERM, stop)
    reactor.addSystemEventTrigger("before", "shutdown", worker.stop)  # type: ignore[attr-defined]
    # Reconciliation's minute task: alerts that open and close with the clock (SPEC.md 5).
    from reconciliation.realtime import start_due_reconciler

    due = start_due_reconciler(reactor, ctx.engine, worker.threadpool)
    reactor.addSystemEventTrigger("before", "shutdown", due.stop)  # type: ignore[attr-defined]
    host, port = worker.address
    print(
        f"telegestion: node {settings.node}: FastAGI on {host or '0.0.0.0'}:{port},"
        f" HTTP on port {http.getHost().port}, database"
        f" {ctx.engine.url.render_as_string(hide_password=True)}",
        flush=True,
    )
    reactor.run()  # type: ignore[attr-defined]
    ctx.engine.dispose()
    print("telegestion: stopped", file=sys.stderr)
    return 0
