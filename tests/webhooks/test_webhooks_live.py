"""`make dev`'s webhooks as a newcomer sees them: mail sent to the bounce simulator through the
API becomes signed deliveries at the demo receiver, through the real ingest, the webhook queue
(moto's SQS) and the delivery handler; the receiver verifies each with `standardwebhooks`, and
the tenant's delivery log shows them delivered."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from tests.live_stack import LiveStack

BOUNCE = "bounce@simulator.amazonses.com"


def _received(stack: LiveStack) -> list[dict[str, Any]]:
    url = f"{stack.info['webhook_receiver']}/deliveries.json"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        items: list[dict[str, Any]] = json.loads(response.read())
    return items


def test_a_bounce_reaches_the_demo_receiver_signed_and_verified(live_stack: LiveStack) -> None:
    token = live_stack.token()
    status, sent = live_stack.post(
        "/mail",
        {"from": "news@example.net", "to": BOUNCE, "subject": "Webhooks", "text": "Hi"},
        token,
    )
    assert status == 200, sent
    deadline = time.monotonic() + 60
    bounced: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not bounced:
        bounced = [
            r
            for r in _received(live_stack)
            if r["type"] == "email.bounced"
            and r["payload"]["data"]["message_id"] == sent["message_id"]
        ]
        time.sleep(0.5)
    assert bounced, _received(live_stack)[:5]
    [delivery] = bounced
    assert delivery["verified"] is True
    data = delivery["payload"]["data"]
    assert data["recipient"] == BOUNCE and data["detail"]["bounce_type"] == "Permanent"
    kinds = {r["type"] for r in _received(live_stack) if r["verified"]}
    assert {"email.bounced", "suppression.added"} <= kinds
    assert all(r["verified"] for r in _received(live_stack))
    endpoints = live_stack.get("/webhooks", token)["endpoints"]
    [demo] = [e for e in endpoints if e["url"].startswith(live_stack.info["webhook_receiver"])]
    log = live_stack.get(f"/webhooks/{demo['id']}/deliveries?limit=100", token)["items"]
    assert any(e["status"] == "delivered" and e["type"] == "email.bounced" for e in log)
