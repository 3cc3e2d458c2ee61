"""Checking ``X-Twilio-Signature`` on every webhook (SPEC.md section 4, step 6).

Twilio signs the URL it requested plus the posted fields with the account's auth token. Behind
a reverse proxy the URL this server sees (``http://10.0.0.5:8080/…``) is not the one Twilio
requested (``https://tg.example.fr/…``), so the URL checked is always the configured public
base URL followed by the path and query as received; what the ``Host`` header says is never
trusted. The check itself is twilio's own ``RequestValidator``, which also accepts the URL with
or without its default port, as Twilio signs either.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator, get_signature_algorithm

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"


def signed_url(public_url: str, request_uri: str) -> str:
    """The URL Twilio signed: the public base URL, then the path and query as received."""
    return public_url.rstrip("/") + request_uri


class WebhookSignature:
    """Validates webhooks signed with one account's auth token."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def is_valid(
        self,
        url: str,
        params: Mapping[str, str],
        signature: str | None,
        settings_header: str | None = None,
    ) -> bool:
        """Whether ``signature`` signs ``url`` and ``params``; a missing one never does."""
        if not signature:
            return False
        algorithm = get_signature_algorithm(settings_header)
        return bool(self._validator.validate(url, dict(params), signature, algorithm))
