"""The deployed refresh of Apple's relay ranges, against moto's S3 with a fake HTTP fetch (no
network here): the scheduled function's work stores a dated, merged, complete list; ingest's
instance reads that copy once (through the wiring, as deployed) and classifies with it; a bad
fetch stores nothing and keeps the copy there; no copy, or no bucket, is the shipped file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from chalicelib.core import aws, wiring
from chalicelib.core.settings import Settings
from chalicelib.events import engagement as eng
from chalicelib.events.relay_ranges import (
    DEFAULT_PATH,
    SOURCE_URL,
    NotARangesList,
    default_ranges,
    from_lines,
    use_published,
)
from chalicelib.relays.refresh import fetch_https, refresh
from chalicelib.relays.store import OBJECT_KEY, RelayRangesObject

BUCKET = "sesami-test-relay-ranges"
# Apple's format (prefix,country,region,city,), IPv4 and IPv6, adjacent prefixes to merge.
APPLE = (
    b"104.28.30.0/26,US,US-CA,Los Angeles,\n"
    b"104.28.30.64/26,US,US-CA,Los Angeles,\n"
    b"172.224.226.0/27,GB,GB-EN,London,\n"
    b"2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,\n"
    b"2a02:26f7:b3c0:4001::/64,GB,GB-EN,London,\n"
)
TODAY = datetime.now(UTC).date()


class FakeFetch:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.body


@pytest.fixture
def s3(moto_endpoint: str) -> Iterator[Any]:
    client = aws.client("s3", region="us-east-1", endpoint=moto_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def deployed(moto_endpoint: str, s3: Any, settings: Settings) -> Iterator[Settings]:
    """The wiring as the deployed functions see it: a bucket named, S3 reached at moto (and the
    session's DynamoDB Local: wiring points the tables at whatever settings it is given, and
    the tests after this one read through them)."""
    from chalicelib.core import tables

    value = replace(settings, relay_ranges_bucket=BUCKET, aws_endpoint=moto_endpoint)
    wiring.use(value)
    yield value
    wiring.use(None)
    tables.configure(settings)
    use_published(None)


def test_the_refresh_stores_a_dated_merged_complete_list(s3: Any) -> None:
    fetch = FakeFetch(APPLE)
    copy = RelayRangesObject(s3, BUCKET)
    result = refresh(fetch, copy, today=date(2026, 12, 1))
    assert fetch.urls == [SOURCE_URL]  # Apple's list, and nothing else
    assert result["prefixes"] == 3 and result["rows"] == 5 and result["malformed"] == 0
    lines = copy.lines()
    assert lines is not None
    assert [x for x in lines if not x.startswith("#")] == [
        "104.28.30.0/25",
        "172.224.226.0/27",
        "2a02:26f7:b3c0:4000::/63",
    ]
    ranges = from_lines(lines, source="copy", today=date(2026, 12, 2))
    assert ranges.complete and ranges.published == date(2026, 12, 1)
    assert ranges.contains("104.28.30.100") and ranges.contains("2a02:26f7:b3c0:4001::5")
    head = s3.head_object(Bucket=BUCKET, Key=OBJECT_KEY)
    assert head["ContentType"].startswith("text/plain")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>Service Unavailable</html>\n", "no valid prefix"),
        (b"172.224.226.0/27,GB,,,\n" + b"nope\n" * 5, "malformed"),
    ],
)
def test_a_bad_fetch_stores_nothing_and_keeps_the_copy_there(
    s3: Any, body: bytes, match: str
) -> None:
    copy = RelayRangesObject(s3, BUCKET)
    refresh(FakeFetch(APPLE), copy, today=date(2026, 12, 1))
    before = copy.lines()
    with pytest.raises(NotARangesList, match=match):
        refresh(FakeFetch(body), copy, today=date(2026, 12, 2))
    assert copy.lines() == before


def test_no_copy_yet_reads_as_none_not_as_an_error(s3: Any) -> None:
    assert RelayRangesObject(s3, BUCKET).lines() is None
    assert RelayRangesObject(s3, "sesami-no-such-bucket").lines() is None


def test_the_fetch_is_https_only() -> None:
    with pytest.raises(NotARangesList, match="https"):
        fetch_https("http://mask-api.icloud.com/egress-ip-ranges.csv")


def test_ingest_reads_the_copy_once_per_instance_and_classifies_with_it(
    deployed: Settings, s3: Any, moto_endpoint: str
) -> None:
    copy = wiring.relay_ranges_copy()
    assert copy is not None
    refresh(FakeFetch(APPLE), copy, today=TODAY)
    wiring.ingest([])  # what the ingest function does first: register the copy
    reads: list[str] = []
    reader = wiring.relay_ranges_copy(reading=True)._client  # type: ignore[union-attr]
    config = reader.meta.config  # ingest must not wait on S3: short timeouts, no retry
    assert (config.connect_timeout, config.read_timeout) == (2, 3)
    assert config.retries["total_max_attempts"] == 1
    s3_events = reader.meta.events
    s3_events.register("before-call.s3.GetObject", lambda **_: reads.append("get"))
    # An address in the copy, not in the shipped sample: the copy decides.
    for _ in range(20):
        signal = eng.classify(eng.OPEN, "Mozilla/5.0", "104.28.30.100")
        assert signal.reason == "ua+ip:apple_relay"
    # With the whole list, MPP's form from elsewhere is not Apple's.
    assert eng.classify(eng.OPEN, "Mozilla/5.0", "198.51.100.9").reason == (
        "ua:apple_form_not_apple_ip"
    )
    assert reads == ["get"]  # one GetObject for the instance, none per event
    assert default_ranges().source == "published copy"


def test_without_a_copy_or_a_bucket_ingest_uses_the_shipped_file(
    deployed: Settings, moto_endpoint: str
) -> None:
    wiring.ingest([])
    assert default_ranges().source == str(DEFAULT_PATH)  # the bucket is empty
    wiring.use(replace(deployed, relay_ranges_bucket=""))  # the local stack: no bucket at all
    wiring.ingest([])
    assert default_ranges().source == str(DEFAULT_PATH)
    assert wiring.relay_ranges_copy() is None
    with pytest.raises(Exception, match="SESAMI_RELAY_RANGES_BUCKET"):
        wiring.refresh_relay_ranges()


def test_the_scheduled_function_stores_the_copy_the_next_ingest_instance_reads(
    deployed: Settings, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """app.relay_ranges as Lambda runs it on its schedule (Apple's server replaced: no network
    here), then a new ingest instance."""
    from chalicelib.relays import refresh as refresh_module

    import app

    fetch = FakeFetch(APPLE)
    monkeypatch.setattr(refresh_module, "fetch_https", fetch)
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    result = app.relay_ranges(scheduled, None)
    assert fetch.urls == [SOURCE_URL]
    assert result["prefixes"] == 3 and result["published"] == TODAY.isoformat()
    wiring.reset()  # a new instance
    wiring.ingest([])
    assert default_ranges().source == "published copy" and default_ranges().complete
