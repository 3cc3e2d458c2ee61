"""The call-back's configuration (SPEC.md section 4, step 8), checked once at start-up.

A worker without a Twilio account still serves landline calls: :func:`callback_config` then
raises :class:`CallbackNotConfigured` with the names of the missing settings, and the web layer
answers ``503`` with that message on the Twilio URLs instead of failing on the first webhook.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode, urlsplit

from telegestion.settings import Settings

INCOMING_PATH = "/twilio/voice/incoming"
FLOW_PATH = "/twilio/voice/flow"
STATUS_PATH = "/twilio/voice/status"


class CallbackNotConfigured(Exception):
    """Twilio settings are missing or unusable; the message names them."""


@dataclasses.dataclass(frozen=True)
class CallbackConfig:
    account_sid: str
    auth_token: str
    public_url: str
    """The base URL Twilio calls, without a trailing slash; webhooks are signed against it."""
    api_url: str | None
    """Twilio's REST API base (``None``: Twilio's own), for a regional edge or a test double."""
    delay_s: float = 5.0
    retry_s: float = 60.0
    default_region: str = "FR"
    rate_window_s: float = 120.0
    """One call-back per mobile per this many seconds (SPEC.md: two minutes)."""
    max_attempts: int = 2
    """Calls placed per call-back: the first and one retry."""
    ring_timeout_s: int = 30
    """How long the carer's mobile rings before Twilio reports ``no-answer``."""
    poll_interval_s: float = 5.0
    """How often a worker looks for due call-backs that no worker scheduled (one died)."""
    lease_s: float = 30.0
    """How long a worker may hold a call (a webhook) or a call-back it is placing."""

    def url(self, path: str, **query: str | int) -> str:
        """The public URL of one of our paths, as Twilio must call it (and signs it)."""
        suffix = f"?{urlencode(query)}" if query else ""
        return f"{self.public_url}{path}{suffix}"


def callback_config(settings: Settings) -> CallbackConfig:
    """The call-back configuration from the settings, or :class:`CallbackNotConfigured`."""
    missing = [
        name
        for name, value in (
            ("TELEGESTION_TWILIO_ACCOUNT_SID", settings.twilio_account_sid),
            ("TELEGESTION_TWILIO_AUTH_TOKEN", settings.twilio_auth_token),
            ("TELEGESTION_PUBLIC_URL", settings.public_url),
        )
        if not value.strip()
    ]
    if missing:
        raise CallbackNotConfigured(
            "Twilio call-back is not configured on this worker: set " + ", ".join(missing)
        )
    public_url = _base_url("TELEGESTION_PUBLIC_URL", settings.public_url)
    api_url = (
        _base_url("TELEGESTION_TWILIO_API_URL", settings.twilio_api_url)
        if settings.twilio_api_url.strip()
        else None
    )
    for name, value in (
        ("TELEGESTION_CALLBACK_DELAY_S", settings.callback_delay_s),
        ("TELEGESTION_CALLBACK_RETRY_S", settings.callback_retry_s),
    ):
        if value < 0:
            raise CallbackNotConfigured(f"{name} must not be negative, not {value}")
    return CallbackConfig(
        account_sid=settings.twilio_account_sid.strip(),
        auth_token=settings.twilio_auth_token.strip(),
        public_url=public_url,
        api_url=api_url,
        delay_s=settings.callback_delay_s,
        retry_s=settings.callback_retry_s,
        default_region=settings.default_region,
    )


def _base_url(name: str, raw: str) -> str:
    text = raw.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise CallbackNotConfigured(
            f"{name} must be a base URL such as https://tg.example.fr, not {raw!r}"
        )
    return text
