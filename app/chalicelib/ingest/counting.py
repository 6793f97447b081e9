"""The counters, from the messages table's stream: every timeline entry carries the counter
changes its event makes (`cc`, see engagement_writes.encode_changes), and this adds them up.

Why here and not in ingest's transaction: a transactional write bills twice, and an event's
counters were most of what made its aggregate's write transactional. Ingest now writes each
aggregate with a plain conditional put (one write unit a KB instead of two), and the counters
cost about nothing an event: a stream batch (up to 1,000 records, `count_events`' event source
mapping) folds into one update per counter item.

Exactly once:
- An entry's changes are counted when it appears (INSERT) and, when ingest rewrites it (it lost
  a race on its aggregate and planned again), by the difference (MODIFY: new - old). A rewrite
  with the same content makes no stream record. Entries removed (TTL, erasure, tenant deletion)
  take nothing back: counters expire on their own schedule, as before.
- Lambda retries a failed batch as the same batch (no bisection, no partial responses: see
  infra). Each transaction carries a marker item named by a digest of the batch's record IDs and
  the transaction's index, put only if absent: a retried batch skips what it already counted.
- A recipient erasure's mark (an entry rewritten with `cc` naming the erasure job) is not counted
  and takes nothing back: it is acknowledged, once the batch's counts are committed, so that the
  erasure knows every click of that entry has been counted (core/erasure_marks.py).
- What the stream itself may deliver twice (DynamoDB Streams and Lambda promise at least once:
  a shard split, an event source mapping moving) would be counted twice; it is rare, and no
  per-record deduplication is kept against it (it would cost a write per event).

Lag: each transaction also records, per tenant, when the newest record it counted was written
and when it was counted (`COUNTED` item of the tenant's first counter partition): GET /stats
says how far behind the counters are when they are (history/reports.py).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import dynamo, erasure_marks, keys, logs
from chalicelib.core.errors import TransientStorageError
from chalicelib.core.item_size import compact_json
from chalicelib.core.settings import Settings
from chalicelib.core.tables import COUNTED_ATTRIBUTE, CounterModel
from chalicelib.events.status import STATUS_OF, EventType
from chalicelib.ingest.engagement_writes import (
    CounterChange,
    Own,
    decode_changes,
    encode_changes,
    fold,
    minus,
)

MAX_COUNTER_ITEMS = 97  # a transaction: 100 items, less the marker and two tenants' lag items
MARKER_TTL = timedelta(days=2)  # a stream keeps records 24 hours
# A tenant's COUNTED item is written at most this often by one instance, unless the counting is
# late by as much (then at once, so that GET /stats can say the counts are behind).
LAG_WRITE_EVERY_S = 30.0
_lag_written: dict[str, float] = {}
MAX_ATTEMPTS = 5


@dataclass
class CountReport:
    records: int = 0
    counted: int = 0  # records whose changes were added
    malformed: int = 0  # records whose `cc` could not be read (logged, metric)
    transactions: int = 0
    already_counted: int = 0  # transactions a retried batch had already committed
    changes: int = 0  # counter items updated
    acknowledged: int = 0  # erasure marks acknowledged (core/erasure_marks.py)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "counted": self.counted,
            "malformed": self.malformed,
            "transactions": self.transactions,
            "already_counted": self.already_counted,
            "changes": self.changes,
            "acknowledged": self.acknowledged,
        }


def _image_value(image: Mapping[str, Any], name: str) -> Any:
    value = image.get(name) or {}
    if "S" in value:
        return value["S"]
    if "N" in value:
        return value["N"]
    return None


def _changes_of(image: Mapping[str, Any] | None, retention: timedelta) -> list[CounterChange]:
    if not image:
        return []
    raw = _image_value(image, COUNTED_ATTRIBUTE)
    if raw is None:
        return []
    tenant_id = keys.tenant_of_message_pk(str(_image_value(image, "pk")))
    shard = int(_image_value(image, "shard") or 0)
    return decode_changes(json.loads(raw), tenant_id, shard, retention, _own(image))


def _own(image: Mapping[str, Any]) -> Own | None:
    """The entry's event's hour and status (its sort key E#<time>#<key>, its type)."""
    at = str(_image_value(image, "sk") or "")[2:].partition("#")[0]
    try:
        status = STATUS_OF[EventType(str(_image_value(image, "event_type")))].value
    except ValueError:
        return None
    return at[:13], status  # keys.iso_ms's first 13 characters are keys.hour_of's


def changes_of_records(
    records: Iterable[Mapping[str, Any]], retention: timedelta, report: CountReport
) -> tuple[dict[str, list[CounterChange]], dict[str, float]]:
    """Per tenant, the counter changes of a batch of stream records, and the newest record's
    creation time (epoch seconds) per tenant."""
    per_tenant: dict[str, list[CounterChange]] = defaultdict(list)
    newest: dict[str, float] = {}
    for record in records:
        report.records += 1
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        stream = record.get("dynamodb") or {}
        new = stream.get("NewImage")
        if erasure_marks.job_of(_image_value(new or {}, COUNTED_ATTRIBUTE)) is not None:
            continue  # an erasure's mark: acknowledged (erasure_acks), never counted
        try:
            added = _changes_of(new, retention)
            taken = _changes_of(stream.get("OldImage"), retention)
        except (ValueError, TypeError, KeyError) as exc:
            report.malformed += 1
            logs.metric("CountingMalformed", 1, {}, event_id=record.get("eventID"), error=repr(exc))
            continue
        if not added and not taken:
            continue
        tenant_id = keys.tenant_of_message_pk(str(_image_value(new or {}, "pk")))
        per_tenant[tenant_id] += [*added, *minus(taken)]
        created = float(stream.get("ApproximateCreationDateTime") or 0)
        newest[tenant_id] = max(newest.get(tenant_id, 0.0), created)
        report.counted += 1
    return per_tenant, newest


def erasure_acks(records: Iterable[Mapping[str, Any]], now: datetime) -> list[CounterModel]:
    """The acknowledgements of the erasure marks among the records (core/erasure_marks.py)."""
    acks: dict[tuple[str, str], CounterModel] = {}
    for record in records:
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        new = (record.get("dynamodb") or {}).get("NewImage") or {}
        job = erasure_marks.job_of(_image_value(new, COUNTED_ATTRIBUTE))
        if job is None:
            continue
        pk, sk = str(_image_value(new, "pk")), str(_image_value(new, "sk"))
        ack = CounterModel(
            keys.counter_pk(keys.tenant_of_message_pk(pk), 0),
            keys.erasure_ack_sk(job, pk, sk),
            expires_at=now + MARKER_TTL,
        )
        acks[(ack.pk, ack.sk)] = ack
    return list(acks.values())


def count_stream_records(
    records: Sequence[Mapping[str, Any]],
    settings: Settings,
    clock: Any = None,
) -> CountReport:
    """Add a stream batch's counter changes, once. Raises TransientStorageError when DynamoDB
    fails (Lambda retries the same batch; what was committed is skipped by its marker)."""
    report = CountReport()
    retention = timedelta(seconds=settings.retention_seconds)
    per_tenant, newest = changes_of_records(records, retention, report)
    now = (clock or (lambda: datetime.now(UTC)))()
    batch = hashlib.blake2b(
        "|".join(str(r.get("eventID", "")) for r in records).encode(), digest_size=16
    ).hexdigest()
    chunks: list[tuple[list[CounterChange], set[str]]] = []
    for tenant_id, changes in sorted(per_tenant.items()):
        hours = next((c.pk for c in changes if c.model is CounterModel), None)
        for change in fold(changes, hours):
            if (
                not chunks
                or len(chunks[-1][0]) >= MAX_COUNTER_ITEMS
                or (tenant_id not in chunks[-1][1] and len(chunks[-1][1]) >= 2)
            ):
                chunks.append(([], set()))
            chunks[-1][0].append(change)
            chunks[-1][1].add(tenant_id)
    for index, (changes, tenants) in enumerate(chunks):
        marker = CounterModel(f"STREAM#{batch}", str(index), expires_at=now + MARKER_TTL)
        lags = {tid: newest[tid] for tid in tenants if _lag_due(tid, newest.get(tid), now)}
        if _commit(marker, changes, lags, now):
            report.transactions += 1
            report.changes += len(changes)
        else:
            report.already_counted += 1
    # After the counts they follow (a failure before here: Lambda retries the batch, the counts
    # are skipped by their markers, the acknowledgements written then; puts are idempotent).
    # One PutItem each (the function's role grants no BatchWriteItem; marks are rare).
    acks = erasure_acks(records, now)
    for ack in acks:
        with dynamo.storage("erasure acknowledgement"):
            ack.save()
    report.acknowledged = len(acks)
    lag = [now.timestamp() - t for t in newest.values() if t]
    if lag:
        logs.metric("CountingLagSeconds", round(max(lag), 1), {})
    return report


def _lag_due(tenant_id: str, created: float | None, now: datetime) -> bool:
    at = now.timestamp()
    late = created is not None and at - created >= LAG_WRITE_EVERY_S
    if late or at - _lag_written.get(tenant_id, 0.0) >= LAG_WRITE_EVERY_S:
        _lag_written[tenant_id] = at
        return True
    return False


def _commit(
    marker: CounterModel, changes: list[CounterChange], lags: dict[str, float], now: datetime
) -> bool:
    """One transaction: the marker (only if absent), the changes, each tenant's lag item. False
    when the marker existed (a retried batch: already counted)."""

    def build(txn: Any) -> None:
        txn.save(marker, condition=CounterModel.pk.does_not_exist())
        for change in changes:
            txn.update(change.item(), actions=change.actions(), add_version_condition=False)
        for tenant_id, created in lags.items():
            item = CounterModel(keys.counter_pk(tenant_id, 0), keys.COUNTED_SK)
            through = datetime.fromtimestamp(created, UTC) if created else now
            actions = [
                CounterModel.counted_at.set(keys.iso_ms(now)),
                CounterModel.counted_through.set(keys.iso_ms(through)),
            ]
            txn.update(item, actions=actions, add_version_condition=False)

    for attempt in range(MAX_ATTEMPTS):
        codes = dynamo.transact("counting", build, model=CounterModel)
        if codes is None:
            return True
        if codes[:1] == ["ConditionalCheckFailed"]:  # the marker: the only put, so first
            return False
        if attempt + 1 < MAX_ATTEMPTS:  # a concurrent transaction on a counter item
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
    raise TransientStorageError("counting kept conflicting")


def entry_changes(changes: Iterable[CounterChange], own: Own) -> str:
    """What an entry carries in `cc`: its event's counter changes, relative to the entry (`own`:
    its event's hour and status) and compact."""
    return compact_json(encode_changes(changes, own))
