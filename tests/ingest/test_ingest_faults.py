"""Ingest under faults and races, against DynamoDB Local: throttling raises for retry and leaves
nothing partial; a retry stores once; concurrent deliveries of one message converge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalicelib.core import keys
from chalicelib.core.errors import TransientStorageError
from chalicelib.core.tables import AGGREGATE_SK, CounterModel, EventModel, MessageModel
from chalicelib.events.status import Status
from chalicelib.history.routes import ENGAGEMENT_CLASSES
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from pynamodb.connection import base as pynamodb_base

from devstack.traffic import message_events
from tests.conftest import load_event
from tests.support import TestTenant, for_account

MESSAGE_A = "010001a19bc15a51-f7fd8b2d-fc26-45b7-90fb-8b8d91076163-000000"


@contextmanager
def throttled(operation: str, times: int = 1) -> Iterator[list[str]]:
    """DynamoDB answers `operation` with ThrottlingException `times` times (botocore's own
    retries are part of what is being exercised, so the budget is per logical call)."""
    original = pynamodb_base.Connection._make_api_call
    seen: list[str] = []

    def call(conn: Any, op: str, kwargs: dict[str, Any]) -> Any:
        if op == operation and len(seen) < times:
            seen.append(op)
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, op)  # type: ignore[arg-type]
        return original(conn, op, kwargs)

    pynamodb_base.Connection._make_api_call = call  # type: ignore[method-assign,assignment]
    try:
        yield seen
    finally:
        pynamodb_base.Connection._make_api_call = original  # type: ignore[method-assign]


def counters(t: TestTenant, names: set[str] | None = None) -> int:
    """The sum of the tenant's hourly counters of `names` (default: the per-status counts)."""
    names = names if names is not None else {s.value for s in Status}
    return sum(
        int(v)
        for item in CounterModel.query(keys.counter_pk(t.tenant_id, 0))
        for k, v in item.attribute_values.items()
        if k in names
    )


def aggregate(t: TestTenant, message_id: str) -> MessageModel | None:
    pk = keys.message_pk(t.tenant_id, message_id)
    try:
        return MessageModel.get(pk, AGGREGATE_SK, consistent_read=True)
    except MessageModel.DoesNotExist:
        return None


@pytest.mark.parametrize(
    ("name", "write"), [("delivery", "PutItem"), ("complaint", "TransactWriteItems")]
)
def test_a_throttled_aggregate_write_raises_and_the_retry_stores_once(
    tenant: TestTenant, name: str, write: str
) -> None:
    """The aggregate's own put (a Delivery) or the event's transaction (a complaint, which
    suppresses) throttled: the event raises for its retry. Its rows and entry were written
    first (idempotent projections), so its counter changes reach the counters now, once: the
    retry rewrites the same entry, which the stream does not record again."""
    raw = for_account(load_event(name), tenant.account_id)
    with throttled(write), pytest.raises(TransientStorageError):
        ingest_envelopes([raw], tenants=tenant.directory, store=tenant.store)
    assert aggregate(tenant, raw["detail"]["mail"]["messageId"]) is None
    assert counters(tenant) == 1  # its entry is written: the stream counts it once
    again = ingest_envelopes([raw, raw], tenants=tenant.directory, store=tenant.store)
    assert again.outcomes == [Outcome.STORED, Outcome.DUPLICATE]
    assert counters(tenant) == 1
    assert len(list(EventModel.query(keys.events_pk(tenant.tenant_id, 0)))) == 1


def test_throttled_read_raises_for_retry(tenant: TestTenant) -> None:
    raw = for_account(load_event("open"), tenant.account_id)
    with throttled("GetItem", times=10), pytest.raises(TransientStorageError):
        ingest_envelopes([raw], tenants=tenant.directory, store=tenant.store)
    assert counters(tenant) == 0


def test_unreachable_store_raises_instead_of_dropping(settings: Any) -> None:
    from chalicelib.core import tables
    from chalicelib.core.settings import Settings

    from devstack.dynamodb_local import free_port
    from tests.support import make_tenant

    tenant = make_tenant(settings)
    dead = Settings(table_prefix="test-", dynamodb_endpoint=f"http://127.0.0.1:{free_port()}")
    tables.configure(dead)
    try:
        with pytest.raises(TransientStorageError):
            ingest_envelopes(
                [for_account(load_event("send"), tenant.account_id)],
                tenants=tenant.directory,
                store=tenant.store,
            )
    finally:
        tables.configure(settings)


def test_concurrent_events_of_one_message_all_land_once(tenant: TestTenant) -> None:
    import random
    from datetime import UTC, datetime

    rng = random.Random(11)
    envelopes: list[dict[str, Any]] = []
    while len(envelopes) < 8:  # a message with several opens and clicks
        envelopes = message_events(
            rng, tenant.account_id, "zoe@example.com", datetime(2026, 11, 5, tzinfo=UTC)
        )
    message_id = envelopes[0]["detail"]["mail"]["messageId"]
    deliveries = envelopes * 3
    rng.shuffle(deliveries)
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def worker(chunk: list[dict[str, Any]]) -> None:
        report = ingest_envelopes(chunk, tenants=tenant.directory, store=tenant.store)
        with lock:
            outcomes.extend(report.outcomes)

    threads = [threading.Thread(target=worker, args=(deliveries[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(Outcome.STORED) == len(envelopes)
    assert outcomes.count(Outcome.DUPLICATE) == 2 * len(envelopes)
    agg = aggregate(tenant, message_id)
    assert agg is not None and agg.events == len(envelopes)
    assert counters(tenant) == len(envelopes)
    # Each open and click in exactly one class, whatever the interleaving.
    engaged = sum(1 for e in envelopes if e["detail"]["eventType"] in ("Open", "Click"))
    classes = {f"{k}_{c.upper()}" for k in ("OPENED", "CLICKED") for c in ENGAGEMENT_CLASSES}
    assert counters(tenant, classes) == engaged
