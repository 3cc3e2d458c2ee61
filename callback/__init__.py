"""The Twilio call-back (SPEC.md section 4): webhooks in, outbound calls out, the same flow.

Pure parts: ``forms`` (webhook bodies), ``twiml`` (what Twilio executes), ``reply_codec`` (the
flow's replies as JSON), ``config``. Over the database: ``store`` (requests, rate limit, calls
by ``CallSid``, answered webhooks), ``turn`` (one webhook's share of the flow), ``webhooks``
(the three webhooks), ``placement`` (placing due call-backs). Around them: ``signature``
(twilio's ``RequestValidator``), ``dialer`` (twilio's REST client), ``service`` (timers and
threads) and ``web`` (the ``twisted.web`` resources that ``telegestion serve`` mounts).
"""
