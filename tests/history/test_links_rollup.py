"""GET /links reads the days of each month's partition: a year is 13 queries a shard (366
before), with every click counted once, split by person and scanner, under shuffled
redelivery."""

from __future__ import annotations

import copy
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import LinkCounterModel
from chalicelib.events.links import display_form
from chalicelib.history import reports
from chalicelib.history.event_list import TimeRange

from tests.conftest import load_event
from tests.ingest.test_ingest import run
from tests.support import TestTenant, make_tenant

pytestmark = pytest.mark.ddb_local

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
LINKS = ["https://example.net/a", "https://example.net/b", "https://example.net/" + "c" * 500]
PERSON = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"
SCANNER = "python-requests/2.31"


def _click(t: TestTenant, at: datetime, link: str, agent: str) -> dict[str, Any]:
    raw = copy.deepcopy(load_event("click"))
    raw["account"], raw["id"] = t.account_id, str(uuid.uuid4())
    raw["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    mail = raw["detail"]["mail"]
    mail["messageId"] = f"0100-{uuid.uuid4()}-000000"
    mail["timestamp"] = keys.iso_ms(at - timedelta(hours=2))
    click = raw["detail"]["click"]
    click.update(timestamp=keys.iso_ms(at), link=link, userAgent=agent)
    return raw


@pytest.fixture(scope="module")
def year(settings: Any) -> dict[str, Any]:
    """Clicks over 13 months for a tenant with 2 write shards, each delivered three times."""
    t = make_tenant(settings, write_shards=2)
    rng = random.Random(14)
    clicks = []
    for n in range(90):
        at = NOW - timedelta(days=rng.randrange(0, 366), hours=rng.randrange(0, 12))
        link, agent = LINKS[n % 3], (PERSON, SCANNER)[n % 2]
        clicks.append((at, display_form(link), agent, _click(t, at, link, agent)))
    raws = [c[3] for c in clicks] * 3
    rng.shuffle(raws)
    run(t, *raws)
    return {"t": t, "clicks": clicks}


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = LinkCounterModel.query

    def query(pk: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(pk)
        return real(pk, *args, **kwargs)

    monkeypatch.setattr(LinkCounterModel, "query", query)
    return seen


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOW - timedelta(days=365), NOW),  # the 1y preset: two months in part, 11 whole
        (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 31, 23, tzinfo=UTC)),  # whole
        (datetime(2026, 2, 14, tzinfo=UTC), datetime(2026, 2, 20, tzinfo=UTC)),  # days
    ],
)
def test_links_over_a_range_count_every_click_once_in_few_queries(
    year: dict[str, Any], monkeypatch: pytest.MonkeyPatch, start: datetime, end: datetime
) -> None:
    seen = _counting(monkeypatch)
    t = year["t"]
    body = reports.top_links(t.tenant_id, 2, TimeRange(start, end), 10)
    first, last = start.date(), end.date()
    wanted = [(url, agent) for at, url, agent, _ in year["clicks"] if first <= at.date() <= last]
    per_url = Counter(url for url, _ in wanted)
    assert body["total_clicks"] == len(wanted)
    assert {x["url"]: x["clicks"] for x in body["links"]} == dict(per_url)
    for x in body["links"]:
        assert x["human"] == sum(1 for u, a in wanted if u == x["url"] and a == PERSON)
        assert x["scanner"] == sum(1 for u, a in wanted if u == x["url"] and a == SCANNER)
        assert x["truncated"] == (len(x["url"]) == 200)
    months = len({(d.year, d.month) for d in TimeRange(start, end).days()})
    assert len(seen) == body["queries"] == months * 2  # one query a month and shard
    assert len(seen) <= 13 * 2 < 366


def test_a_year_is_13_queries_a_shard(
    year: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _counting(monkeypatch)
    span = TimeRange.parse(None, None, "1y", now=NOW, retention_days=365)
    reports.top_links(year["t"].tenant_id, 1, span, 10)
    assert len(seen) == 13
