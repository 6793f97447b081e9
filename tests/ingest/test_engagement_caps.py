"""The bound on what one event's corrections touch (ingest/engagement_writes.py): at most
MAX_EXTRA_HOURS other hourly counters and MAX_EXTRA_LINKS other link counters. Past that, hour
corrections fold into the event's own hour (the totals stay right) and link corrections are
dropped and counted in the EngagementCorrectionsDropped metric."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import CounterModel, LinkCounterModel
from chalicelib.events.engagement import EPOCH, CounterDeltas
from chalicelib.events.ses import Click, parse_envelope, parse_event
from chalicelib.ingest.engagement_writes import MAX_EXTRA_HOURS, MAX_EXTRA_LINKS, counter_updates

from tests.conftest import load_event


def _hour(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(hours=1)


def _day(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(days=1)


def _metrics(out: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in out.splitlines() if x.startswith("{") and "_aws" in x]


@pytest.mark.parametrize("extra", [MAX_EXTRA_HOURS, MAX_EXTRA_HOURS + 4])
def test_corrections_past_the_caps_fold_into_the_own_hour_or_are_dropped_and_counted(
    extra: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert MAX_EXTRA_HOURS == MAX_EXTRA_LINKS == 8
    event = parse_event(parse_envelope(load_event("click")))
    assert isinstance(event.detail, Click)
    at, url = event.timestamp, event.detail.link
    deltas = CounterDeltas()
    deltas.hours = {_hour(at): {"CLICKED_HUMAN": 1}}
    for i in range(extra):  # earlier hours of the same message, each corrected by i + 1
        deltas.hours[_hour(at - timedelta(hours=i + 1))] = {"CLICKED_SCANNER": i + 1}
    deltas.links = {
        (_day(at), f"https://example.com/{i:02d}"): {"scanner": 1, "human": -1}
        for i in range(extra)
    }
    capsys.readouterr()
    updates = counter_updates(
        "t1", 0, event, Counter({"CLICKED": 1}), deltas, lambda ts: ts + timedelta(days=30)
    )
    hours = {c.sk: c.adds for c in updates if c.model is CounterModel}
    own = hours.pop(keys.counter_sk(at))
    # No more than the cap of other hours; the earliest ones keep their own hour.
    assert len(hours) == min(extra, MAX_EXTRA_HOURS)
    kept = [at - timedelta(hours=i + 1) for i in range(extra)][-MAX_EXTRA_HOURS:]
    assert set(hours) == {keys.counter_sk(h) for h in kept}
    # Every correction is counted once: the ones past the cap in the event's own hour.
    total = sum(c.get("CLICKED_SCANNER", 0) for c in [own, *hours.values()])
    assert total == sum(range(1, extra + 1))
    assert own["CLICKED_SCANNER"] == sum(range(1, extra - MAX_EXTRA_HOURS + 1))
    assert (own["CLICKED"], own["CLICKED_HUMAN"]) == (1, 1)
    # Links: the click's own, and at most the cap of others; the rest dropped, and counted.
    links = {c.sets["url"]: c.adds for c in updates if c.model is LinkCounterModel}
    assert links.pop(url) == Counter(clicks=1)
    assert sorted(links) == [f"https://example.com/{i:02d}" for i in range(MAX_EXTRA_LINKS)]
    dropped = [m for m in _metrics(capsys.readouterr().out) if "EngagementCorrectionsDropped" in m]
    if extra > MAX_EXTRA_LINKS:
        assert [(m["EngagementCorrectionsDropped"], m["Counter"]) for m in dropped] == [
            (extra - MAX_EXTRA_LINKS, "links")
        ]
    else:
        assert dropped == []
