"""Ingest behind its queue (EventBridge rule -> SQS -> batches): a batch with a failing event
reports that event alone for retry and stores the rest exactly once; redelivered batches,
shuffled, leave one delivery's state; a body that is not JSON is quarantined, not retried."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

from chalicelib.core import wiring
from chalicelib.core.errors import TransientStorageError
from chalicelib.events.ses import SesEvent, parse_envelope, parse_event
from chalicelib.ingest.directory import TenantRef
from chalicelib.ingest.pipeline import ingest_envelopes, ingest_queue_records
from chalicelib.ingest.store import EventStore, Recording
from chalicelib.suppression.from_events import suppression_targets

import app as app_module
from bench.ingest_bench import CapacityMeter
from devstack.traffic import traffic
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

    def record_batch(
        self, tenant: TenantRef, events: Sequence[SesEvent]
    ) -> list[Recording | Exception]:
        failing = [e.event_type.value == self._fail for e in events]
        self._fail = "" if any(failing) else self._fail
        rest = iter(
            super().record_batch(tenant, [e for e, f in zip(events, failing, strict=True) if not f])
        )
        return [TransientStorageError("throttled") if f else next(rest) for f in failing]


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


def test_a_batch_costs_few_requests_and_three_shuffled_deliveries_count_once(
    tenant: TestTenant, settings: Any
) -> None:
    from tests.support import make_tenant

    envelopes = list(traffic(tenant.account_id, 30, seed=21))
    tenant.directory.tenant_for_account(tenant.account_id)  # a warm instance's cache
    with CapacityMeter() as meter:
        report, failed = ingest_queue_records(
            records(envelopes), tenants=tenant.directory, store=tenant.store
        )
    stored = report.counts()["stored"]
    assert failed == [] and stored == len(envelopes)
    # Each event's aggregate is its own conditional write, 25 to a BatchExecuteStatement (one
    # alone in a round: a PutItem); an event that changes the suppression list commits a
    # transaction; reads and rows (and entries) are batched. No counter is written here.
    parsed = [parse_event(parse_envelope(e)) for e in envelopes]
    suppressing = sum(1 for e in parsed if suppression_targets(e))
    assert meter.requests["TransactWriteItems"] == suppressing
    assert meter.requests["BatchExecuteStatement"] + meter.requests["PutItem"] < stored / 4
    assert sum(meter.requests.values()) <= stored / 2
    first = counters(tenant)
    for seed in range(3):
        again = records(envelopes)
        random.Random(seed).shuffle(again)
        report, failed = ingest_queue_records(again, tenants=tenant.directory, store=tenant.store)
        assert failed == [] and report.counts() == {"duplicate": stored}
    assert counters(tenant) == first
    # The same events one by one, for another tenant: the same counts.
    other = make_tenant(settings)
    ingest_envelopes(
        [for_account(e, other.account_id) for e in envelopes],
        tenants=other.directory,
        store=other.store,
    )
    assert counters(other) == first


def test_concurrent_batches_sharing_messages_and_counters_land_once(
    tenant: TestTenant, settings: Any
) -> None:
    """Four instances take overlapping, shuffled batches of the same events at once: their
    transactions (many events each, counters folded) collide on entries, aggregates and counter
    items; each event is stored once and the counters match the events ingested one by one."""
    import threading

    from tests.support import make_tenant

    envelopes = list(traffic(tenant.account_id, 25, seed=5))
    deliveries = envelopes * 3
    random.Random(7).shuffle(deliveries)
    outcomes: Counter[str] = Counter()
    errors: list[Any] = []
    lock = threading.Lock()

    def worker(chunk: list[dict[str, Any]]) -> None:
        for at in range(0, len(chunk), 40):
            report, failed = ingest_queue_records(
                records(chunk[at : at + 40]), tenants=tenant.directory, store=tenant.store
            )
            with lock:
                outcomes.update(report.counts())
                errors.extend(failed)

    threads = [threading.Thread(target=worker, args=(deliveries[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes == {"stored": len(envelopes), "duplicate": 2 * len(envelopes)}
    other = make_tenant(settings)
    ingest_envelopes(
        [for_account(e, other.account_id) for e in envelopes],
        tenants=other.directory,
        store=other.store,
    )
    assert counters(tenant) == counters(other) > 0


def test_a_throttled_batch_leaves_every_event_to_its_retry(
    tenant: TestTenant, settings: Any
) -> None:
    from tests.ingest.test_ingest_faults import throttled
    from tests.support import make_tenant

    envelopes = list(traffic(tenant.account_id, 10, seed=2))[:12]
    with (
        throttled("PutItem", times=10_000),
        throttled("TransactWriteItems", times=10_000),
        throttled("BatchExecuteStatement", times=10_000),
    ):
        report, failed = ingest_queue_records(
            records(envelopes), tenants=tenant.directory, store=tenant.store
        )
    # Every event is handed back for SQS to redeliver, none lost, none counted twice after.
    assert len(failed) == len(envelopes) and report.counts().get("stored", 0) == 0
    redelivered = [r for r in records(envelopes) if r["messageId"] in set(failed)]
    report, again = ingest_queue_records(redelivered, tenants=tenant.directory, store=tenant.store)
    assert again == [] and report.counts() == {"stored": len(envelopes)}
    report, _ = ingest_queue_records(
        records(envelopes), tenants=tenant.directory, store=tenant.store
    )
    assert report.counts() == {"duplicate": len(envelopes)}
    other = make_tenant(settings)
    ingest_envelopes(
        [for_account(e, other.account_id) for e in envelopes],
        tenants=other.directory,
        store=other.store,
    )
    assert counters(tenant) == counters(other) > 0


def test_a_refused_aggregate_in_a_batch_fails_only_its_own_event(
    tenant: TestTenant, monkeypatch: Any
) -> None:
    """Each statement of a BatchExecuteStatement answers on its own: a throttled one is that
    event's retry, a refused one (validation) that event's quarantine; the others are stored."""
    from chalicelib.core import dynamo
    from chalicelib.core.errors import MalformedEvent

    real = dynamo.execute_many
    calls: list[int] = []

    def answers(what: str, statements: Sequence[Any], model: Any) -> list[str | None]:
        calls.append(len(statements))
        if len(calls) > 1:
            return real(what, statements, model)
        # The first two statements of the first request are not made: one throttled, one refused.
        return ["ThrottlingError", "ValidationError", *real(what, statements[2:], model)]

    monkeypatch.setattr(dynamo, "execute_many", answers)
    envelopes = [for_account(load_event(n), tenant.account_id) for n in ("send", "send_multi")]
    envelopes += [for_account(load_event(n), tenant.account_id) for n in ("complaint", "reject")]
    out = tenant.store.record_batch(tenant.ref, [parse_event(parse_envelope(e)) for e in envelopes])
    assert isinstance(out[0], TransientStorageError)
    assert isinstance(out[1], MalformedEvent)
    assert all(isinstance(r, Recording) for r in out[2:]), out
    assert calls[0] >= 2
