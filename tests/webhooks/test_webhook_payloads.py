"""What an email.* payload says of who opened or clicked: the class ingest gave the event (its
`engagement` and `detail.engagement_reason`, as its row in GET /events); without one, the
event's own signal; other events carry none."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.webhooks import payloads

from tests.conftest import load_event


def _data(name: str, engagement: Any = None) -> list[dict[str, Any]]:
    event = parse_event(parse_envelope(load_event(name)))
    return [json.loads(m.body)["data"] for m in payloads.from_ses_event("t1", event, engagement)]


def test_an_open_carries_the_class_ingest_gave_it() -> None:
    given = {"engagement": "scanner", "engagement_reason": "timing:near_delivery"}
    (data,) = _data("engagement/open_gateway_prefetch", given)
    assert data["engagement"] == "scanner"
    assert data["detail"]["engagement"] == "scanner"
    assert data["detail"]["engagement_reason"] == "timing:near_delivery"
    assert data["detail"]["user_agent"]  # the status detail is still all there


def test_without_a_class_from_ingest_a_click_carries_its_own_signal() -> None:
    (data,) = _data("engagement/click_barracuda")
    assert (data["engagement"], data["detail"]["engagement_reason"]) == ("scanner", "ua:automation")
    (data,) = _data("engagement/open_yahoo_proxy")
    assert data["engagement"] == "image_proxy"


def test_other_events_carry_no_class() -> None:
    for data in _data("delivery_multi"):
        assert data["engagement"] is None
        assert "engagement" not in data["detail"] and "engagement_reason" not in data["detail"]
