"""Where a tenant's items are, for erasure and deletion: every partition is found from keys the
tenant owns (keys.py) or from the tenant's `by_tenant` / `by_pending` index entries, never by a
scan (invariant 7). Deletes go in batches of 25 (DynamoDB's BatchWriteItem)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from chalicelib.core import dynamo, keys
from chalicelib.core.tables import (
    AGGREGATE_SK,
    EventModel,
    IdempotencyModel,
    MessageEventModel,
    MessageModel,
    WebhookMarkModel,
)

_M = TypeVar("_M")
PAGE = 100


def delete(model: Any, item_keys: Iterable[tuple[str, str | None]]) -> int:
    """Delete items by key (absent ones are no error); returns how many keys were given."""
    wanted = list(dict.fromkeys(item_keys))
    if not wanted:
        return 0
    with dynamo.storage(f"{model.Meta.table_name} delete"), model.batch_write() as batch:
        for hash_key, range_key in wanted:
            batch.delete(model(hash_key, range_key) if range_key is not None else model(hash_key))
    return len(wanted)


def save(items: Iterable[Any]) -> int:
    n = 0
    for item in items:
        with dynamo.storage(f"{item.Meta.table_name} write"):
            item.save()
        n += 1
    return n


def page(
    model: Any, hash_key: str, start: dict[str, Any] | None = None, **query: Any
) -> tuple[list[Any], dict[str, Any] | None]:
    """One page of a partition (or of an index, with `index=`), and where the next starts."""
    index = query.pop("index", None)
    source = index if index is not None else model
    consistent = {} if index is not None else {"consistent_read": True}
    with dynamo.storage(f"{model.Meta.table_name} read"):
        result = source.query(hash_key, limit=PAGE, last_evaluated_key=start, **consistent, **query)
        items = list(result)
        return items, result.last_evaluated_key if len(items) == PAGE else None


def walk(
    model: Any,
    partitions: Sequence[tuple[Any, str]],
    doc: dict[str, Any],
    out_of_time: Callable[[], bool],
    handle: Callable[[list[Any]], None],
    *,
    name: str,
) -> bool:
    """Every item of `partitions` ((label, partition key), in the labels' order), a page at a
    time, handed to `handle`. Resumable: out of time, the job's `cursor` keeps the label of the
    partition it stopped in and where in it ({name: label, "start": ...}); the next run goes on
    from there (a label no longer listed: from the next one). True when every page was handled."""
    cursor = doc.get("cursor") or {}
    at, resume = cursor.get(name), cursor.get("start")
    for label, hash_key in partitions:
        if at is not None and label < at:
            continue
        start = resume if label == at else None
        while True:
            rows, start = page(model, hash_key, start)
            handle(rows)
            if start is None:
                break
            if out_of_time():
                doc["cursor"] = {name: label, "start": start}
                return False
    return True


def everything(model: Any, hash_key: str, **query: Any) -> Iterator[Any]:
    start: dict[str, Any] | None = None
    while True:
        items, start = page(model, hash_key, start, **query)
        yield from items
        if start is None:
            return


def row_shard(row_pk: str) -> int:
    """The shard of an events-table base row (T#t#S#n)."""
    return int(row_pk.rsplit("#", 1)[-1])


def tag_copies(tenant_id: str, row: EventModel) -> list[tuple[str, str]]:
    """The keys of a base row's copies in its tags' partitions (ingest/store.py writes them)."""
    shard = row_shard(row.pk)
    return [(keys.tag_pk(tenant_id, pair, shard), row.sk) for pair in sorted(row.tag_pairs or ())]


def message_entries(tenant_id: str, message_id: str) -> list[MessageEventModel]:
    pk = keys.message_pk(tenant_id, message_id)
    return list(
        everything(MessageEventModel, pk, range_key_condition=MessageEventModel.sk.startswith("E#"))
    )


def aggregate(tenant_id: str, message_id: str) -> MessageModel | None:
    return dynamo.get(MessageModel, keys.message_pk(tenant_id, message_id), AGGREGATE_SK)


ROW_PROBE = 8  # rows looked for per event of the destination: ingest writes at most 5 (caps)


def derived_rows(tenant_id: str, entries: Iterable[MessageEventModel]) -> list[tuple[str, str]]:
    """The base rows of a message's events, from its timeline: one per recipient (or one), at
    the event's time, key and shard (one more index is probed: a missing key costs nothing)."""
    out = []
    for entry in entries:
        named = len(entry.recipients or ()) + int(entry.recipients_more or 0)
        # An entry of the message's destination names no one (events/messages.py): ingest wrote
        # at most ingest/caps.MAX_ROW_RECIPIENTS rows for it, fewer than ROW_PROBE. (Entries from
        # before the caps name every recipient, and had a row each.)
        rows = ROW_PROBE if entry.for_destination() else max(1, named) + 1
        for index in range(rows):
            sk = f"{entry.at()}#{entry.key()}#{index:02d}"
            out.append((keys.events_pk(tenant_id, entry.row_shard()), sk))
    return out


def existing_rows(row_keys: Iterable[tuple[str, str]]) -> list[EventModel]:
    wanted = list(dict.fromkeys(row_keys))
    if not wanted:
        return []
    with dynamo.storage("event rows read"):
        return list(EventModel.batch_get(wanted))


def delete_message(tenant_id: str, message_id: str) -> dict[str, int]:
    """A message's whole partition (aggregate, timeline) and every row of its events, with
    their tag copies."""
    entries = message_entries(tenant_id, message_id)
    rows = existing_rows(derived_rows(tenant_id, entries))
    copies = [c for row in rows for c in tag_copies(tenant_id, row)]
    pk = keys.message_pk(tenant_id, message_id)
    removed = delete(MessageEventModel, [(pk, e.sk) for e in entries] + [(pk, AGGREGATE_SK)])
    return {
        "messages": removed,
        "events": delete(EventModel, [(r.pk, r.sk) for r in rows] + copies),
    }


def indexed(tenant_id: str, model: Any, index: Any) -> Iterator[Any]:
    """Every entry of the tenant in a `by_tenant` / `by_pending` index (keys only)."""
    for key in keys.tenant_index_keys(tenant_id):
        yield from everything(model, key, index=index)


def sending_partitions(tenant_id: str) -> list[str]:
    """The pk of every Idempotency-Key record and bulk batch of the tenant."""
    return sorted({i.pk for i in indexed(tenant_id, IdempotencyModel, IdempotencyModel.by_tenant)})


def webhook_endpoints(tenant_id: str) -> list[str]:
    """The ID of every endpoint of the tenant with a delivery log: its endpoints (EP#) and the
    deleted ones whose log is still kept (GONE#), told by their sort keys."""
    found = everything(WebhookMarkModel, keys.webhooks_pk(tenant_id))
    return sorted({m.sk.split("#", 1)[1] for m in found if m.sk.startswith(("EP#", "GONE#"))})


def days(since: datetime, until: datetime) -> list[datetime]:
    """Every UTC day from `since` to `until`, both included."""
    first = since.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    while first <= until:
        out.append(first)
        first += timedelta(days=1)
    return out
