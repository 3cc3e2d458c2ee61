"""Placing the outbound call-back call with twilio's REST client.

The client is blocking (``requests``), so :class:`TwilioDialer` is only ever called on a worker
thread. ``TELEGESTION_TWILIO_API_URL`` replaces the API's base URL: the twilio library builds
every Calls URL from its ``Api`` domain's ``base_url``, so setting that one attribute points the
real client, with its real request encoding and error handling, at a regional edge or at the
test double. Edge and region rewriting is turned off then, as it would rewrite that host.
"""

from __future__ import annotations

from typing import Protocol

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

#: Seconds to wait for Twilio's API: a worker thread must not hang on a network fault.
API_TIMEOUT_S = 10.0


class Dialer(Protocol):
    def place(self, *, to: str, from_: str, url: str, status_callback: str) -> str:
        """Place the call; returns its ``CallSid``, raises when Twilio refuses it."""
        ...


class TwilioDialer:
    """Places calls through Twilio's Calls API (``calls.create``)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        api_url: str | None = None,
        ring_timeout_s: int = 30,
        api_timeout_s: float = API_TIMEOUT_S,
    ) -> None:
        self.client = Client(
            account_sid, auth_token, http_client=TwilioHttpClient(timeout=api_timeout_s)
        )
        if api_url:
            self.client.edge = None
            self.client.region = None
            self.client.api.base_url = api_url.rstrip("/")
        self.ring_timeout_s = ring_timeout_s

    def place(self, *, to: str, from_: str, url: str, status_callback: str) -> str:
        """Call ``to`` from our call-back number; Twilio fetches ``url`` once the call is
        answered (after answering-machine detection, so ``AnsweredBy`` comes with it) and posts
        the final status to ``status_callback``."""
        call = self.client.calls.create(
            to=to,
            from_=from_,
            url=url,
            method="POST",
            status_callback=status_callback,
            status_callback_method="POST",
            machine_detection="Enable",
            timeout=self.ring_timeout_s,
        )
        if not call.sid:
            raise RuntimeError("Twilio accepted the call but gave no CallSid")
        return str(call.sid)
