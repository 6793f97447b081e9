"""What one event writes to the link counters: each link's day in its month's partition, each
item named once (a transaction may name an item only once)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from chalicelib.core import keys
from chalicelib.core.tables import LinkCounterModel
from chalicelib.events.engagement import CounterDeltas
from chalicelib.events.ses import Click, parse_envelope, parse_event
from chalicelib.ingest.engagement_writes import counter_updates

from tests.conftest import load_event

EPOCH_DAY = datetime(1970, 1, 1, tzinfo=UTC)


def _day(ts: datetime) -> int:
    return (ts - EPOCH_DAY) // timedelta(days=1)


def test_a_click_and_its_corrections_name_each_counter_once() -> None:
    event = parse_event(parse_envelope(load_event("click")))
    assert isinstance(event.detail, Click)
    url, at = event.detail.link, event.timestamp  # 2026-11-02
    deltas = CounterDeltas()
    deltas.links = {
        (_day(at + timedelta(days=3)), url): {"human": 1},  # same month as the click
        (_day(at + timedelta(days=7)), url): {"scanner": -1},
        (_day(at - timedelta(days=5)), "https://other.example/"): {"human": 1},  # October
    }
    updates = counter_updates(
        "t1", 0, event, Counter(), deltas, lambda ts: ts + timedelta(days=365)
    )
    links = [(c.pk, c.sk) for c in updates if c.model is LinkCounterModel]
    assert len(links) == len(set(links))  # else DynamoDB refuses the transaction
    november = keys.link_pk("t1", at, 0)
    october = keys.link_pk("t1", at - timedelta(days=5), 0)
    assert sorted(links) == sorted(
        [
            (november, keys.link_day_sk(at, url)),
            (november, keys.link_day_sk(at + timedelta(days=3), url)),
            (november, keys.link_day_sk(at + timedelta(days=7), url)),
            (october, keys.link_day_sk(at - timedelta(days=5), "https://other.example/")),
        ]
    )
