"""What the API reports beyond the events list: one message, one recipient, links, statistics.
Every read is keyed by the tenant; statistics read pre-aggregated hourly buckets, so their cost
grows with the number of buckets in the range, not with the number of events.

Opens and clicks are reported by class (human, apple_privacy, image_proxy, scanner, unknown; see
events/engagement.py) beside the raw counts: the final verdicts, re-derived from the message's
stored facts, not the verdict each event got when it arrived.

Long by design: each report is a short read of its own, and they share the per-class totals and
the recipient views; one module keeps the views consistent."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import addresses, dynamo, keys
from chalicelib.core.tables import (
    CounterModel,
    EventModel,
    LinkCounterModel,
    SuppressionModel,
)
from chalicelib.events import engagement as eng
from chalicelib.events.links import is_truncated
from chalicelib.events.status import Status
from chalicelib.history.event_list import TimeRange
from chalicelib.history.timeline import aggregates, judged, message_detail

__all__ = ["message_detail", "recipient_history", "stats", "top_links"]

# SES reputation lines (AWS SES documentation): review / may pause.
BOUNCE_LINES = (0.05, 0.10)
COMPLAINT_LINES = (0.001, 0.005)
MAX_RECIPIENT_EVENTS = 1_000


def recipient_history(
    tenant_id: str, address: str, span: TimeRange, limit: int, now: datetime | None = None
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    address = addresses.key(address)  # the key ingest stored the recipient under
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
    found = aggregates(tenant_id, order[:limit], now)
    for message_id in order[:limit]:
        agg = found.get(message_id)
        if agg is None:
            continue
        body = agg.body or {}
        mine = body.get("recipients", {}).get(address, {})
        # SES attributes opens and clicks to a recipient only on a message to one address: on
        # a message to several, they are the message's, and could be any recipient's.
        destination = body.get("destination") or []
        alone = destination == [address]
        shared = len(destination) > 1
        assessment = judged(body)
        messages.append(
            {
                "message_id": message_id,
                "subject": agg.subject,
                "sent_at": agg.sent_at,
                "status": mine.get("status", agg.status),
                "opens": mine.get("opens", 0),
                "clicks": mine.get("clicks", 0),
                "opens_by": assessment.by_class(eng.OPEN) if alone else {},
                "clicks_by": assessment.by_class(eng.CLICK) if alone else {},
                "unattributed": {
                    "opens": int(agg.opens or 0) if shared else 0,
                    "clicks": int(agg.clicks or 0) if shared else 0,
                },
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
            "opens_by": _sum_by(m["opens_by"] for m in messages),
            "clicks_by": _sum_by(m["clicks_by"] for m in messages),
            "unattributed": {
                kind: sum(m["unattributed"][kind] for m in messages) for kind in ("opens", "clicks")
            },
        },
    }


def _sum_by(parts: Any) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return dict(total)


def _erased_suppression(tenant_id: str, address: str) -> dict[str, Any] | None:
    """An address erased while suppressed is kept suppressed under its hash only."""
    try:
        entry = SuppressionModel.get(
            keys.erased_pk(tenant_id), keys.address_hash(tenant_id, address)
        )
    except SuppressionModel.DoesNotExist:
        return None
    return {"reason": entry.reason, "since": entry.created_at, "erased": True}


# One query per month and shard (a year: 13 a shard), read side by side.
LINK_READERS = 8


_SPLIT = ("human", "scanner")


def _link_reads(tenant_id: str, shards: int, span: TimeRange) -> list[tuple[str, str, str]]:
    """(partition, lowest sort key, highest) of each query GET /links makes: the days the range
    covers in each month's partition. (Months once also had a rollup item, M#...: no longer
    written, and never read, so that nothing is counted twice.)"""
    months: dict[str, list[datetime]] = {}
    for day in span.days():
        months.setdefault(keys.month_of(day), []).append(day)
    reads = []
    for days in months.values():
        first, last = days[0], days[-1]
        low, high = f"D#{keys.day_of(first)}#", f"D#{keys.day_of(last)}#~"
        reads += [(keys.link_pk(tenant_id, first, shard), low, high) for shard in range(shards)]
    return reads


def _clicks_in(read: tuple[str, str, str]) -> Counter[tuple[str, str]]:
    """(url, "clicks" | "human" | "scanner") -> count, in one query's items."""
    pk, low, high = read
    clicks: Counter[tuple[str, str]] = Counter()
    for item in LinkCounterModel.query(pk, LinkCounterModel.sk.between(low, high)):
        clicks[(item.url, "clicks")] += int(item.clicks or 0)
        for name in _SPLIT:
            clicks[(item.url, name)] += int(getattr(item, name) or 0)
    return clicks


def _each_read(reads: list[tuple[str, str, str]]) -> list[Counter[tuple[str, str]]]:
    """Clicks per URL of each read. The first query runs alone, so that the model's client
    exists before threads share it (botocore clients are thread-safe once built)."""
    if not reads:
        return []
    first = _clicks_in(reads[0])
    if len(reads) == 1:
        return [first]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=LINK_READERS) as pool:
        return [first, *pool.map(_clicks_in, reads[1:])]


def top_links(tenant_id: str, shards: int, span: TimeRange, top: int) -> dict[str, Any]:
    """Clicks per link over the days of the range (links are counted per UTC day)."""
    reads = _link_reads(tenant_id, shards, span)
    counted: Counter[tuple[str, str]] = Counter()
    for part in _each_read(reads):
        counted.update(part)
    clicks = Counter({url: n for (url, name), n in counted.items() if name == "clicks" and n})
    return {
        "from": keys.day_of(span.start),
        "to": keys.day_of(span.end),
        "links": [
            {
                "url": url,
                "truncated": is_truncated(url),
                "clicks": n,
                **{name: counted[(url, name)] for name in _SPLIT},
            }
            for url, n in clicks.most_common(top)
        ],
        "total_clicks": sum(clicks.values()),
        "human_clicks": sum(n for (_, name), n in counted.items() if name == "human"),
        "scanner_clicks": sum(n for (_, name), n in counted.items() if name == "scanner"),
        "distinct_links": len(clicks),
        "queries": len(reads),
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
        series.append({"t": label, **{s: counts.get(s, 0) for s in (*statuses, *_HUMAN_SERIES)}})
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
            **engagement_rates(totals),
        },
        "engagement": engagement_totals(totals),
        "counting": counting_state(tenant_id),
        "buckets_read": read,
    }


COUNTING_BEHIND_S = 60  # the dashboard says the counts are behind past this


def counting_state(tenant_id: str) -> dict[str, Any]:
    """How current the counters are: they follow ingest through the messages table's stream
    (ingest/counting.py), a few seconds behind. `lag_seconds` is how far behind the newest
    record was when the counters last took the tenant's events in; `behind` when past
    COUNTING_BEHIND_S (the dashboard says so)."""
    item = dynamo.get(CounterModel, keys.counter_pk(tenant_id, 0), keys.COUNTED_SK)
    if item is None or not item.counted_at or not item.counted_through:
        return {"counted_at": None, "lag_seconds": None, "behind": False}
    at = datetime.fromisoformat(item.counted_at.replace("Z", "+00:00"))
    through = datetime.fromisoformat(item.counted_through.replace("Z", "+00:00"))
    lag = max(0.0, (at - through).total_seconds())
    return {
        "counted_at": item.counted_at,
        "counted_through": item.counted_through,
        "lag_seconds": round(lag, 1),
        "behind": lag > COUNTING_BEHIND_S,
    }


_HUMAN_SERIES = ("OPENED_HUMAN", "CLICKED_HUMAN")


def engagement_totals(totals: Counter[str]) -> dict[str, Any]:
    """Opens and clicks (events) by class, and messages opened and clicked (by anyone, by a
    person), from the hourly counters."""
    out: dict[str, Any] = {}
    for kind, status in ((eng.OPEN, "OPENED"), (eng.CLICK, "CLICKED")):
        by = {c.value: totals.get(eng.counter_name(kind, c), 0) for c in eng.CLASSES}
        out["opens" if kind == eng.OPEN else "clicks"] = {"total": totals.get(status, 0), **by}
    for name in eng.UNIQUE.values():
        out[name.lower()] = totals.get(name, 0)
    return out


def engagement_rates(totals: Counter[str]) -> dict[str, Any]:
    """Open and click rates over delivered mail: `value` counts a message opened (clicked) by
    anyone or anything, `human` only by a person. The first is an upper bound (machines open
    mail), the second a lower bound (a person behind Apple's proxy is not counted)."""
    delivered = totals.get("DELIVERED", 0)

    def rate(name: str) -> float:
        return round(totals.get(name, 0) / delivered, 5) if delivered else 0.0

    return {
        "open": {"value": rate("OPENED_MESSAGES"), "human": rate("OPENED_MESSAGES_HUMAN")},
        "click": {"value": rate("CLICKED_MESSAGES"), "human": rate("CLICKED_MESSAGES_HUMAN")},
    }
