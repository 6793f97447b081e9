"""Verifying SESami's webhooks on the receiving side (Standard Webhooks).

    from sesami_client import verify_webhook, WebhookVerificationError

    def receive(request):                                  # any web framework
        try:
            event = verify_webhook(request.body, request.headers, secret=SECRET)   # whsec_...
        except WebhookVerificationError:
            return 400                                     # not from SESami, tampered or stale
        if seen(event_id := request.headers["webhook-id"]):  # retries keep the same id
            return 200
        handle(event["type"], event["data"])
        return 200                                         # 2xx: delivered; 410: disable me

The signature covers `webhook-id`, `webhook-timestamp` and the exact body bytes: verify before
parsing, with the raw body. A timestamp more than 5 minutes from now is refused (replays). During
a secret rotation SESami signs with both secrets, so the old and the new one both verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

__all__ = ["WebhookVerificationError", "verify_webhook"]


def verify_webhook(body: bytes | str, headers: Mapping[str, str], *, secret: str) -> dict[str, Any]:
    """The webhook's payload (`{"type", "timestamp", "data"}`) if SESami signed it with `secret`
    (or the secret it is rotating from) within the last 5 minutes; WebhookVerificationError if
    not."""
    payload = Webhook(secret).verify(body, {str(k): str(v) for k, v in headers.items()})
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return payload
