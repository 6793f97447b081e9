"""Ingest figures:

- ingest_wcu_per_event / ingest_rcu_per_event: mean capacity units per stored event, summed from
  the ConsumedCapacity that Amazon DynamoDB Local returns for every call (tables and indexes),
  over a realistic mix (devstack.traffic). Transactional writes count double, as DynamoDB bills.
- ingest_requests_per_event: DynamoDB requests (every call PynamoDB makes, reads and writes) per
  stored event over the same mix, the account -> tenant lookups included (cached per instance),
  the events in time order through the ingest queue's batches of 100, as in production.
- ingest_cpu_us_per_event: parse + classify (people vs machines) + aggregate + the counter
  corrections it implies, no I/O (process CPU time): `IngestCompute`, measured by
  engagement_bench in the same run as classify_cpu_us_per_event, slice by slice, so that the
  share of one in the other compares like with like.
- hot_tenant_max_partition_writes_per_s: one tenant at 2,000 events/s for 30 simulated seconds;
  every partition key the real key functions produce for each write is counted per second.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys, tables
from chalicelib.core.settings import Settings
from chalicelib.core.tables import table_specs
from chalicelib.events.engagement import signal_of
from chalicelib.events.ses import Click, parse_envelope, parse_event
from chalicelib.events.state import apply
from chalicelib.ingest.engagement_writes import judge
from chalicelib.ingest.pipeline import IngestReport, ingest_envelopes, ingest_queue_records
from chalicelib.suppression.from_events import suppression_targets
from pynamodb.connection import base as pynamodb_base

from devstack.dynamodb_local import DynamoDBLocal, create_tables
from devstack.traffic import traffic

WRITE_OPS = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "BatchExecuteStatement",
}
QUEUE_BATCH = 100
HOT_RATE = 2_000
HOT_SECONDS = 30
PARTITION_WRITE_LIMIT = 1_000  # DynamoDB: writes per second to one partition


def _value_size(value: dict[str, Any]) -> int:
    ((kind, v),) = value.items()
    if kind in ("S", "B"):
        return len(v.encode() if isinstance(v, str) else v)
    if kind == "N":
        return len(v) // 2 + 2
    if kind in ("SS", "BS", "NS"):
        return sum(len(x) for x in v)
    if kind == "M":
        return 3 + sum(len(k) + _value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(_value_size(x) + 1 for x in v)
    return 1


def item_units(item: dict[str, Any]) -> int:
    """Write units of one item: its size (names + values) rounded up to 1 KB."""
    size = sum(len(name) + _value_size(value) for name, value in item.items())
    return max(1, math.ceil(size / 1024))


def _index_entries(table: str, item: dict[str, Any]) -> int:
    """Index entries an item writes: each GSI whose key attributes the item carries."""
    logical = table.rsplit("-", 1)[-1]
    spec = table_specs().get(logical, {})
    return sum(
        1
        for gsi in spec.get("global_secondary_indexes", [])
        if gsi["hash_key"] in item and (gsi["range_key"] is None or gsi["range_key"] in item)
    )


def billed_write_units(operation: str, kwargs: dict[str, Any]) -> float:
    """What DynamoDB bills for a write request: per item, size rounded up to 1 KB, once for the
    table and once per index entry, doubled inside a transaction. DynamoDB Local's own figure
    counts only one item per table in a transaction or batch, so it is modelled here."""
    if operation == "TransactWriteItems":
        total = 0.0
        for entry in kwargs["TransactItems"]:
            if "Put" in entry:
                put = entry["Put"]
                total += (
                    2
                    * item_units(put["Item"])
                    * (1 + _index_entries(put["TableName"], put["Item"]))
                )
            elif "Update" in entry or "Delete" in entry:
                total += 2  # our updated items (aggregates aside) are small counters/entries
        return total
    if operation == "BatchWriteItem":
        return float(
            sum(
                item_units(r["PutRequest"]["Item"])
                * (1 + _index_entries(t, r["PutRequest"]["Item"]))
                for t, reqs in kwargs["RequestItems"].items()
                for r in reqs
                if "PutRequest" in r
            )
        )
    if operation == "BatchExecuteStatement":
        # Each statement a single write: the item it leaves (all of the aggregate's attributes
        # are set), rounded up to 1 KB, once for the table and once per index entry.
        return float(
            sum(
                item_units(item) * (1 + _index_entries(table, item))
                for table, item in map(_statement_item, kwargs["Statements"])
            )
        )
    if operation == "PutItem":
        return float(
            item_units(kwargs["Item"]) * (1 + _index_entries(kwargs["TableName"], kwargs["Item"]))
        )
    return 1.0


def _statement_item(statement: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(table, item) a PartiQL INSERT or UPDATE of ingest writes (chalicelib.ingest.store)."""
    text, params = statement["Statement"], list(statement.get("Parameters", []))
    table = re.search(r'(?:INTO|UPDATE) "([^"]+)"', text)
    if text.startswith("INSERT"):
        names = re.findall(r"'([^']+)': \?", text)
    else:
        names = [*re.findall(r'SET "([^"]+)"=\?', text), "pk", "sk"]
    return (table.group(1) if table else "?"), dict(zip(names, params, strict=False))


def billed_by_table(operation: str, kwargs: dict[str, Any]) -> dict[str, float]:
    """`billed_write_units` split by table (the logical name: events, messages, counters...)."""
    out: dict[str, float] = defaultdict(float)
    if operation == "TransactWriteItems":
        for entry in kwargs["TransactItems"]:
            ((_, body),) = entry.items()
            one = {"TransactItems": [entry]}
            out[body["TableName"].rsplit("-", 1)[-1]] += billed_write_units(operation, one)
    elif operation == "BatchExecuteStatement":
        for statement in kwargs["Statements"]:
            table, _ = _statement_item(statement)
            one = {"Statements": [statement]}
            out[table.rsplit("-", 1)[-1]] += billed_write_units(operation, one)
    elif operation == "BatchWriteItem":
        for table, reqs in kwargs["RequestItems"].items():
            part = {"RequestItems": {table: reqs}}
            out[table.rsplit("-", 1)[-1]] += billed_write_units(operation, part)
    else:
        out[str(kwargs.get("TableName", "?")).rsplit("-", 1)[-1]] += billed_write_units(
            operation, kwargs
        )
    return dict(out)


class CapacityMeter:
    """Sums ConsumedCapacity of every DynamoDB call PynamoDB makes, and the modelled bill."""

    def __init__(self) -> None:
        self.units: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.by_table: Counter[str] = Counter()
        self.billed_write = 0.0
        self.billed_by_table: dict[str, float] = defaultdict(float)
        self._orig = pynamodb_base.Connection._make_api_call

    def __enter__(self) -> CapacityMeter:
        meter, orig = self, self._orig

        def call(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            data = orig(conn, operation, kwargs)
            meter.requests[operation] += 1
            kind = "write" if operation in WRITE_OPS else "read"
            if kind == "write":
                meter.billed_write += billed_write_units(operation, kwargs)
                for table, units in billed_by_table(operation, kwargs).items():
                    meter.billed_by_table[table] += units
            consumed = (data or {}).get("ConsumedCapacity") or []
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                meter.units[kind] += entry.get("CapacityUnits", 0.0)
                meter.by_table[f"{kind}:{entry.get('TableName', '?').split('-')[-1]}"] += entry.get(
                    "CapacityUnits", 0.0
                )
            return data

        pynamodb_base.Connection._make_api_call = call  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        pynamodb_base.Connection._make_api_call = self._orig  # type: ignore[method-assign]


def _warm_up(settings: Settings, messages: int) -> str:
    """The same mix once, for a tenant of its own, in the same tables (its items are left out of
    every figure; its stream is counted before the measured run starts): the wall time is a
    steady instance's, both sides warm (DynamoDB Local's JVM compiles its hot paths over the
    first thousand or so writes: a cold first run is ~1.7x slower; a Lambda instance lives for
    thousands of batches). Tables of their own would not do: DynamoDB Local gets slower with
    every stream-enabled table it keeps (~1.5x with a second set)."""
    from tests.support import make_tenant

    tenant = make_tenant(settings)
    envelopes = sorted(traffic(tenant.account_id, messages, seed=5), key=lambda e: e["time"])
    for at in range(0, len(envelopes), QUEUE_BATCH):
        records = [
            {"messageId": str(n), "body": json.dumps(e)}
            for n, e in enumerate(envelopes[at : at + QUEUE_BATCH])
        ]
        ingest_queue_records(records, tenants=tenant.directory, store=tenant.store)
    return tenant.tenant_id


def _capacity(messages: int) -> dict[str, Any]:
    from chalicelib.core import logs

    logs.silence_metrics()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    from tests.support import make_tenant

    with DynamoDBLocal() as ddb:
        settings = Settings(table_prefix="bench-", dynamodb_endpoint=ddb.endpoint)
        create_tables(settings)
        tables.configure(settings)
        warm = _warm_up(settings, messages)
        tenant = make_tenant(settings)
        # As they reach ingest in production: in time order, from the ingest queue in batches
        # of up to 100 (infra/ingest_queue.py).
        envelopes = sorted(traffic(tenant.account_id, messages, seed=3), key=lambda e: e["time"])
        report = IngestReport()
        from devstack.stream_poller import StreamPoller

        poller = StreamPoller(settings)
        poller.drain()
        with CapacityMeter() as meter:
            began = time.perf_counter()
            for at in range(0, len(envelopes), QUEUE_BATCH):
                records = [
                    {"messageId": str(n), "body": json.dumps(e)}
                    for n, e in enumerate(envelopes[at : at + QUEUE_BATCH])
                ]
                part, failed = ingest_queue_records(
                    records, tenants=tenant.directory, store=tenant.store
                )
                assert not failed, failed
                report.outcomes += part.outcomes
            wall = time.perf_counter() - began
            # count_events: the stream's records in its batches (up to 1,000: a busy tenant's).
            with CapacityMeter() as counting_meter:
                poller.drain()
        stored = report.counts().get("stored", 0)
        with CapacityMeter() as dup_meter:
            again = ingest_envelopes(envelopes[:500], tenants=tenant.directory, store=tenant.store)
        dups = again.counts().get("duplicate", 0)
        costs = _costs(settings, ddb.endpoint, tenant, stored, skip_tenant=warm)
        costs.update(_by_batch_size(settings))
        costs.update(_lag_ms_p99(settings))
    return {
        **costs,
        "ingest_wall_ms_per_event": round(wall / len(envelopes) * 1000, 2),
        "ingest_events_measured": stored,
        "ingest_wcu_per_event": round(meter.billed_write / stored, 3),
        "ingest_wcu_per_event_of_which_counting": round(counting_meter.billed_write / stored, 3),
        "ingest_wcu_per_event_as_reported_by_dynamodb_local": round(
            meter.units["write"] / stored, 3
        ),
        "ingest_rcu_per_event": round(meter.units["read"] / stored, 3),
        "ingest_requests_per_event": round(sum(meter.requests.values()) / stored, 3),
        "ingest_requests_by_operation_per_event": {
            op: round(n / stored, 3) for op, n in sorted(meter.requests.items())
        },
        "ingest_wcu_by_table_per_event": {
            table: round(units / stored, 3)
            for table, units in sorted(meter.billed_by_table.items())
        },
        "ingest_wcu_by_table_per_event_as_reported_by_dynamodb_local": {
            k.split(":", 1)[1]: round(v / stored, 3)
            for k, v in sorted(meter.by_table.items())
            if k.startswith("write:")
        },
        "ingest_duplicate_wcu_per_event": round(dup_meter.units["write"] / max(1, dups), 3),
    }


def _costs(
    settings: Settings, endpoint: str, tenant: Any, stored: int, skip_tenant: str | None = None
) -> dict[str, Any]:
    """The worst event's bill, the storage per event, the all-in CPU (bench/ingest_costs.py)."""
    import boto3
    from chalicelib.ingest.directory import TenantDirectory
    from chalicelib.ingest.store import EventStore

    from bench import ingest_costs

    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=settings.region)
    by_part = ingest_costs.storage_bytes_by_part(client, settings.table_prefix, skip_tenant)
    stored_bytes = sum(by_part.values())
    worst = ingest_costs.adversarial_envelope(tenant.account_id, datetime.now(UTC))
    with ingest_costs.ItemSizeMeter() as meter:
        outcome = ingest_envelopes([worst], tenants=tenant.directory, store=tenant.store)
    assert outcome.counts() == {"stored": 1}, outcome.counts()
    seed = {
        settings.table_prefix + name: client.scan(TableName=settings.table_prefix + name)["Items"]
        for name in ("accounts", "tenants")
    }
    directory, store = TenantDirectory(ttl_seconds=60), EventStore(settings)

    def per_invocation(envelopes: list[Any]) -> None:
        for envelope in envelopes:  # one envelope per Lambda invocation, as EventBridge sends
            ingest_envelopes([envelope], tenants=directory, store=store)

    def per_batch(envelopes: list[Any]) -> None:
        for i in range(0, len(envelopes), 100):  # the ingest queue's batches
            records = [
                {"messageId": str(n), "body": json.dumps(e)}
                for n, e in enumerate(envelopes[i : i + 100])
            ]
            ingest_queue_records(records, tenants=directory, store=store)

    cpu, requests = min(
        (ingest_costs.cpu_all_in(seed, tenant.account_id, 300, per_invocation) for _ in range(3)),
        key=lambda r: r[0],
    )
    batched, _ = min(
        (ingest_costs.cpu_all_in(seed, tenant.account_id, 300, per_batch) for _ in range(3)),
        key=lambda r: r[0],
    )
    return {
        "storage_bytes_per_event": round(stored_bytes / stored),
        "storage_bytes_per_event_by_part": {
            part: round(n / stored) for part, n in sorted(by_part.items()) if n >= stored
        },
        "ingest_wcu_worst_event": round(meter.billed_write, 1),
        "ingest_item_bytes_max_worst_event": meter.largest,
        "ingest_requests_worst_event": sum(meter.requests.values()),
        "ingest_cpu_us_per_event_all_in": cpu,
        "ingest_cpu_us_per_event_all_in_queue_batches": batched,
        "ingest_requests_per_event_stubbed": requests,
    }


BATCH_SIZES = (1, 5, 20, 100)


def _by_batch_size(settings: Settings, messages: int = 200) -> dict[str, Any]:
    """`ingest_wcu_per_event` (count_events included) and requests per event by the number of
    events a batch brings: the realistic mix in time order, in ingest batches of 1, 5, 20, 100,
    and count_events' stream batches of the same events. A tenant at R events a second gets
    ingest batches of about min(100, R x 1 s) and stream batches of min(1000, R x 30 s)
    (infra/ingest_queue.py, infra/counting.py): the headline figure is a busy tenant."""
    from devstack.stream_poller import StreamPoller
    from tests.support import make_tenant

    poller = StreamPoller(settings)
    out: dict[str, Any] = {}
    for size in BATCH_SIZES:
        poller.drain()
        tenant = make_tenant(settings)
        envelopes = sorted(traffic(tenant.account_id, messages, seed=9), key=lambda e: e["time"])
        counted = 0.0
        with CapacityMeter() as meter:
            for at in range(0, len(envelopes), size):
                records = [
                    {"messageId": str(n), "body": json.dumps(e)}
                    for n, e in enumerate(envelopes[at : at + size])
                ]
                _, failed = ingest_queue_records(
                    records, tenants=tenant.directory, store=tenant.store
                )
                assert not failed, failed
                before = meter.billed_write
                poller.drain()  # count_events' batch: the same events
                counted += meter.billed_write - before
        out[str(size)] = {
            "wcu_per_event": round(meter.billed_write / len(envelopes), 3),
            "wcu_per_event_of_which_counting": round(counted / len(envelopes), 3),
            "requests_per_event": round(sum(meter.requests.values()) / len(envelopes), 3),
        }
    return {"ingest_by_events_per_batch": out}


def _lag_ms_p99(settings: Settings, probes: int = 60) -> dict[str, Any]:
    """How long after ingest returns the counters include the event, on the local stack: the
    poller thread of `make dev` (every 0.5 s) handing DynamoDB Local's stream to count_events'
    code. In production the event source mapping's window (infra/counting.py) sets it."""
    import threading

    from devstack.stream_poller import StreamPoller
    from tests.support import make_tenant

    poller = StreamPoller(settings)
    poller.drain()
    stop = threading.Event()
    thread = threading.Thread(target=poller.run_forever, args=(stop,), daemon=True)
    thread.start()
    tenant = make_tenant(settings)
    envelopes = sorted(traffic(tenant.account_id, probes, seed=4), key=lambda e: e["time"])
    sends = [e for e in envelopes if e["detail"]["eventType"] == "Send"][:probes]
    lags = []
    raw = _raw_counter_reader(settings, tenant.tenant_id)
    try:
        for n, envelope in enumerate(sends, start=1):
            ingest_envelopes([envelope], tenants=tenant.directory, store=tenant.store)
            began = time.perf_counter()
            while raw() < n:
                time.sleep(0.005)
            lags.append((time.perf_counter() - began) * 1000)
    finally:
        stop.set()
        thread.join(timeout=5)
    lags.sort()
    return {
        "aggregate_lag_ms_p99": round(lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
        "aggregate_lag_ms_p50": round(lags[len(lags) // 2], 1),
    }


def _raw_counter_reader(settings: Settings, tenant_id: str) -> Any:
    """The tenant's SENT count as stored (not through the models, which tests drain first)."""
    import boto3

    client = boto3.client(
        "dynamodb", endpoint_url=settings.dynamodb_endpoint, region_name=settings.region
    )

    def read() -> int:
        items = client.query(
            TableName=settings.table_prefix + "counters",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.counter_pk(tenant_id, 0)}},
            ConsistentRead=True,
        )["Items"]
        return sum(int(i["SENT"]["N"]) for i in items if "SENT" in i)

    return read


class IngestCompute:
    """What ingest computes per event, as the store runs it (without DynamoDB): parse, classify,
    fold, judge, suppression. Fed the traffic in slices (`run`), so that another measurement can
    be interleaved with it; the messages' states carry over from slice to slice."""

    def __init__(self) -> None:
        self._states: dict[str, Any] = {}

    def run(self, envelopes: list[dict[str, Any]]) -> float:
        """Process CPU seconds of these envelopes."""
        states = self._states
        start = time.process_time()
        for raw in envelopes:
            event = parse_event(parse_envelope(raw))
            mid = event.mail.message_id
            before = states.get(mid)
            signal = signal_of(event)
            states[mid] = apply(before, event, signal=signal)
            judge(before, states[mid], event, signal)
            suppression_targets(event)
        return time.process_time() - start


def ingest_cpu(envelopes: list[dict[str, Any]]) -> float:
    """Process CPU per event (µs) of what ingest computes over the whole traffic."""
    return IngestCompute().run(envelopes) / len(envelopes) * 1e6


def recommended_shards(events_per_second: float, headroom: float = 0.8) -> int:
    return max(1, math.ceil(events_per_second / (PARTITION_WRITE_LIMIT * headroom)))


def _hot_tenant(write_shards: int) -> int:
    """Max writes in one second to one partition key (tables and indexes) at HOT_RATE."""
    tenant = "hot-tenant"
    start = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    msg_rate = HOT_RATE // 3  # about 3 events per message
    per_key_second: Counter[tuple[str, int]] = Counter()
    produced = 0
    second = 0
    pending: list[tuple[datetime, dict[str, Any]]] = []
    for second in range(HOT_SECONDS):
        t0 = start + timedelta(seconds=second)
        stream = traffic("111122223333", msg_rate, start=t0, span=timedelta(seconds=1), seed=second)
        for raw in stream:
            pending.append((datetime.fromisoformat(raw["time"]), raw))
    pending.sort(key=lambda p: p[0])
    # Replay the events at exactly HOT_RATE per second, in time order.
    for i, (_, raw) in enumerate(pending[: HOT_RATE * HOT_SECONDS]):
        sec = i // HOT_RATE
        event = parse_event(parse_envelope(raw))
        shard = keys.shard_of(event.key, write_shards)
        written = [
            keys.events_pk(tenant, shard),
            keys.status_pk(tenant, event.status, shard),
            keys.message_pk(tenant, event.mail.message_id),
            keys.counter_pk(tenant, shard),
        ]
        written += [keys.recipient_pk(tenant, r) for r in event.recipients]
        if isinstance(event.detail, Click):
            written.append(keys.link_pk(tenant, event.timestamp, shard))
        written += [keys.tenant_pk(tenant) for _ in suppression_targets(event)]
        for key in set(written):
            per_key_second[(key, sec)] += 1
        produced += 1
    assert produced == HOT_RATE * HOT_SECONDS, produced
    return max(per_key_second.values())


def run() -> dict[str, Any]:
    shards = recommended_shards(HOT_RATE)
    out: dict[str, Any] = {}
    out.update(_capacity(messages=int(os.environ.get("SESAMI_BENCH_MESSAGES", "400"))))
    out["hot_tenant_events_per_s"] = HOT_RATE
    out["hot_tenant_write_shards"] = shards
    out["hot_tenant_max_partition_writes_per_s"] = _hot_tenant(shards)
    out["hot_tenant_max_partition_writes_per_s_unsharded"] = _hot_tenant(1)
    return out


if __name__ == "__main__":
    print(run())
