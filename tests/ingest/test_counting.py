"""The counters from the messages table's stream (ingest/counting.py), against DynamoDB Local's
own stream: a batch Lambda hands over again is counted once, an entry rewritten with other
counter changes is counted by the difference, records without changes or removed entries take
nothing, an unreadable record is counted as malformed without stopping the batch, a batch that
touches more counter items than a transaction holds is counted whole, and each tenant's lag is
recorded."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import CounterModel
from chalicelib.ingest import counting
from chalicelib.ingest.pipeline import ingest_envelopes

from devstack.stream_poller import StreamPoller, kept_by_filter, lambda_record
from tests.conftest import load_event
from tests.ingest.test_ingest_faults import counters
from tests.support import TestTenant, for_account

pytestmark = pytest.mark.ddb_local


def _records(settings: Any, tenant: TestTenant) -> list[dict[str, Any]]:
    """The stream records of the tenant's entries so far, as Lambda would hand them over."""
    poller = StreamPoller(settings)
    out: list[dict[str, Any]] = []
    for arn in poller._arns():
        for shard in poller._shards(arn):
            iterator = poller._streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            while iterator:
                got = poller._streams.get_records(ShardIterator=iterator, Limit=1000)
                out += [
                    lambda_record(r)
                    for r in got["Records"]
                    if kept_by_filter(lambda_record(r))
                    and tenant.tenant_id in json.dumps(r["dynamodb"]["Keys"])
                ]
                iterator = got.get("NextShardIterator")
                if not got["Records"]:
                    break
    return out


def _hours(tenant: TestTenant) -> dict[str, int]:
    """Every hourly count of the tenant (all shards), by name."""
    out: dict[str, int] = {}
    for shard in range(tenant.ref.write_shards):
        for item in CounterModel.query(keys.counter_pk(tenant.tenant_id, shard)):
            if item.sk.startswith("H#"):
                for name, value in item.attribute_values.items():
                    if isinstance(value, (int, float)) and name.isupper():
                        out[name] = out.get(name, 0) + int(value)
    return out


def _entry_record(tenant_id: str, cc: Any, *, event_id: str, old: Any = None) -> dict[str, Any]:
    pk = keys.message_pk(tenant_id, "m-1")
    image = {"pk": {"S": pk}, "sk": {"S": "E#x"}, "shard": {"N": "0"}}
    record: dict[str, Any] = {
        "eventID": event_id,
        "eventName": "MODIFY" if old is not None else "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime.now(UTC).timestamp(),
            "NewImage": {**image, "cc": {"S": json.dumps(cc)}},
        },
    }
    if old is not None:
        record["dynamodb"]["OldImage"] = {**image, "cc": {"S": json.dumps(old)}}
    return record


def test_a_batch_handed_over_again_is_counted_once(settings: Any, tenant: TestTenant) -> None:
    raws = [for_account(load_event(n), tenant.account_id) for n in ("send", "delivery", "open")]
    # Ingest without the test suite's drain-before-read: read the stream by hand.
    ingest_envelopes(raws, tenants=tenant.directory, store=tenant.store)
    batch = _records(settings, tenant)
    assert len(batch) == 3
    first = counting.count_stream_records(batch, settings)
    again = counting.count_stream_records(batch, settings)  # Lambda retries the same batch
    assert first.transactions == 1 and again.transactions == 0 and again.already_counted == 1
    direct = _hours_without_drain(tenant)
    assert direct["SENT"] == direct["DELIVERED"] == direct["OPENED"] == 1


def _hours_without_drain(tenant: TestTenant) -> dict[str, int]:
    """The counters as stored, without handing the stream over first."""
    import boto3
    from chalicelib.core.settings import Settings

    settings = Settings(table_prefix="test-")
    _ = settings
    client = boto3.client(
        "dynamodb",
        endpoint_url=CounterModel.Meta.host,
        region_name=CounterModel.Meta.region,
    )
    out: dict[str, int] = {}
    pk = keys.counter_pk(tenant.tenant_id, 0)
    for item in client.query(
        TableName=CounterModel.Meta.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": pk}},
    )["Items"]:
        if item["sk"]["S"].startswith("H#"):
            for name, value in item.items():
                if "N" in value and name.isupper():
                    out[name] = out.get(name, 0) + int(value["N"])
    return out


def test_a_rewritten_entry_counts_by_the_difference_and_nothing_else_counts(
    settings: Any, tenant: TestTenant
) -> None:
    hour = "2026-11-02T10"
    inserted = _entry_record(
        tenant.tenant_id, [["h", hour, {"OPENED": 1, "OPENED_HUMAN": 1}]], event_id="a"
    )
    rewritten = _entry_record(
        tenant.tenant_id,
        [["h", hour, {"OPENED": 1, "OPENED_SCANNER": 1}]],
        old=[["h", hour, {"OPENED": 1, "OPENED_HUMAN": 1}]],
        event_id="b",
    )
    removed = {**copy.deepcopy(inserted), "eventName": "REMOVE", "eventID": "c"}
    unreadable = _entry_record(tenant.tenant_id, [["h", hour, {"OPENED": 1}]], event_id="d")
    unreadable["dynamodb"]["NewImage"]["cc"] = {"S": "{not json"}
    report = counting.count_stream_records([inserted, rewritten, removed, unreadable], settings)
    assert report.counted == 2 and report.malformed == 1
    # One change per counter item: +1 human -1 human leaves nothing to add.
    assert _hours_without_drain(tenant) == {"OPENED": 1, "OPENED_SCANNER": 1}
    lag = CounterModel.get(keys.counter_pk(tenant.tenant_id, 0), keys.COUNTED_SK)
    assert lag.counted_at is not None and lag.counted_through is not None


def test_more_counter_items_than_a_transaction_holds_are_counted_whole_and_once(
    settings: Any, tenant: TestTenant
) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    records = [
        _entry_record(
            tenant.tenant_id,
            [["h", keys.hour_of(start + timedelta(hours=n)), {"DELIVERED": 1}]],
            event_id=f"e{n}",
        )
        for n in range(250)
    ]
    first = counting.count_stream_records(records, settings)
    assert first.transactions == 3  # 97 counter items a transaction
    again = counting.count_stream_records(records, settings)
    assert again.transactions == 0 and again.already_counted == 3
    assert _hours_without_drain(tenant)["DELIVERED"] == 250


def test_ingest_and_the_stream_count_like_before(settings: Any, tenant: TestTenant) -> None:
    """Through the whole path (ingest, DynamoDB Local's stream, the poller, count_events' code):
    each event's status counted once, under triple redelivery."""
    raws = [for_account(load_event(n), tenant.account_id) for n in ("send", "delivery", "click")]
    for _ in range(3):
        ingest_envelopes(raws, tenants=tenant.directory, store=tenant.store)
    assert counters(tenant) == 3
    hours = _hours(tenant)
    assert hours["SENT"] == hours["DELIVERED"] == hours["CLICKED"] == 1


def test_stats_say_when_the_counters_are_behind(settings: Any, tenant: TestTenant) -> None:
    from chalicelib.history import reports

    assert reports.counting_state(tenant.tenant_id)["behind"] is False  # nothing counted yet
    record = _entry_record(tenant.tenant_id, [["h", "2026-11-02T10", {"SENT": 1}]], event_id="x")
    counting.count_stream_records([record], settings)
    assert reports.counting_state(tenant.tenant_id)["behind"] is False  # counted at once
    late = _entry_record(tenant.tenant_id, [["h", "2026-11-02T10", {"SENT": 1}]], event_id="y")
    late["dynamodb"]["ApproximateCreationDateTime"] -= 300  # written five minutes ago
    counting.count_stream_records([late], settings)
    state = reports.counting_state(tenant.tenant_id)
    assert state["behind"] is True and state["lag_seconds"] >= 299


def test_an_erasure_mark_is_acknowledged_not_counted_and_takes_nothing_back(
    settings: Any, tenant: TestTenant
) -> None:
    """An erasure rewrites a click's entry with its mark instead of its counter changes
    (core/erasure_marks.py): the hour keeps its count, and the mark is acknowledged once, even
    when the stream hands it over twice."""
    from chalicelib.core import erasure_marks

    hour, day = "2026-11-02T10", "2026-11-02"
    changes = [["h", hour, {"CLICKED": 1}], ["l", day, "https://x.example/?u=a", {"clicks": 1}]]
    clicked = _entry_record(tenant.tenant_id, changes, event_id="a")
    marked = _entry_record(tenant.tenant_id, [], old=changes, event_id="b")
    marked["dynamodb"]["NewImage"]["cc"] = {"S": erasure_marks.mark("job-1")}
    assert kept_by_filter(marked)  # the mapping hands it over: it has `cc`
    report = counting.count_stream_records([clicked, marked], settings)
    assert report.counted == 1 and report.acknowledged == 1 and report.malformed == 0
    again = counting.count_stream_records([marked], settings)  # delivered twice
    assert again.counted == 0 and again.acknowledged == 1
    assert _hours_without_drain(tenant) == {"CLICKED": 1}
    prefix = keys.erasure_acks_prefix("job-1")
    acks = list(
        CounterModel.query(keys.counter_pk(tenant.tenant_id, 0), CounterModel.sk.startswith(prefix))
    )
    entry = keys.erasure_ack_sk("job-1", keys.message_pk(tenant.tenant_id, "m-1"), "E#x")
    assert [a.sk for a in acks] == [entry]
