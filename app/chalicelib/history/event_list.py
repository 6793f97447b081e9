"""Reads, every one keyed by the tenant: no scan exists, and none reads another tenant's keys.

Time-ordered reads (events, counters, link counters) never start before `now - retention`, so
items past their TTL that DynamoDB has not deleted yet are neither read nor returned.

The events list reads one or more *sources* (a partition of the events table or of an index,
newest first) and merges them: one source per write shard, times one per requested indexed
status (the status index is sparse: common statuses are one filtered source per shard). With one
source (one shard; a recipient) every item read is returned; with several, a page is at most two
rounds of queries run side by side (see `list_events`), so a page costs two round trips however
many shards. The cursor records, per source, where to continue. A recipient's page is one
round of the by_recipient index (keys, message, status, engagement: not a copy of each row) and
one BatchGetItem of the page's rows (at most MAX_LIMIT = 100).

Long by design: the query, its sources, the two rounds' estimates and the cursor are one
algorithm whose parts each assume the others' invariants (what a source's `upper` means, what the
cursor resumes); split, each half would need the other to be read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.errors import InvalidRequest
from chalicelib.core.signing import Signer
from chalicelib.core.tables import INDEXED_STATUSES, EventModel
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
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
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
    indexed_tags: frozenset[str] = frozenset()  # the tenant's tags that have a tag view

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
    rounds: int = 0  # DynamoDB round trips one after another (queries side by side count once)


# (lower, upper, n) -> items, items read, the bound to continue below (None: range exhausted)
Fetch = Callable[[str, str, int], tuple[list[EventModel], int, str | None]]
FILTER_READ_AHEAD = 3  # a source behind a filter reads this many rows per row wanted at first
FILTER_READ_MAX = 8  # ... and at most this many in the second round
ROUND_TWO_MARGIN = 1.1  # ... and each reads at most this share more than its own estimate
_ESTIMATE_SHORT = 1.0  # the second round aims at a full page (by each source's own density)
_POOL: ThreadPoolExecutor | None = None


@dataclass
class _Source:
    name: str
    fetch: Fetch
    upper: str  # everything above this bound has been read
    filtered: bool = False  # a filter drops rows: it reads more than it returns
    buffer: list[EventModel] = field(default_factory=list)
    more: bool = True  # rows may remain at or below `upper`


def _page_end(
    sources: list[_Source], bound: str, low: str, wanted: float
) -> tuple[str, dict[str, float]]:
    """Round two's lower bound: where, by each source's own density (the rows it returned in
    round one, newest to where it stopped), the sources together hold about `wanted` rows
    above it — the rows read already below the cut included (a sparse source read deeper than
    the cut in round one: those rows are the page's too, not read again). Each source then reads
    down to it, so that the page ends at one line and little is read below it."""
    rates: dict[str, float] = {}
    pooled_rows, pooled_ms = 0, 0.0
    for s in sources:
        if s.more and len(s.buffer) >= 2:
            span = _ms(s.buffer[0].sk) - _ms(s.upper)
            pooled_rows, pooled_ms = pooled_rows + len(s.buffer) - 1, pooled_ms + max(1.0, span)
    pooled = pooled_rows / pooled_ms if pooled_ms else 0.0
    for s in sources:
        if s.more:
            span = _ms(s.buffer[0].sk) - _ms(s.upper) if s.buffer else 0.0
            rates[s.name] = (
                (len(s.buffer) - 1) / span if len(s.buffer) >= 3 and span > 0 else pooled
            )
    if not any(rates.values()):
        return low, {}
    held = sorted((_ms(i.sk) for s in sources for i in s.buffer), reverse=True)

    def expected(at_ms: float) -> float:
        rows = float(sum(1 for t in held if t > at_ms))
        for s in sources:
            if s.more:
                rows += rates[s.name] * max(0.0, _ms(s.upper) - at_ms)
        return rows

    top, bottom = _ms(bound), _ms(low)
    if expected(bottom) > wanted:
        for _ in range(40):  # expected() falls as the bound rises: bisect to the wanted count
            mid = (top + bottom) / 2
            top, bottom = (mid, bottom) if expected(mid) < wanted else (top, mid)
    end = min(bottom, _ms(bound) - 1)
    # What each source should find between where it stopped and the page's end.
    own = {s.name: rates[s.name] * max(0.0, _ms(s.upper) - end) for s in sources if s.more}
    return max(low, _bound(end)), own


def _below(sk: str) -> str:
    """The largest sort-key bound strictly below `sk` (sort keys have a fixed width)."""
    return sk[:-1] + chr(ord(sk[-1]) - 1) + _TOP


def _ms(sk: str) -> float:
    """Milliseconds since the epoch of a sort key or bound (they start with keys.iso_ms)."""
    return datetime.fromisoformat(sk[:23]).replace(tzinfo=UTC).timestamp() * 1000


def _bound(ms: float) -> str:
    return keys.iso_ms(datetime.fromtimestamp(ms / 1000, UTC))


def _sources(q: EventQuery) -> list[tuple[str, Fetch, bool]]:
    engagement_filter = EventModel.engagement.is_in(*q.engagement) if q.engagement else None

    def runner(query: Callable[..., Any], pk: str, extra: Any = None) -> tuple[Fetch, bool]:
        combined = extra
        if engagement_filter is not None:
            combined = engagement_filter if combined is None else combined & engagement_filter

        def fetch(lower: str, upper: str, n: int) -> tuple[list[EventModel], int, str | None]:
            results = query(
                pk,
                EventModel.sk.between(lower, upper),
                scan_index_forward=False,
                page_size=n,
                filter_condition=combined,
            )
            # Exactly one DynamoDB Query: its first page (PynamoDB's iterator would go on
            # paging until it had `n` items past the filter).
            page = next(results.page_iter, None) or {}
            items = [EventModel.from_raw_data(raw) for raw in page.get("Items", ())]
            last = page.get("LastEvaluatedKey")
            # Continue below the last item *read* (a filter may have dropped it), if any is left.
            next_upper = _below(last["sk"]["S"]) if last else None
            return items, int(page.get("ScannedCount", len(items))), next_upper

        return fetch, combined is not None

    def status_filter(statuses: Iterable[Status]) -> Any:
        wanted = [s.value for s in statuses]
        return EventModel.status.is_in(*wanted) if wanted else None

    if q.recipient is not None:
        pk = keys.recipient_pk(q.tenant_id, q.recipient)
        return [("r", *runner(EventModel.by_recipient.query, pk, status_filter(q.statuses)))]
    out = []
    if q.tag is not None:
        pair = f"{q.tag[0]}={q.tag[1]}"
        for shard in range(q.shards):
            if q.tag[0] in q.indexed_tags:
                # The tag view's partitions hold exactly the tagged rows: the tag is no filter.
                pk, condition = keys.tag_pk(q.tenant_id, pair, shard), None
            else:  # not a designated tag: the time view, filtered
                pk = keys.events_pk(q.tenant_id, shard)
                condition = EventModel.tag_pairs.contains(pair)
            statuses = status_filter(q.statuses)
            if statuses is not None:
                condition = statuses if condition is None else condition & statuses
            out.append((f"tag:{shard}", *runner(EventModel.query, pk, condition)))
        return out
    indexed = [s for s in q.statuses if s.value in INDEXED_STATUSES]
    common = [s for s in q.statuses if s.value not in INDEXED_STATUSES]
    for shard in range(q.shards):
        for status in indexed:
            pk = keys.status_pk(q.tenant_id, status, shard)
            out.append((f"{status.value}:{shard}", *runner(EventModel.by_status.query, pk)))
        if common or not q.statuses:
            # Common statuses have no index entry (the index is sparse): one read of the time
            # view filtered on all of them at once.
            name = "+".join(s.value for s in common) or "all"
            pk = keys.events_pk(q.tenant_id, shard)
            out.append((f"{name}:{shard}", *runner(EventModel.query, pk, status_filter(common))))
    return out


def _side_by_side(jobs: list[Callable[[], None]]) -> None:
    """Run the queries of one round at once: a page costs its rounds, not its queries."""
    global _POOL
    if len(jobs) == 1:
        jobs[0]()
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="events-query")
    for future in [_POOL.submit(job) for job in jobs]:
        future.result()


def list_events(
    q: EventQuery, *, limit: int, signer: Signer, cursor: str | None = None
) -> EventPage:
    """One page, in at most two rounds of queries run side by side.

    Round one reads about half of each source's share (a filtered source several times that).
    Every row above the highest bound a source stopped at is then known from all sources. If
    those are fewer than `limit`, round two reads every source down to a time estimated from
    round one's density to hold the rest. The page is the known rows, newest first, up to
    `limit`: it can be shorter than `limit` while `next` is set."""
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
    low = keys.iso_ms(q.range.start)
    high = keys.iso_ms(q.range.end) + _TOP
    sources = [
        _Source(name, fetch, positions.get(name, "") if positions is not None else high, filtered)
        for name, fetch, filtered in _sources(q)
        if positions is None or name in positions
    ]
    start_upper = {s.name: s.upper for s in sources}
    read = requests = rounds = 0

    def round_of(wanted: dict[str, tuple[str, int]]) -> None:
        nonlocal read, requests, rounds
        results: dict[str, tuple[list[EventModel], int, str | None]] = {}

        def job(source: _Source, lower: str, n: int) -> Callable[[], None]:
            def run() -> None:
                results[source.name] = source.fetch(lower, source.upper, n)

            return run

        by_name = {s.name: s for s in sources}
        _side_by_side([job(by_name[name], lower, n) for name, (lower, n) in wanted.items()])
        rounds += 1
        for name, (lower, _n) in wanted.items():
            source = by_name[name]
            items, scanned, next_upper = results[name]
            read += scanned
            requests += 1
            source.buffer.extend(items)
            if next_upper is not None:
                source.upper, source.more = next_upper, True
            elif lower > low:  # read down to `lower`: what is below it is still to read
                source.upper, source.more = _below(lower), True
            else:
                source.more = False

    def cut() -> str:
        """Rows above this bound are known from every source."""
        live = [s.upper for s in sources if s.more]
        return max(live) if live else ""

    def known() -> list[EventModel]:
        bound = cut()
        return sorted(
            (i for s in sources for i in s.buffer if i.sk > bound), key=lambda i: i.sk, reverse=True
        )

    n = max(1, len(sources))
    # Several sources: round one reads about half of each one's share, to learn how dense they
    # are; round two reads each down to where the page should end. A full share in round one
    # would leave each source's rows below the cut read and not returned (~12 % at 4 shards).
    share = limit if n == 1 else math.ceil(limit / (2 * n)) + 1
    ahead = FILTER_READ_MAX if q.recipient else FILTER_READ_AHEAD  # a recipient: one round
    round_of({s.name: (low, share * (ahead if s.filtered else 1)) for s in sources if s.more})
    ready = known()
    if q.recipient is None and len(ready) < limit and any(s.more for s in sources):
        bound = cut()
        missing = limit - len(ready)
        lower, expect = _page_end(sources, bound, low, _ESTIMATE_SHORT * limit)
        second = [s for s in sources if s.more and s.upper >= lower]  # (a sparse source may
        # be read below `lower` already). Each reads at most a little over its share of what
        # is missing: a wrong estimate ends the page early rather than reading rows twice.
        share_cap = math.ceil(missing * ROUND_TWO_MARGIN / max(1, len(second))) + 1

        def cap(s: _Source) -> int:
            own = math.ceil(expect.get(s.name, 0.0) * ROUND_TWO_MARGIN) + 1
            return min(share_cap, own) if expect else share_cap

        round_of({s.name: (lower, cap(s) * (FILTER_READ_MAX if s.filtered else 1)) for s in second})
        ready = known()
    out = ready[:limit]
    returned_upper: dict[str, str] = {}
    for item in out:
        for source in sources:
            if source.buffer and source.buffer[0] is item:
                source.buffer.pop(0)
                returned_upper[source.name] = _below(item.sk)
                break
    next_positions = {}
    for source in sources:
        if source.buffer:  # read but not returned: continue just below the last one returned
            next_positions[source.name] = (
                returned_upper.get(source.name) or start_upper[source.name]
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
    if q.recipient is not None and out:  # by_recipient entries: read their rows, in order
        found = {(r.pk, r.sk): r for r in EventModel.batch_get([(e.pk, e.sk) for e in out])}
        requests, rounds = requests + math.ceil(len(out) / 100), rounds + 1
        out = [found[(e.pk, e.sk)] for e in out if (e.pk, e.sk) in found]  # gone: erased since
    return EventPage(out, token, read, requests, rounds=rounds)
