"""The demo traffic is what the README says it is: gateways fetch the images and every link
within a second of delivery (inside the classifier's windows: 3 s of delivery, 2 s between
links), and every Apple relay address it uses is inside the shipped sample of Apple's ranges."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from chalicelib.events.engagement import BURST_WINDOW
from chalicelib.events.relay_ranges import DEFAULT_PATH, load

from devstack.traffic import APPLE_RELAY, traffic

SAMPLE = load(DEFAULT_PATH, today=date(2026, 7, 10))  # the shipped sample, fresh


def _time(raw: dict[str, object]) -> datetime:
    detail = raw["detail"]
    assert isinstance(detail, dict)
    section = {"Open": "open", "Click": "click", "Delivery": "delivery"}[detail["eventType"]]
    return datetime.fromisoformat(detail[section]["timestamp"])


def test_gateways_scan_within_a_second_and_relay_addresses_are_apples() -> None:
    truth: dict[str, str] = {}
    envelopes = list(traffic("111122223333", 1_500, seed=3, truth=truth))
    delivered: dict[str, datetime] = {}
    for raw in envelopes:
        if raw["detail"]["eventType"] == "Delivery":
            mid = raw["detail"]["mail"]["messageId"]
            delivered[mid] = min(delivered.get(mid, _time(raw)), _time(raw))
    scanned: dict[str, list[datetime]] = {}
    relays = set()
    for raw in envelopes:
        detail = raw["detail"]
        kind = {"Open": "open", "Click": "click"}.get(detail["eventType"])
        if kind is None:
            continue
        if truth[raw["id"]] == "scanner":
            mid = detail["mail"]["messageId"]
            after = _time(raw) - delivered[mid]
            assert timedelta(0) < after <= timedelta(seconds=1), (mid, after)
            scanned.setdefault(mid, []).append(_time(raw))
        ip = detail[kind]["ipAddress"]
        if any(ip.startswith(p.split("{")[0]) for p in APPLE_RELAY):
            relays.add(ip)
    assert len(scanned) > 50 and len(relays) > 3
    for times in scanned.values():
        gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]
        assert all(gap <= BURST_WINDOW for gap in gaps)
    outside = sorted(ip for ip in relays if not SAMPLE.contains(ip))
    assert outside == []
