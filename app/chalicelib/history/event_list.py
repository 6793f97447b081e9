"""Reads, every one keyed by the tenant: no scan exists, and none reads another tenant's keys.

Time-ordered reads (events, counters, link counters) never start before `now - retention`, so
items past their TTL that DynamoDB has not deleted yet are neither read nor returned.

The events list reads one or more *sources* (a partition of the events table or of an index,
newest first) and merges them: one source per write shard, times one per requested status. With
one source (one shard; one or no status; or a recipient) every item read is returned; with several,
each source is read in pages sized to its share of the page and topped up as the merge needs, so
little is read that is not returned. The cursor records, per source, where to continue.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.signing import Signer
from chalicelib.core.tables import EventModel
from chalicelib.events.status import Status

CURSOR_PURPOSE = "events-cursor"
MAX_LIMIT = 100
PRESETS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
}
DEFAULT_PRESET = "7d"
_TOP = "~"  # sorts after every character of a sort key


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @classmethod
    def parse(
        cls,
        start: str | None,
        end: str | None,
        preset: str | None,
        *,
        now: datetime,
        retention_days: int,
    ) -> TimeRange:
        earliest = now - timedelta(days=retention_days)
        if preset is not None and (start is not None or end is not None):
            raise InvalidRequest(
                "give either range or from/to, not both", details={"field": "range"}
            )
        if start is None and end is None:
            span = PRESETS.get(preset or DEFAULT_PRESET)
            if span is None:
                raise InvalidRequest(
                    f"range must be one of {', '.join(PRESETS)}", details={"field": "range"}
                )
            begin, finish = now - span, now
        else:
            finish = _instant(end, "to") if end is not None else now
            if finish < earliest:
                raise InvalidRequest(
                    f"to is before the retention window ({retention_days} days): nothing that "
                    "old is kept",
                    details={"field": "to"},
                )
            begin = (
                _instant(start, "from") if start is not None else finish - PRESETS[DEFAULT_PRESET]
            )
        if begin >= finish:
            raise InvalidRequest("from must be before to", details={"field": "from"})
        if begin > now:
            raise InvalidRequest("from is in the future", details={"field": "from"})
        # Cut to what can be stored: reads (one per day or hour) stay bounded by the retention
        # window whatever `to` says.
        return cls(max(begin, earliest), min(finish, now))

    def days(self) -> list[datetime]:
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        out = []
        while day <= self.end:
            out.append(day)
            day += timedelta(days=1)
        return out


def _instant(raw: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
        raise InvalidRequest(f"{name} is not an ISO 8601 time", details={"field": name}) from None


def parse_statuses(raw: Iterable[str]) -> list[Status]:
    out: list[Status] = []
    for chunk in raw:
        for name in chunk.split(","):
            name = name.strip().upper()
            if not name:
                continue
            try:
                status = Status(name)
            except ValueError:
                raise InvalidRequest(
                    f"status {name[:40]!r} is not one of {', '.join(s.value for s in Status)}",
                    details={"field": "status"},
                ) from None
            if status not in out:
                out.append(status)
    return out


def parse_limit(raw: str | None, default: int = 50, maximum: int = MAX_LIMIT) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidRequest(f"limit must be 1-{maximum}", details={"field": "limit"})
    return int(raw)


@dataclass(frozen=True)
class EventQuery:
    tenant_id: str
    shards: int
    range: TimeRange
    statuses: tuple[Status, ...] = ()
    recipient: str | None = None
    tag: tuple[str, str] | None = None
    engagement: tuple[str, ...] = ()  # opens and clicks of these classes only (a read filter)

    def fingerprint(self) -> str:
        """What a cursor is bound to, besides the tenant: the same filters. (The time range
        travels in the cursor itself, so that a preset like 7d does not move between pages.)"""
        filters: list[Any] = [self.statuses, self.recipient, self.tag]
        if self.engagement:
            filters.append(self.engagement)
        raw = json.dumps(filters, default=str)
        return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()


@dataclass
class EventPage:
    items: list[EventModel]
    next_cursor: str | None
    items_read: int
    requests: int = 0


@dataclass
class _Source:
    name: str
    fetch: Callable[
        [str, int], tuple[list[EventModel], int, str | None]
    ]  # (upper, n) -> items, read, more
    upper: str
    buffer: list[EventModel] = field(default_factory=list)
    more: bool = True


def _below(sk: str) -> str:
    """The largest sort-key bound strictly below `sk` (sort keys have a fixed width)."""
    return sk[:-1] + chr(ord(sk[-1]) - 1) + _TOP


def _sources(
    q: EventQuery,
) -> list[tuple[str, Callable[[str, int], tuple[list[EventModel], int, str | None]]]]:
    low = keys.iso_ms(q.range.start)
    condition_filter = None
    if q.tag is not None:
        condition_filter = EventModel.tag_pairs.contains(f"{q.tag[0]}={q.tag[1]}")
    engagement_filter = EventModel.engagement.is_in(*q.engagement) if q.engagement else None

    def runner(
        query: Callable[..., Any], pk: str, extra: Any = None
    ) -> Callable[[str, int], tuple[list[EventModel], int, str | None]]:
        def fetch(upper: str, n: int) -> tuple[list[EventModel], int, str | None]:
            combined = extra
            for more in (condition_filter, engagement_filter):
                if more is not None:
                    combined = more if combined is None else combined & more
            results = query(
                pk,
                EventModel.sk.between(low, upper),
                scan_index_forward=False,
                limit=n,
                page_size=n,
                filter_condition=combined,
            )
            items = list(results)
            last = results.last_evaluated_key
            # Continue below the last item *read* (a filter may have dropped it), if any is left.
            next_upper = _below(last["sk"]["S"]) if last else None
            return items, results.page_iter.total_scanned_count, next_upper

        return fetch

    status_filter = EventModel.status.is_in(*[s.value for s in q.statuses]) if q.statuses else None
    if q.recipient is not None:
        pk = keys.recipient_pk(q.tenant_id, q.recipient)
        return [("r", runner(EventModel.by_recipient.query, pk, status_filter))]
    out = []
    if q.tag is not None:
        # The tag view's partitions hold exactly the tagged rows: the tag is no filter there.
        condition_filter = None
        pair = f"{q.tag[0]}={q.tag[1]}"
        for shard in range(q.shards):
            pk = keys.tag_pk(q.tenant_id, pair, shard)
            out.append((f"tag:{shard}", runner(EventModel.query, pk, status_filter)))
        return out
    for shard in range(q.shards):
        if q.statuses:
            for status in q.statuses:
                pk = keys.status_pk(q.tenant_id, status, shard)
                out.append((f"{status.value}:{shard}", runner(EventModel.by_status.query, pk)))
        else:
            out.append(
                (f"all:{shard}", runner(EventModel.query, keys.events_pk(q.tenant_id, shard)))
            )
    return out


def list_events(
    q: EventQuery, *, limit: int, signer: Signer, cursor: str | None = None
) -> EventPage:
    positions: dict[str, str] | None = None
    if cursor is not None:
        data = signer.verify(CURSOR_PURPOSE, cursor, field="next")
        if data.get("t") != q.tenant_id or data.get("q") != q.fingerprint():
            raise InvalidRequest("next is not a valid token", details={"field": "next"})
        positions = data.get("p") or {}
        try:
            pinned = TimeRange(datetime.fromisoformat(data["s"]), datetime.fromisoformat(data["e"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidRequest("next is not a valid token", details={"field": "next"}) from None
        q = replace(q, range=pinned)
    high = keys.iso_ms(q.range.end) + _TOP
    sources = [
        _Source(name, fetch, positions.get(name, "") if positions is not None else high)
        for name, fetch in _sources(q)
        if positions is None or name in positions
    ]
    read = requests = 0

    def refill(source: _Source, n: int) -> None:
        nonlocal read, requests
        items, scanned, next_upper = source.fetch(source.upper, n)
        read += scanned
        requests += 1
        source.buffer.extend(items)
        source.more = next_upper is not None
        if next_upper is not None:
            source.upper = next_upper

    # With one source, read exactly the page. With several, read one item from each, then top
    # up an emptied source by a small share of what is still missing: little is read and not
    # returned (and read again for the next page), at the price of more, smaller queries.
    n = max(1, len(sources))
    first = limit if n == 1 else 1
    for source in sources:
        refill(source, first)
    out: list[EventModel] = []
    returned_upper: dict[str, str] = {}
    while len(out) < limit:
        for source in sources:  # an empty buffer may hide the newest item: refill it first
            if not source.buffer and source.more:
                refill(source, max(1, math.ceil((limit - len(out)) / (6 * n))))
        live = [s for s in sources if s.buffer]
        if not live:
            break
        best = max(live, key=lambda s: s.buffer[0].sk)
        item = best.buffer.pop(0)
        out.append(item)
        returned_upper[best.name] = _below(item.sk)
    next_positions = {}
    for source in sources:
        if source.buffer:  # read but not returned: continue just below the last one returned
            next_positions[source.name] = returned_upper.get(source.name) or (
                positions.get(source.name, high) if positions else high
            )
        elif source.more:
            next_positions[source.name] = source.upper
    token = None
    if next_positions:
        token = signer.sign(
            CURSOR_PURPOSE,
            {
                "t": q.tenant_id,
                "q": q.fingerprint(),
                "p": next_positions,
                "s": q.range.start.isoformat(),
                "e": q.range.end.isoformat(),
            },
        )
    return EventPage(out, token, read, requests)
