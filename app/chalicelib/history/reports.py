"""What the API reports beyond the events list: one message, one recipient, links, statistics.
Every read is keyed by the tenant; statistics read pre-aggregated hourly buckets, so their cost
grows with the number of buckets in the range, not with the number of events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import NotFound
from chalicelib.core.tables import (
    AGGREGATE_SK,
    CounterModel,
    EventModel,
    LinkCounterModel,
    MessageEventModel,
    MessageModel,
    SuppressionModel,
)
from chalicelib.events.status import Status
from chalicelib.history.event_list import TimeRange

# SES reputation lines (AWS SES documentation): review / may pause.
BOUNCE_LINES = (0.05, 0.10)
COMPLAINT_LINES = (0.001, 0.005)
MAX_RECIPIENT_EVENTS = 1_000


def _live(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at > now


def _message(tenant_id: str, message_id: str, now: datetime) -> MessageModel | None:
    """The live aggregate; a message wholly erased (a tombstone, lifecycle/erasure.py) is none."""
    try:
        item = MessageModel.get(keys.message_pk(tenant_id, message_id), AGGREGATE_SK)
    except MessageModel.DoesNotExist:
        return None
    if (item.body or {}).get("erased") == "whole":
        return None
    return item if _live(item.expires_at, now) else None


def message_detail(tenant_id: str, message_id: str, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    agg = _message(tenant_id, message_id, now)
    if agg is None:
        raise NotFound(f"no message {message_id[:80]!r} for this tenant")
    pk = keys.message_pk(tenant_id, message_id)
    entries = [
        e
        for e in MessageEventModel.query(pk, MessageEventModel.sk.startswith("E#"))
        if _live(e.expires_at, now)
    ]
    body = agg.body or {}
    user_agents = Counter(
        (e.detail or {}).get("user_agent") for e in entries if e.status == Status.OPENED.value
    )
    user_agents.pop(None, None)
    return {
        "message_id": agg.message_id,
        "subject": agg.subject,
        "from": agg.source,
        "sent_at": agg.sent_at,
        "status": agg.status,
        "status_at": agg.status_at,
        "destination": body.get("destination", []),
        "tags": body.get("tags", {}),
        "events": [
            {
                "type": e.event_type,
                "status": e.status,
                "at": e.occurred_at,
                "recipients": sorted(e.recipients or []),
                "detail": e.detail or {},
            }
            for e in entries
        ],
        "recipients": body.get("recipients", {}),
        "opens": {
            "count": agg.opens,
            "first_at": body.get("first_open_at"),
            "last_at": body.get("last_open_at"),
            "user_agents": [{"user_agent": ua, "count": n} for ua, n in user_agents.most_common()],
        },
        "clicks": {
            "count": agg.clicks,
            "links": [
                {"url": url, "count": n}
                for url, n in sorted(body.get("links", {}).items(), key=lambda kv: -kv[1])
            ],
            "other_links": body.get("links_other", 0),
        },
    }


def recipient_history(
    tenant_id: str, address: str, span: TimeRange, limit: int, now: datetime | None = None
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    address = address.strip().lower()
    rows = EventModel.by_recipient.query(
        keys.recipient_pk(tenant_id, address),
        EventModel.sk.between(keys.iso_ms(span.start), keys.iso_ms(span.end) + "~"),
        scan_index_forward=False,
        limit=MAX_RECIPIENT_EVENTS,
    )
    order: list[str] = []
    for row in rows:
        if row.message_id not in order:
            order.append(row.message_id)
    messages = []
    for message_id in order[:limit]:
        agg = _message(tenant_id, message_id, now)
        if agg is None:
            continue
        mine = (agg.body or {}).get("recipients", {}).get(address, {})
        messages.append(
            {
                "message_id": message_id,
                "subject": agg.subject,
                "sent_at": agg.sent_at,
                "status": mine.get("status", agg.status),
                "opens": mine.get("opens", 0),
                "clicks": mine.get("clicks", 0),
                "first_open_at": mine.get("first_open_at"),
                "last_open_at": mine.get("last_open_at"),
                "bounce_type": mine.get("bounce_type"),
            }
        )
    suppression = None
    try:
        entry = SuppressionModel.get(keys.tenant_pk(tenant_id), address)
        suppression = {
            "reason": entry.reason,
            "since": entry.created_at,
            "bounce_type": entry.bounce_type,
            "bounce_subtype": entry.bounce_subtype,
            "feedback_type": entry.feedback_type,
            "diagnostic_code": entry.diagnostic_code,
            "source_message_id": entry.source_message_id,
        }
    except SuppressionModel.DoesNotExist:
        suppression = _erased_suppression(tenant_id, address)
    return {
        "recipient": address,
        "suppressed": suppression is not None,
        "suppression": suppression,
        "messages": messages,
        "totals": {
            "messages": len(messages),
            "opens": sum(m["opens"] for m in messages),
            "clicks": sum(m["clicks"] for m in messages),
        },
    }


def _erased_suppression(tenant_id: str, address: str) -> dict[str, Any] | None:
    """An address erased while suppressed is kept suppressed under its hash only."""
    try:
        entry = SuppressionModel.get(
            keys.erased_pk(tenant_id), keys.address_hash(tenant_id, address)
        )
    except SuppressionModel.DoesNotExist:
        return None
    return {"reason": entry.reason, "since": entry.created_at, "erased": True}


# One query per day and shard: a year is 366 partitions per shard, so they are read side by side.
LINK_READERS = 8


def _clicks_in(pk: str) -> Counter[str]:
    clicks: Counter[str] = Counter()
    for item in LinkCounterModel.query(pk):
        clicks[item.url] += int(item.clicks)
    return clicks


def _each_partition(partitions: list[str]) -> list[Counter[str]]:
    """Clicks per URL in each partition. The first query runs alone, so that the model's client
    exists before threads share it (botocore clients are thread-safe once built)."""
    if not partitions:
        return []
    first = _clicks_in(partitions[0])
    if len(partitions) == 1:
        return [first]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=LINK_READERS) as pool:
        return [first, *pool.map(_clicks_in, partitions[1:])]


def top_links(tenant_id: str, shards: int, span: TimeRange, top: int) -> dict[str, Any]:
    """Clicks per link over the days of the range (links are counted per UTC day)."""
    partitions = [
        keys.link_pk(tenant_id, day, shard) for day in span.days() for shard in range(shards)
    ]
    clicks: Counter[str] = Counter()
    for counted in _each_partition(partitions):
        clicks.update(counted)
    return {
        "from": keys.day_of(span.start),
        "to": keys.day_of(span.end),
        "links": [{"url": url, "clicks": n} for url, n in clicks.most_common(top)],
        "total_clicks": sum(clicks.values()),
        "distinct_links": len(clicks),
    }


def _state(rate: float, lines: tuple[float, float]) -> str:
    return "at_risk" if rate >= lines[1] else "warning" if rate >= lines[0] else "ok"


def stats(tenant_id: str, shards: int, span: TimeRange, interval: str) -> dict[str, Any]:
    buckets: dict[str, Counter[str]] = {}
    read = 0
    for shard in range(shards):
        for item in CounterModel.query(
            keys.counter_pk(tenant_id, shard),
            CounterModel.sk.between(keys.counter_sk(span.start), keys.counter_sk(span.end)),
        ):
            read += 1
            hour = item.sk[2:]
            label = hour if interval == "hour" else hour[:10]
            bucket = buckets.setdefault(label, Counter())
            for name, value in item.attribute_values.items():
                if name.isupper():
                    bucket[name] += int(value)
    totals: Counter[str] = Counter()
    for bucket in buckets.values():
        totals.update(bucket)
    sent = totals.get("SENT", 0)
    hard = totals.get("BOUNCED_PERMANENT", 0)
    complaints = totals.get("COMPLAINED", 0)
    bounce_rate = hard / sent if sent else 0.0
    complaint_rate = complaints / sent if sent else 0.0
    statuses = [s.value for s in Status]
    series = []
    step = timedelta(hours=1) if interval == "hour" else timedelta(days=1)
    cursor = span.start.replace(minute=0, second=0, microsecond=0)
    if interval == "day":
        cursor = cursor.replace(hour=0)
    while cursor <= span.end:
        label = keys.hour_of(cursor) if interval == "hour" else keys.day_of(cursor)
        counts = buckets.get(label, Counter())
        series.append({"t": label, **{s: counts.get(s, 0) for s in statuses}})
        cursor += step
    return {
        "from": span.start.isoformat(),
        "to": span.end.isoformat(),
        "interval": interval,
        "series": series,
        "totals": {s: totals.get(s, 0) for s in statuses} | {"BOUNCED_PERMANENT": hard},
        "rates": {
            "bounce": {
                "value": round(bounce_rate, 5),
                "review_at": BOUNCE_LINES[0],
                "pause_at": BOUNCE_LINES[1],
                "state": _state(bounce_rate, BOUNCE_LINES),
            },
            "complaint": {
                "value": round(complaint_rate, 5),
                "review_at": COMPLAINT_LINES[0],
                "pause_at": COMPLAINT_LINES[1],
                "state": _state(complaint_rate, COMPLAINT_LINES),
            },
        },
        "buckets_read": read,
    }
