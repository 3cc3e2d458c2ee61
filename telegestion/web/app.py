"""The coordinator and support pages (SPEC.md section 7), as one Twisted web resource.

The reactor thread only parses the request and writes the answer; everything else (database,
password hashing, templates) runs on the thread pool in :meth:`Pages.handle`, a plain function
from a :class:`WebRequest` to a :class:`WebResponse`.

Access rules, applied on every request before anything is read or written:

- no valid session: pages redirect to the login, forms answer 403;
- a form (POST) without this session's CSRF token, or posted from another origin: 403;
- an object outside the user's companies: 404, exactly as a missing one;
- resolving an anomaly is a coordinator's work: support gets 403 on that form.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from ..localtime import LocalTimeError, parse_instant
from ..model import utcnow
from ..model.vocab import ANOMALY_CODES, ANOMALY_STATUSES, RESOLUTION_ACTIONS, RESOLUTION_REASONS
from ..settings import Settings
from . import accounts, calls, queries
from .board import LABELS as BOARD_LABELS
from .security import (
    SessionPolicy,
    ThrottlePolicy,
    csrf_matches,
    csrf_token,
    new_token,
    origin_allowed,
    origin_of,
    same_value,
)

log = logging.getLogger("telegestion.web")

SESSION_COOKIE = "tg_session"
LOGIN_COOKIE = "tg_login"
#: Security headers on every page: nothing loads from elsewhere, no framing, no sniffing.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class WebRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    cookies: dict[str, str]
    origin: str | None
    host: str
    secure: bool


@dataclass
class WebResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None
    set_cookies: list[tuple[str, str, bool]] = field(default_factory=list)  # name, value, clear


def _redirect(location: str, status: int = 303) -> WebResponse:
    return WebResponse(status, location=location)


def _safe_next(target: str) -> str:
    """Only a path of this site (no scheme, no '//host') may be a post-login destination."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/anomalies"
    return target


class Pages:
    """The pages' logic: one call per request, on a pool thread."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        self.settings = settings
        self.clock = clock
        self.session_policy = SessionPolicy(
            idle=dt.timedelta(minutes=settings.web_session_idle_min),
            max_age=dt.timedelta(hours=settings.web_session_max_hours),
        )
        self.throttle = ThrottlePolicy(
            max_failures=settings.web_login_max_failures,
            lockout=dt.timedelta(minutes=settings.web_login_lockout_min),
        )
        self.secure_cookies = settings.public_url.lower().startswith("https://")
        self.public_origin = origin_of(settings.public_url) if settings.public_url else ""
        self.templates = Environment(
            loader=PackageLoader("telegestion.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(
            urlencode=urlencode,
            anomaly_codes=ANOMALY_CODES,
            anomaly_statuses=ANOMALY_STATUSES,
            actions=RESOLUTION_ACTIONS,
            reasons=RESOLUTION_REASONS,
            board_labels=BOARD_LABELS,
            local=lambda at, timezone: queries.local_text(at, timezone, seconds=True),
        )

    # --- plumbing ------------------------------------------------------------------------------

    def render(self, name: str, status: int = 200, **values: Any) -> WebResponse:
        body = self.templates.get_template(name).render(**values)
        return WebResponse(status, body.encode("utf-8"))

    def page(
        self, name: str, viewer: accounts.Viewer, status: int = 200, **values: Any
    ) -> WebResponse:
        return self.render(
            name, status, viewer=viewer, csrf=csrf_token(viewer.csrf_secret), **values
        )

    def not_found(self, viewer: accounts.Viewer | None) -> WebResponse:
        if viewer is None:
            return self.render("error.html", 404, viewer=None, message="Not found.")
        return self.page("error.html", viewer, 404, message="Not found.")

    def forbidden(self, viewer: accounts.Viewer | None, message: str) -> WebResponse:
        if viewer is None:
            return self.render("error.html", 403, viewer=None, message=message)
        return self.page("error.html", viewer, 403, message=message)

    def _origin_ok(self, request: WebRequest) -> bool:
        allowed = {f"http://{request.host}".lower(), f"https://{request.host}".lower()}
        if self.public_origin:
            allowed.add(self.public_origin)
        return origin_allowed(request.origin, frozenset(allowed))

    def handle(self, request: WebRequest) -> WebResponse:
        """Answer one request; runs on a pool thread."""
        now = self.clock()
        parts = [p for p in request.path.split("/") if p]
        if parts == ["login"]:
            return self.login(request, now)
        with self.sessions() as session, session.begin():
            viewer = accounts.viewer_of(
                session, request.cookies.get(SESSION_COOKIE), now, self.session_policy
            )
        if viewer is None:
            if request.method == "POST":
                return self.forbidden(None, "Your session has ended: log in again.")
            target = request.path + ("?" + urlencode(request.query) if request.query else "")
            return _redirect("/login?" + urlencode({"next": target}))
        if request.method == "POST":
            if not self._origin_ok(request):
                return self.forbidden(viewer, "This form was sent from another site.")
            if not csrf_matches(viewer.csrf_secret, request.form.get("csrf")):
                return self.forbidden(
                    viewer, "This form has expired or was not sent by this site: reload the page."
                )
        return self.route(request, viewer, parts, now)

    def route(
        self, request: WebRequest, viewer: accounts.Viewer, parts: list[str], now: dt.datetime
    ) -> WebResponse:
        get = request.method in ("GET", "HEAD")
        post = request.method == "POST"
        match parts:
            case [] if get:
                return _redirect("/anomalies")
            case ["logout"] if post:
                return self.logout(request)
            case ["anomalies"] if get:
                return self.anomaly_list(request, viewer)
            case ["anomalies", number] if get and number.isdigit():
                return self.anomaly(viewer, int(number), request.query.get("done") == "1")
            case ["anomalies", number, "resolve"] if post and number.isdigit():
                return self.resolve(request, viewer, int(number), now)
            case ["board"] if get:
                return self.board(request, viewer, now)
            case ["calls"] if get:
                return self.call_search(request, viewer)
            case ["calls", number] if get and number.isdigit():
                return self.call_trace(viewer, int(number))
            case ["calls", number, "ticket"] if get and number.isdigit():
                return self.call_ticket(viewer, int(number))
        return self.not_found(viewer)

    # --- login and logout ----------------------------------------------------------------------

    def login(self, request: WebRequest, now: dt.datetime) -> WebResponse:
        """The login form carries a double-submitted random value (cookie and hidden field), so
        another site cannot log a browser in to an account of its choosing."""
        next_page = _safe_next(request.query.get("next") or request.form.get("next", ""))
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if request.method == "POST":
            if not self._origin_ok(request) or not same_value(nonce, request.form.get("csrf")):
                return self.render(
                    "login.html",
                    403,
                    viewer=None,
                    csrf=nonce,
                    next=next_page,
                    error="This form has expired: try again.",
                    login=request.form.get("login", ""),
                )
            try:
                with self.sessions() as session, session.begin():
                    result = accounts.log_in(
                        session,
                        request.form.get("login", ""),
                        request.form.get("password", ""),
                        now,
                        self.session_policy,
                        self.throttle,
                    )
            except IntegrityError:
                # Two failures for one login at the same instant: the other one counted.
                result = accounts.LoginResult(refusal=accounts.WRONG)
            if result.token is None:
                return self.render(
                    "login.html",
                    401,
                    viewer=None,
                    csrf=nonce,
                    next=next_page,
                    error=result.refusal,
                    login=request.form.get("login", ""),
                )
            response = _redirect(next_page)
            response.set_cookies.append((SESSION_COOKIE, result.token, False))
            response.set_cookies.append((LOGIN_COOKIE, "", True))
            return response
        if request.method not in ("GET", "HEAD"):
            return self.render("error.html", 405, viewer=None, message="Method not allowed.")
        fresh = not nonce
        nonce = nonce or new_token()
        response = self.render(
            "login.html", viewer=None, csrf=nonce, next=next_page, error=None, login=""
        )
        if fresh:
            response.set_cookies.append((LOGIN_COOKIE, nonce, False))
        return response

    def logout(self, request: WebRequest) -> WebResponse:
        with self.sessions() as session, session.begin():
            accounts.log_out(session, request.cookies.get(SESSION_COOKIE))
        response = _redirect("/login")
        response.set_cookies.append((SESSION_COOKIE, "", True))
        return response

    # --- anomalies -----------------------------------------------------------------------------

    def anomaly_list(self, request: WebRequest, viewer: accounts.Viewer) -> WebResponse:
        wanted, problems = queries.parse_filter(request.query)
        with self.sessions() as session:
            rows, total = queries.anomaly_page(session, viewer, wanted)
        pages = max(1, -(-total // queries.PAGE_SIZE))
        return self.page(
            "anomalies.html",
            viewer,
            rows=rows,
            total=total,
            pages=pages,
            f=wanted,
            problems=problems,
        )

    def anomaly(
        self,
        viewer: accounts.Viewer,
        anomaly_id: int,
        done: bool = False,
        *,
        error: str | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> WebResponse:
        with self.sessions() as session:
            view = queries.anomaly_view(session, viewer, anomaly_id)
        if view is None:
            return self.not_found(viewer)
        return self.page(
            "anomaly.html",
            viewer,
            status,
            a=view,
            done=done,
            error=error,
            form=form or {},
        )

    def resolve(
        self, request: WebRequest, viewer: accounts.Viewer, anomaly_id: int, now: dt.datetime
    ) -> WebResponse:
        from reconciliation.resolutions import ResolutionRefused, ResolutionRequest, resolve_anomaly

        with self.sessions() as session:
            anomaly = queries.visible_anomaly_row(session, viewer, anomaly_id)
            timezone = ""
            if anomaly is not None:
                company = viewer.company(anomaly.company_id)
                timezone = company.timezone if company else "UTC"
        if anomaly is None:
            return self.not_found(viewer)
        if not viewer.may_resolve:
            return self.forbidden(viewer, "Resolving anomalies is a coordinator's work.")
        form = request.form
        try:
            start = parse_instant(form["start"], timezone) if form.get("start") else None
            end = parse_instant(form["end"], timezone) if form.get("end") else None
        except LocalTimeError as exc:
            return self.anomaly(viewer, anomaly_id, error=str(exc), form=form, status=400)
        wanted = ResolutionRequest(
            anomaly_id=anomaly_id,
            action=form.get("action", ""),
            reason=form.get("reason", ""),
            note=form.get("note", "")[:2000],
            start=start,
            end=end,
            intervention_ref=form.get("intervention") or None,
            user_login=viewer.login,
        )
        try:
            resolve_anomaly(self.engine, wanted, now=now)
        except ResolutionRefused as exc:
            message = str(exc).replace("--start", "start").replace("--end", "end")
            message = message.replace("--intervention REF", "an intervention reference")
            return self.anomaly(viewer, anomaly_id, error=message, form=form, status=400)
        return _redirect(f"/anomalies/{anomaly_id}?done=1")

    # --- the board -----------------------------------------------------------------------------

    def board(self, request: WebRequest, viewer: accounts.Viewer, now: dt.datetime) -> WebResponse:
        company = request.query.get("company", "")
        with self.sessions() as session:
            companies = queries.board(session, viewer, company, now)
        return self.page(
            "board.html",
            viewer,
            companies=companies,
            company=company,
            now=queries.local_text(
                now, viewer.companies[0].timezone if viewer.companies else "UTC"
            ),
        )

    # --- calls ---------------------------------------------------------------------------------

    def call_search(self, request: WebRequest, viewer: accounts.Viewer) -> WebResponse:
        with self.sessions() as session:
            found = calls.search(session, viewer, request.query)
        return self.page("calls.html", viewer, s=found)

    def call_trace(self, viewer: accounts.Viewer, call_id: int) -> WebResponse:
        with self.sessions() as session:
            trace = calls.trace(session, viewer, call_id)
        if trace is None:
            return self.not_found(viewer)
        journal = [
            queries.EventView(
                e.seq,
                queries.local_text(e.at, trace.timezone, seconds=True),
                e.kind,
                queries.compact(e.detail),
            )
            for e in trace.events
        ]
        return self.page("call.html", viewer, t=trace, journal=journal)

    def call_ticket(self, viewer: accounts.Viewer, call_id: int) -> WebResponse:
        with self.sessions() as session:
            trace = calls.trace(session, viewer, call_id)
        if trace is None:
            return self.not_found(viewer)
        return self.page("ticket.html", viewer, t=trace, ticket=calls.ticket(trace))


# --- the Twisted side --------------------------------------------------------------------------


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in pairs:
        out.setdefault(key, value)
    return out


#: The largest form body a page accepts: a resolution with a long note is a few KB.
MAX_FORM_BYTES = 64 * 1024
#: The longest value of one form field (a note included).
MAX_FIELD_CHARS = 4000


class FormRefused(Exception):
    """A form no page should read: too big, a NUL character, a field too long."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _checked_form(body: bytes) -> dict[str, str]:
    if len(body) > MAX_FORM_BYTES:
        raise FormRefused(413, f"form larger than {MAX_FORM_BYTES} bytes")
    form = _first_values(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    for name, value in form.items():
        if "\x00" in name or "\x00" in value:
            raise FormRefused(400, "a form field holds a NUL character")
        if len(value) > MAX_FIELD_CHARS:
            raise FormRefused(400, f"form field {name[:40]!r} longer than {MAX_FIELD_CHARS}")
    return form


def web_request(request: server.Request) -> WebRequest:
    """The parts of a Twisted request the pages use, decoded (bad UTF-8 is replaced); a form
    too big, with a NUL or an overlong field raises :class:`FormRefused` before any page
    reads it (a NUL would fail in PostgreSQL, a huge note would fill the audit trail)."""
    uri = request.uri.decode("utf-8", "replace")
    split = urlsplit(uri)
    query = _first_values(parse_qsl(split.query, keep_blank_values=True))
    form: dict[str, str] = {}
    kind = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
    if request.method == b"POST" and kind == b"application/x-www-form-urlencoded":
        body = request.content.read(MAX_FORM_BYTES + 1) if request.content is not None else b""
        form = _checked_form(body)
    cookies: dict[str, str] = {}
    for name in (SESSION_COOKIE, LOGIN_COOKIE):
        value = request.getCookie(name.encode())
        if value is not None:
            cookies[name] = value.decode("ascii", "replace")
    origin = request.getHeader(b"origin")
    if origin is None and request.getHeader(b"referer"):
        origin = origin_of(request.getHeader(b"referer").decode("latin-1")).encode() or None
    return WebRequest(
        method=request.method.decode("ascii", "replace").upper(),
        path=split.path,
        query=query,
        form=form,
        cookies=cookies,
        origin=origin.decode("latin-1") if origin is not None else None,
        host=(request.getHeader(b"host") or b"").decode("latin-1"),
        secure=request.isSecure(),
    )


class _PageResource(resource.Resource):
    isLeaf = True

    def __init__(self, pages: Pages, reactor: Any, threadpool: ThreadPool) -> None:
        super().__init__()
        self.pages = pages
        self.reactor = reactor
        self.threadpool = threadpool

    def render(self, request: server.Request) -> Any:
        try:
            asked = web_request(request)
        except FormRefused as refused:
            log.warning("form refused on %r: %s", request.path[:200], refused)
            request.setResponseCode(refused.status)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return f"{refused}; nothing was changed.".encode()
        except Exception:  # pragma: no cover - a request Twisted parsed but we cannot
            request.setResponseCode(400)
            return b"bad request"
        finished = [False]
        request.notifyFinish().addErrback(lambda _: finished.__setitem__(0, True))

        def answer(response: WebResponse) -> None:
            if finished[0]:
                return
            self._write(request, response)

        def failed(failure: Failure) -> None:
            log.error("page %s failed: %s", asked.path, failure.getTraceback())
            answer(WebResponse(500, b"Internal error; it has been logged.", "text/plain"))

        d = deferToThreadPool(self.reactor, self.threadpool, self.pages.handle, asked)
        d.addCallbacks(answer, failed)
        return server.NOT_DONE_YET

    def _write(self, request: server.Request, response: WebResponse) -> None:
        request.setResponseCode(response.status)
        request.setHeader(b"content-type", response.content_type.encode())
        for name, value in _HEADERS.items():
            request.setHeader(name.encode(), value.encode())
        if response.location:
            request.setHeader(b"location", response.location.encode())
        for name, value, clear in response.set_cookies:
            request.addCookie(
                name.encode(),
                value.encode(),
                path=b"/",
                httpOnly=True,
                secure=self.pages.secure_cookies,
                sameSite="lax",
                max_age=b"0" if clear else None,
            )
        if request.method != b"HEAD":
            request.write(response.body)
        request.finish()


class _Root(resource.Resource):
    """Every path is a page, except the children put here (``/static``, and whatever the
    server mounts beside the pages: ``/healthz``, ``/twilio``, ``/metrics``)."""

    def __init__(self, pages: _PageResource) -> None:
        super().__init__()
        self.pages = pages

    def getChild(self, path: bytes, request: server.Request) -> resource.Resource:
        return self.pages

    def render(self, request: server.Request) -> Any:
        return self.pages.render(request)


class _Asset(resource.Resource):
    """A file of the package, served from memory (cacheable for an hour)."""

    isLeaf = True

    def __init__(self, body: bytes, content_type: bytes) -> None:
        super().__init__()
        self.body = body
        self.content_type = content_type

    def render_GET(self, request: server.Request) -> bytes:
        request.setHeader(b"content-type", self.content_type)
        request.setHeader(b"cache-control", b"max-age=3600")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return self.body


def _stylesheet() -> bytes:
    return resources.files("telegestion.web").joinpath("static/style.css").read_bytes()


def coordinator_site(
    engine: Engine,
    settings: Settings,
    reactor: Any,
    threadpool: ThreadPool,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
) -> resource.Resource:
    """The root resource of the pages: mount it as the site's root and ``putChild`` the other
    endpoints on it (they take precedence over the pages)."""
    pages = Pages(engine, settings, clock=clock)
    root = _Root(_PageResource(pages, reactor, threadpool))
    assets = resource.Resource()
    assets.putChild(b"style.css", _Asset(_stylesheet(), b"text/css; charset=utf-8"))
    root.putChild(b"static", assets)
    return root
