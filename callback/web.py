"""The Twilio webhooks as ``twisted.web`` resources under ``/twilio/voice/``.

Each request goes through the same gate before any row is read: a body of at most
``MAX_BODY_BYTES`` (``413``), a well-formed form (``400`` with the reason), and a valid
``X-Twilio-Signature`` against the public URL (``403``, journaled, nothing else done). Then the
webhook runs off the reactor (``callback.service``) and its TwiML is sent back.

:func:`twilio_resource` is what ``telegestion serve`` mounts at ``/twilio``: the webhooks when
Twilio is configured, else a resource that answers ``503`` and says which settings are missing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from callback.config import (
    FLOW_PATH,
    INCOMING_PATH,
    STATUS_PATH,
    CallbackConfig,
    CallbackNotConfigured,
    callback_config,
)
from callback.dialer import Dialer, TwilioDialer
from callback.forms import MAX_BODY_BYTES, FormError, decode_form, decode_query
from callback.service import CallbackService
from callback.signature import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    WebhookSignature,
    signed_url,
)
from callback.store import CallbackStore
from callback.webhooks import TEXT_TYPE, CallbackWebhooks, WebAnswer
from ivr.call_store import CallStore, utc_now
from ivr.callback_flow import CallbackSettings
from ivr.flow_tuning import flow_settings as tuned_flow_settings
from telegestion import logs
from telegestion.settings import Settings

log = logging.getLogger(__name__)

WEBHOOKS = {"incoming": INCOMING_PATH, "flow": FLOW_PATH, "status": STATUS_PATH}


class Webhook(resource.Resource):
    """One webhook URL: the gate (size, form, signature), then the service."""

    isLeaf = True

    def __init__(
        self, kind: str, service: CallbackService, signature: WebhookSignature, public_url: str
    ) -> None:
        super().__init__()
        self.kind = kind
        self.path = WEBHOOKS[kind]
        self.service = service
        self.signature = signature
        self.public_url = public_url

    def render(self, request: server.Request) -> bytes | int:
        if request.method != b"POST":
            request.setHeader(b"allow", b"POST")
            return _plain(request, 405, "Twilio webhooks are POST only")
        return self.render_POST(request)

    def render_POST(self, request: server.Request) -> bytes | int:
        with logs.bind(call=_call_sid(request)):  # the call id on every line (telegestion.logs)
            return self._render_post(request)

    def _render_post(self, request: server.Request) -> bytes | int:
        declared = request.getHeader(b"content-length")
        assert request.content is not None
        body = request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES or (declared and _int(declared) > MAX_BODY_BYTES):
            return _plain(request, 413, f"body over {MAX_BODY_BYTES} bytes")
        uri = request.uri.decode("latin-1")
        try:
            form = decode_form(body, _header(request, b"content-type"))
            query = decode_query(urlsplit(uri).query)
        except FormError as exc:
            return _plain(request, 400, str(exc))
        url = signed_url(self.public_url, uri)
        signature = _header(request, SIGNATURE_HEADER.encode())
        if not self.signature.is_valid(
            url, form, signature, _header(request, SIGNATURE_SETTINGS_HEADER.encode())
        ):
            reason = "bad_twilio_signature" if signature else "missing_twilio_signature"
            log.warning(
                "refused %s webhook: %s (CallSid %r)", self.kind, reason, form.get("CallSid")
            )
            remote = getattr(request.getClientAddress(), "host", "")
            d = self.service.rejected(self.path, form, reason, str(remote))
            d.addErrback(
                lambda f: log.error("journal of a refused webhook: %s", f.getErrorMessage())
            )
            d.addCallback(lambda _: _reply(request, WebAnswer(403, f"{reason}\n", TEXT_TYPE)))
            return server.NOT_DONE_YET
        self.service.handle(self.kind, form, query).addCallback(
            lambda answer: _reply(request, answer)
        )
        return server.NOT_DONE_YET


class NotConfigured(resource.Resource):
    """Every Twilio URL on a worker without Twilio settings: ``503`` and what to set."""

    isLeaf = True

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def render(self, request: server.Request) -> bytes:
        request.setResponseCode(503)
        request.setHeader(b"content-type", TEXT_TYPE.encode())
        return f"{self.message}\n".encode()


def webhook_tree(service: CallbackService, config: CallbackConfig) -> resource.Resource:
    """``/twilio`` with ``voice/incoming``, ``voice/flow`` and ``voice/status`` under it."""
    signature = WebhookSignature(config.auth_token)
    voice = resource.Resource()
    for kind in WEBHOOKS:
        voice.putChild(kind.encode(), Webhook(kind, service, signature, config.public_url))
    twilio = resource.Resource()
    twilio.putChild(b"voice", voice)
    return twilio


@dataclasses.dataclass
class CallbackWorker:
    """The call-back of one worker: mount ``resource`` at ``/twilio``; ``service`` is ``None``
    when Twilio is not configured (``resource`` then answers 503)."""

    resource: resource.Resource
    service: CallbackService | None


def twilio_resource(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    reactor: Any,
    threadpool: ThreadPool,
    dialer: Dialer | None = None,
    clock: IReactorTime | None = None,
    wall_clock: Callable[[], dt.datetime] = utc_now,
    flow_settings: CallbackSettings | None = None,
) -> CallbackWorker:
    """Everything the call-back needs in one worker. Blocking work runs on ``threadpool``;
    ``clock`` (default: ``reactor``) times the call-back delays, retries and polls; ``dialer``
    defaults to Twilio's REST client; ``flow_settings`` to the flow's defaults with the waits
    of ``settings``, as on the landline."""
    try:
        config = callback_config(settings)
    except CallbackNotConfigured as exc:
        log.info("%s", exc)
        return CallbackWorker(NotConfigured(str(exc)), None)

    def run_blocking(fn: Callable[..., Any], *args: Any) -> Deferred[Any]:
        return deferToThreadPool(reactor, threadpool, fn, *args)

    if flow_settings is None:
        tuned = tuned_flow_settings(settings, CallbackSettings())
        assert isinstance(tuned, CallbackSettings)
        flow_settings = tuned
    webhooks = CallbackWebhooks(
        config,
        CallStore(sessions, clock=wall_clock, default_region=config.default_region),
        CallbackStore(sessions),
        clock=wall_clock,
        flow_settings=flow_settings,
    )
    service = CallbackService(
        config,
        webhooks,
        dialer
        or TwilioDialer(
            config.account_sid,
            config.auth_token,
            api_url=config.api_url,
            ring_timeout_s=config.ring_timeout_s,
        ),
        clock=clock or reactor,
        run_blocking=run_blocking,
        wall_clock=wall_clock,
        busy_clock=reactor,
    )
    return CallbackWorker(webhook_tree(service, config), service)


def _reply(request: server.Request, answer: WebAnswer) -> None:
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.setResponseCode(answer.status)
    request.setHeader(b"content-type", answer.content_type.encode())
    request.write(answer.body.encode("utf-8"))
    request.finish()


def _plain(request: server.Request, status: int, message: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", TEXT_TYPE.encode())
    return f"{message}\n".encode()


def _header(request: server.Request, name: bytes) -> str | None:
    value: Any = request.getHeader(name)
    if value is None:
        return None
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _call_sid(request: server.Request) -> str | None:
    """The CallSid of a webhook, for the logs only (the form is parsed and checked later)."""
    sid = request.args.get(b"CallSid") if request.args else None
    return sid[0].decode("latin-1")[:64] if sid else None


def _int(text: Any) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return 0
