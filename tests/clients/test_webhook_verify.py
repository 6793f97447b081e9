"""The client's webhook verification: what SESami signs (chalicelib.webhooks.secrets, both
secrets during a rotation) verifies; a tampered body, another secret or an old timestamp does
not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chalicelib.webhooks import secrets
from sesami_client import WebhookVerificationError, verify_webhook

BODY = '{"type":"email.bounced","timestamp":"2026-11-02T12:00:00.000Z","data":{"id":"k:00"}}'


def test_what_sesami_signs_verifies_and_nothing_else_does() -> None:
    old, new = secrets.new_secret(), secrets.new_secret()
    now = datetime.now(UTC)
    headers = {"Content-Type": "application/json", **secrets.sign([new, old], "msg_1", now, BODY)}
    for secret in (old, new):
        assert verify_webhook(BODY.encode(), headers, secret=secret.value)["data"]["id"] == "k:00"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY.replace("k:00", "k:01"), headers, secret=new.value)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(BODY, headers, secret=secrets.new_secret().value)
    stale = secrets.sign([new], "msg_1", now - timedelta(minutes=6), BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(BODY, stale, secret=new.value)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(
            BODY, {k: v for k, v in headers.items() if k != "webhook-id"}, secret=new.value
        )
