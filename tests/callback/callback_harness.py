"""Test harness for the call-back: a fake Twilio on loopback, and Twilio's side of the calls.

- :class:`LoopbackReactor`: a private Twisted reactor in a background thread (the global
  reactor is left alone), with a thread pool for the workers' blocking work.
- :class:`FakeTwilioApi`: a small fake of Twilio's Calls API on ``127.0.0.1:0`` that answers as
  Twilio does (``201`` and a JSON call resource, or a Twilio error document) and records every
  request, so tests drive the real twilio REST client against it.
- :class:`Worker`: one ``telegestion serve`` worker's call-back (its own engine, call store,
  timers on a ``task.Clock`` and web site on loopback), as ``telegestion serve`` builds it.
- :class:`TwilioSide`: posts webhooks the way Twilio does (form-encoded, signed with the real
  ``RequestValidator.compute_signature`` over the *public* URL) and follows the TwiML.
- :class:`TestTime`: one wall clock for every worker; advancing it fires each worker's timers
  and waits until their placements are done.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import http.client
import itertools
import json
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy.orm import Session, sessionmaker
from twilio.request_validator import RequestValidator
from twisted.internet import task
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from callback.web import CallbackWorker, twilio_resource
from telegestion.settings import Settings

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "test-auth-token-4f1c"
PUBLIC_URL = "https://tg.example.test"


class LoopbackReactor:
    """A reactor of our own, running in a daemon thread, plus a pool for blocking work."""

    def __init__(self) -> None:
        self.reactor = SelectReactor()
        self.thread = threading.Thread(
            target=self.reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
        )
        self.thread.start()
        self.pool = ThreadPool(minthreads=1, maxthreads=8, name="callback-tests")
        self.pool.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` in the reactor thread and wait for it (and for its Deferred)."""
        return blockingCallFromThread(self.reactor, fn, *args)

    def listen(self, root: resource.Resource) -> tuple[Any, int]:
        site = server.Site(root, reactor=self.reactor)
        site.noisy = False
        port = self.call(self.reactor.listenTCP, 0, site, 50, "127.0.0.1")
        return port, port.getHost().port

    def stop(self) -> None:
        self.pool.stop()
        self.reactor.callFromThread(self.reactor.stop)
        self.thread.join(5)


# --- the fake Calls API ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ApiRequest:
    """One request the fake API got: path, basic-auth user and password, form fields, and the
    SID it answered with (``None`` when it answered an error)."""

    method: str
    path: str
    auth: tuple[str, str] | None
    form: Mapping[str, str]
    sid: str | None


class FakeTwilioApi(resource.Resource):
    """``POST /2010-04-01/Accounts/<sid>/Calls.json`` answered like Twilio, and recorded."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[ApiRequest] = []
        self.failures: list[tuple[int, int, str]] = []
        self._lock = threading.Lock()
        self.url = ""

    def fail_next(self, status: int = 400, code: int = 21217, message: str = "Invalid") -> None:
        """Answer the next call creation with a Twilio error document."""
        self.failures.append((status, code, message))

    def calls(self) -> list[ApiRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/Calls.json")]

    def render(self, request: server.Request) -> bytes:
        assert request.content is not None
        body = request.content.read().decode()
        form = dict(parse_qsl(body, keep_blank_values=True))
        auth = None
        header = request.getHeader(b"authorization")
        if header and header.startswith(b"Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            auth = (user, password)
        path = request.path.decode()
        expected = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
        request.setHeader(b"content-type", b"application/json")
        with self._lock:
            if request.method != b"POST" or path != expected:
                self.requests.append(ApiRequest(request.method.decode(), path, auth, form, None))
                request.setResponseCode(404)
                return json.dumps({"code": 20404, "message": "Not found", "status": 404}).encode()
            if self.failures:
                status, code, message = self.failures.pop(0)
                self.requests.append(ApiRequest("POST", path, auth, form, None))
                request.setResponseCode(status)
                return json.dumps(
                    {
                        "code": code,
                        "message": message,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": status,
                    }
                ).encode()
            sid = "CA" + uuid.uuid4().hex
            self.requests.append(ApiRequest("POST", path, auth, form, sid))
        request.setResponseCode(201)
        return json.dumps(
            {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "to": form.get("To"),
                "from": form.get("From"),
                "status": "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json",
            }
        ).encode()


# --- time ----------------------------------------------------------------------------------------


class TestTime:
    """The wall clock every worker reads, and the timers of each worker."""

    __test__ = False

    def __init__(self, loop: LoopbackReactor, start: dt.datetime) -> None:
        self.loop = loop
        self.now = start
        self.workers: list[Worker] = []

    def wall_clock(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float, *, workers: list[Worker] | None = None) -> None:
        """Move time on; the timers of ``workers`` (default: all) fire, placements finish."""
        self.now += dt.timedelta(seconds=seconds)
        for worker in self.workers if workers is None else workers:
            self.loop.call(worker.clock.advance, seconds)
            worker.wait_idle()
        for worker in self.workers:
            worker.wait_idle()


# --- one worker ----------------------------------------------------------------------------------


class Worker:
    """One serve worker's call-back stack on loopback."""

    def __init__(
        self,
        loop: LoopbackReactor,
        time: TestTime,
        sessions: sessionmaker[Session],
        api: FakeTwilioApi,
        *,
        delay_s: float = 5.0,
        retry_s: float = 60.0,
    ) -> None:
        self.loop = loop
        self.clock = task.Clock()
        settings = Settings(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            public_url=PUBLIC_URL,
            twilio_api_url=api.url,
            callback_delay_s=delay_s,
            callback_retry_s=retry_s,
        )
        self.callback: CallbackWorker = twilio_resource(
            settings,
            sessions,
            reactor=loop.reactor,
            threadpool=loop.pool,
            clock=self.clock,
            wall_clock=time.wall_clock,
        )
        assert self.callback.service is not None
        self.service = self.callback.service
        root = resource.Resource()
        root.putChild(b"twilio", self.callback.resource)
        self.port, self.port_number = loop.listen(root)
        loop.call(self.service.start)
        self.wait_idle()
        time.workers.append(self)

    def wait_idle(self) -> None:
        self.loop.call(self.service.idle)

    def stop(self) -> None:
        self.loop.call(self.service.stop)
        self.wait_idle()
        self.loop.call(self.port.stopListening)


# --- Twilio's side ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    """An HTTP answer to a webhook, with its TwiML read."""

    status: int
    body: str

    def root(self) -> ET.Element:
        return ET.fromstring(self.body)

    def says(self) -> list[str]:
        return [e.text or "" for e in self.root().iter("Say")]

    def spoken(self) -> str:
        return " ".join(self.says())

    def gather(self) -> ET.Element | None:
        return self.root().find("Gather")

    def hangs_up(self) -> bool:
        return self.root().find("Hangup") is not None


class TwilioSide:
    """Posts webhooks as Twilio does: form-encoded, signed over the public URL."""

    def __init__(self, auth_token: str = AUTH_TOKEN) -> None:
        self.validator = RequestValidator(auth_token)
        self._sids = itertools.count(1)

    def new_sid(self) -> str:
        return f"CA{next(self._sids):032x}"

    def post(
        self,
        worker: Worker,
        public_url: str,
        params: Mapping[str, str],
        *,
        signature: str | bool | None = True,
        signed_url: str | None = None,
        body: bytes | None = None,
        content_type: str = "application/x-www-form-urlencoded; charset=utf-8",
        method: str = "POST",
    ) -> Answer:
        """POST ``params`` to ``public_url``, delivered to ``worker`` as a proxy would.

        ``signature``: ``True`` signs properly, a string is sent as is, ``None`` sends none.
        ``signed_url`` signs another URL than the one requested (what a server that checks the
        URL it sees would accept).
        """
        parts = urlsplit(public_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": content_type, "User-Agent": "TwilioProxy/1.1"}
        if signature is True:
            headers["X-Twilio-Signature"] = self.validator.compute_signature(
                signed_url or public_url, dict(params)
            )
        elif isinstance(signature, str):
            headers["X-Twilio-Signature"] = signature
        data = body if body is not None else urlencode(params).encode()
        conn = http.client.HTTPConnection("127.0.0.1", worker.port_number, timeout=30)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            return Answer(response.status, response.read().decode())
        finally:
            conn.close()

    def incoming(self, worker: Worker, mobile: str, callback_number: str, **more: str) -> Answer:
        """The carer calls our call-back number from their mobile."""
        params = {
            "CallSid": more.pop("CallSid", self.new_sid()),
            "AccountSid": ACCOUNT_SID,
            "From": mobile,
            "To": callback_number,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
            **more,
        }
        return self.post(worker, f"{PUBLIC_URL}/twilio/voice/incoming", params)


class PlacedCall:
    """An outbound call the fake API accepted, played from Twilio's side."""

    def __init__(self, twilio: TwilioSide, placed: ApiRequest) -> None:
        assert placed.sid is not None
        self.twilio = twilio
        self.sid = placed.sid
        self.to = placed.form["To"]
        self.from_ = placed.form["From"]
        self.flow_url = placed.form["Url"]
        self.status_url = placed.form["StatusCallback"]
        self.last: Answer | None = None

    def params(self, status: str = "in-progress", **more: str) -> dict[str, str]:
        return {
            "CallSid": self.sid,
            "AccountSid": ACCOUNT_SID,
            "From": self.from_,
            "To": self.to,
            "CallStatus": status,
            "Direction": "outbound-api",
            "ApiVersion": "2010-04-01",
            **more,
        }

    def answer(self, worker: Worker, answered_by: str = "human") -> Answer:
        self.last = self.twilio.post(worker, self.flow_url, self.params(AnsweredBy=answered_by))
        return self.last

    def action_url(self) -> str:
        assert self.last is not None
        gather = self.last.gather()
        assert gather is not None, f"no gather in {self.last.body}"
        return gather.attrib["action"]

    def press(
        self, worker: Worker, digits: str, *, finished_on_key: str = "", status: str = "in-progress"
    ) -> Answer:
        """The carer keys ``digits`` at the gather the last answer waits on."""
        extra = {"Digits": digits}
        if finished_on_key:
            extra["FinishedOnKey"] = finished_on_key
        self.last = self.twilio.post(worker, self.action_url(), self.params(status, **extra))
        return self.last

    def silence(self, worker: Worker, *, status: str = "in-progress") -> Answer:
        """The gather timed out with nothing keyed (``actionOnEmptyResult``)."""
        self.last = self.twilio.post(worker, self.action_url(), self.params(status))
        return self.last

    def status(self, worker: Worker, status: str, **more: str) -> Answer:
        return self.twilio.post(worker, self.status_url, self.params(status, **more))

    def hang_up(self, worker: Worker) -> Answer:
        """The carer hangs up: Twilio's final status callback says ``completed``."""
        return self.status(worker, "completed", CallDuration="17")


# --- reading what the workers wrote ----------------------------------------------------------


def rows(sessions: sessionmaker[Session], model: type, *where: Any) -> list[Any]:
    """Every row of ``model`` (matching ``where``), in insertion order."""
    from sqlalchemy import select

    with sessions() as session:
        return list(session.scalars(select(model).where(*where).order_by(model.id)))  # type: ignore[attr-defined]


def journal(sessions: sessionmaker[Session], call_key: str) -> tuple[Any, list[Any]]:
    """The journal row of a call and its events in order."""
    from sqlalchemy import select

    from telegestion.model import Call, CallEvent

    with sessions() as session:
        call = session.scalars(select(Call).where(Call.call_key == call_key)).one()
        events = list(
            session.scalars(
                select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.seq)
            )
        )
        return call, events
