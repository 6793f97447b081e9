"""`make dev`'s stack as a newcomer meets it: it starts, prints a login that works, seeds demo
data through the real ingest, and serves the API with the demo tenant's account connected."""

from __future__ import annotations

from tests.live_stack import LiveStack


def test_the_printed_login_reaches_the_demo_tenant_with_seeded_data(live_stack: LiveStack) -> None:
    seeded = live_stack.wait_seeded()
    assert seeded["events"] > 1000  # ~400 messages: sends, deliveries, opens, clicks, bounces
    token = live_stack.token()
    account = live_stack.get("/account", token)
    assert account["tenant_id"] == "demo"
    assert account["account_id"] == "123456789012"
    stats = live_stack.get("/stats?range=30d", token)
    assert stats["totals"]["SENT"] >= 300
    assert stats["totals"]["BOUNCED"] > 0
