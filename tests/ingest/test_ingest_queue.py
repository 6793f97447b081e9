"""Ingest behind its queue (EventBridge rule -> SQS -> batches): a batch with a failing event
reports that event alone for retry and stores the rest exactly once; redelivered batches,
shuffled, leave one delivery's state; a body that is not JSON is quarantined, not retried."""

from __future__ import annotations

import json
import random
from typing import Any

from chalicelib.core import wiring
from chalicelib.core.errors import TransientStorageError
from chalicelib.events.ses import SesEvent
from chalicelib.ingest.directory import TenantRef
from chalicelib.ingest.pipeline import ingest_queue_records
from chalicelib.ingest.store import EventStore, Recorded

import app as app_module
from tests.conftest import load_event
from tests.ingest.test_ingest_faults import counters
from tests.support import TestTenant, for_account


def records(raws: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "messageId": f"m-{i}",
            "receiptHandle": "r",
            "body": raw if isinstance(raw, str) else json.dumps(raw),
            "eventSource": "aws:sqs",
        }
        for i, raw in enumerate(raws)
    ]


class FailingOnce(EventStore):
    """The real store, except that events of one type fail once as if DynamoDB were down."""

    def __init__(self, store: EventStore, event_type: str) -> None:
        self.__dict__.update(store.__dict__)
        self._fail = event_type

    def record(self, tenant: TenantRef, event: SesEvent) -> Recorded:
        if event.event_type.value == self._fail:
            self._fail = ""
            raise TransientStorageError("throttled")
        return super().record(tenant, event)


def test_a_failing_event_is_retried_alone_and_the_batch_lands_once(tenant: TestTenant) -> None:
    names = ["send", "delivery", "open", "click", "bounce_permanent_multi"]
    raws = [for_account(load_event(n), tenant.account_id) for n in names]
    batch = records([*raws, "{not json"])
    store = FailingOnce(tenant.store, "Open")
    report, failed = ingest_queue_records(batch, tenants=tenant.directory, store=store)
    assert failed == ["m-2"]  # the open, alone
    assert report.counts() == {"stored": 4, "quarantined": 1}
    first = counters(tenant)

    # SQS redelivers the failed record, and, at least once, whole batches in any order.
    retry = [r for r in batch if r["messageId"] in failed]
    report, failed = ingest_queue_records(retry, tenants=tenant.directory, store=store)
    assert failed == [] and report.counts() == {"stored": 1}
    stored = counters(tenant)
    assert stored > first
    for seed in range(2):
        again = batch[:-1]
        random.Random(seed).shuffle(again)
        report, failed = ingest_queue_records(again, tenants=tenant.directory, store=store)
        assert failed == [] and report.counts() == {"duplicate": 5}
    assert counters(tenant) == stored


def test_the_handler_answers_a_queue_batch_with_partial_failures(monkeypatch: Any) -> None:
    seen: list[list[Any]] = []

    def batch(records: list[Any]) -> dict[str, Any]:
        seen.append(records)
        return {"batchItemFailures": [{"itemIdentifier": "m-1"}]}

    monkeypatch.setattr(wiring, "ingest_queue_batch", batch)
    event = {"Records": records([{"a": 1}, {"b": 2}])}
    answer = app_module.ingest(event, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert seen == [event["Records"]]
