"""What ingest writes about human and machine engagement, beside what it always writes.

- The event's own row and timeline entry carry its class: the row the verdict at arrival (what
  the events list shows and filters on), the entry the signal, from which GET /messages/{id}
  re-derives the final verdict.
- The counters follow the final verdicts: folding an event may change the verdict of earlier
  opens and clicks of its message (a late Delivery, the second click of a burst), and the
  corrections go into the same transaction as the aggregate, so they are applied exactly once,
  together with the version of the aggregate they follow from.
- The counter changes are plain sums (`CounterChange`), so the changes of many events committed
  in one transaction fold into one update per counter item (`fold`): a batch of a hundred
  events of one hour and shard updates its hour's counter once, not a hundred times.

Bounded: the corrections touch at most `MAX_EXTRA_HOURS` other hourly counters and
`MAX_EXTRA_LINKS` other links (each a day and its month's rollup). Past that (a pathological
message only: verdicts change near its delivery or within a burst, a few seconds of it), the
extra corrections go into the event's own hour (totals stay right, the hour they show in moves)
or, for links, are dropped and counted in the `EngagementCorrectionsDropped` metric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.update import Action
from pynamodb.models import Model

from chalicelib.core import keys, logs
from chalicelib.core.tables import CounterModel, LinkCounterModel
from chalicelib.events.engagement import (
    EPOCH,
    NAMES,
    CounterDeltas,
    Signal,
    assess,
    counter_deltas,
    day_start,
    fact_of,
    hour_start,
    signal_of,
)
from chalicelib.events.ses import Click, Delivery, SesEvent
from chalicelib.events.state import MessageState

MAX_EXTRA_HOURS = 8
MAX_EXTRA_LINKS = 8


@dataclass
class Judged:
    row_fields: dict[str, str] = field(default_factory=dict)  # on the event's rows
    entry_fields: dict[str, str] = field(default_factory=dict)  # on its timeline entry
    deltas: CounterDeltas | None = None

    @property
    def engagement(self) -> str | None:
        return self.row_fields.get("engagement")


def judge(
    before: MessageState | None, after: MessageState, event: SesEvent, signal: Signal | None
) -> Judged:
    """The class of `event` (an Open or Click) and what folding it changed in the counters."""
    if signal is None:
        moved = isinstance(event.detail, Delivery) and (
            before is None or before.delivered_at != after.delivered_at
        )
        if not moved or not after.engagement.facts:
            return Judged()  # most events: nothing to judge, nothing derived
    log_before = (before.engagement, before.reference_ms) if before is not None else None
    log_after = (after.engagement, after.reference_ms)
    if signal is None:
        return Judged(deltas=counter_deltas(after.sent_at, log_before, log_after, None))
    url = event.detail.link if isinstance(event.detail, Click) else None
    fact = fact_of(event, after.sent_at, signal, url if url in after.links else None)
    deltas = counter_deltas(after.sent_at, log_before, log_after, fact)
    verdict = deltas.verdict
    assert verdict is not None  # an added fact always has one
    return Judged(
        row_fields={
            "engagement": NAMES[verdict.code],  # the class's name (an Enum's .value is slower)
            "engagement_reason": verdict.timing or signal.reason,
        },
        entry_fields={"signal": NAMES[signal.code], "signal_reason": signal.reason},
        deltas=deltas,
    )


def judged_again(state_now: Callable[[], MessageState | None], event: SesEvent) -> dict[str, str]:
    """The class of an Open or Click already recorded (a redelivery), as its message's aggregate
    judges it now: what its webhook carries when the first delivery's enqueue failed. (The class
    at arrival is on the event's rows, which a duplicate does not read; they differ only when a
    later event of the message changed the verdict.) Empty for other events, whose duplicates
    never read the aggregate (`state_now`)."""
    signal = signal_of(event)
    if signal is None:
        return {}
    state = state_now()
    if state is None:
        return {"engagement": signal.engagement.value, "engagement_reason": signal.reason}
    url = event.detail.link if isinstance(event.detail, Click) else None
    fact = fact_of(event, state.sent_at, signal, url if url in state.links else None)
    verdict = assess(state.engagement, state.reference_ms).verdict(fact)
    return {
        "engagement": verdict.engagement.value,
        "engagement_reason": verdict.timing or signal.reason,
    }


@dataclass
class CounterChange:
    """What one transaction adds to one counter item (hourly counts or a link's day or month),
    and the attributes it sets (the item's expiry, a link's URL)."""

    model: type[Model]
    pk: str
    sk: str
    adds: Counter[str] = field(default_factory=Counter)
    sets: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model.Meta.table_name, self.pk, self.sk)

    def item(self) -> Model:
        return self.model(self.pk, self.sk)

    def actions(self) -> list[Action]:
        out = _adds(self.model, self.adds)
        out += [getattr(self.model, name).set(value) for name, value in sorted(self.sets.items())]
        return out


def fold(changes: Iterable[CounterChange], hours_pk: str | None = None) -> list[CounterChange]:
    """One change per counter item: the sums added up, the latest expiry kept (a URL set is the
    same for every change of its item). Changes that add nothing are left out. `hours_pk` moves
    every hourly counter change into that partition (one of the tenant's write shards; readers
    sum them all): a transaction of events of every shard then updates one counter item an
    hour, not one a shard and hour."""
    folded: dict[tuple[str, str, str], CounterChange] = {}
    for change in changes:
        if hours_pk is not None and change.model is CounterModel:
            change = CounterChange(CounterModel, hours_pk, change.sk, change.adds, change.sets)
        into = folded.get(change.key)
        if into is None:
            folded[change.key] = CounterChange(
                change.model, change.pk, change.sk, Counter(change.adds), dict(change.sets)
            )
            continue
        into.adds.update(change.adds)
        for name, value in change.sets.items():
            held = into.sets.get(name)
            into.sets[name] = value if held is None or name != "expires_at" else max(held, value)
    return [c for c in folded.values() if any(c.adds.values())]


def counter_updates(
    tenant_id: str,
    shard: int,
    event: SesEvent,
    own_counts: Counter[str],
    deltas: CounterDeltas | None,
    expiry: Callable[[datetime], datetime],
) -> list[CounterChange]:
    """The counter items the event's transaction updates: its own hour (its status,
    `own_counts`, and its hour's corrections), its link's day for a click, and the other
    corrected ones."""
    own_sk = keys.counter_sk(event.timestamp)
    own_hour = (event.timestamp - EPOCH) // timedelta(hours=1)
    hours = dict(deltas.hours) if deltas else {}
    own = Counter(own_counts)
    own.update(hours.pop(own_hour, {}))
    by_hour = {
        keys.counter_sk(start): (start, Counter(counts))
        for start, counts in ((hour_start(h), c) for h, c in hours.items())
    }
    extra = sorted(by_hour.items())
    for _, (_, counts) in extra[MAX_EXTRA_HOURS:]:
        own.update(counts)  # too many hours: the totals stay right in the event's own hour
    pk = keys.counter_pk(tenant_id, shard)
    updates = [
        CounterChange(
            CounterModel, pk, own_sk, _nonzero(own), {"expires_at": expiry(event.timestamp)}
        )
    ]
    for sk, (hour, counts) in extra[:MAX_EXTRA_HOURS]:
        if any(counts.values()):
            updates.append(
                CounterChange(CounterModel, pk, sk, _nonzero(counts), {"expires_at": expiry(hour)})
            )

    links: dict[tuple[str, str], tuple[datetime, str, Counter[str]]] = {}
    for (day_number, link_url), split in (deltas.links if deltas else {}).items():
        start = day_start(day_number)
        links[(keys.day_of(start), link_url)] = (start, link_url, Counter(split))
    rows = _LinkRows(tenant_id, shard)
    if isinstance(event.detail, Click):
        url = event.detail.link
        _, _, mine = links.pop((keys.day_of(event.timestamp), url), (None, url, Counter()))
        rows.add(event.timestamp, url, mine + Counter(clicks=1))
    others = sorted(links.items())
    if dropped := sum(1 for _ in others[MAX_EXTRA_LINKS:]):
        logs.metric("EngagementCorrectionsDropped", dropped, {"Counter": "links"})
    for _, (day, other_url, split_counts) in others[:MAX_EXTRA_LINKS]:
        # The items may be another shard's: this one's are created, readers sum every shard.
        rows.add(day, other_url, split_counts)
    return updates + rows.updates(expiry)


class _LinkRows:
    """The link counter items one event changes: each link's day, in its month's partition (a
    year of GET /links reads 13 partitions a shard, not 366). There is no month total: it was
    one more transactional update a click (2 write units) for reads that are five times cheaper
    than writes and rare. The changes are merged per item (a transaction names each once)."""

    def __init__(self, tenant_id: str, shard: int) -> None:
        self._tenant, self._shard = tenant_id, shard
        self._items: dict[tuple[str, str], tuple[str, datetime, Counter[str]]] = {}

    def add(self, day: datetime, url: str, counts: Counter[str]) -> None:
        if not any(counts.values()):
            return
        pk = keys.link_pk(self._tenant, day, self._shard)
        _, _, total = self._items.setdefault(
            (pk, keys.link_day_sk(day, url)), (url, day, Counter())
        )
        total.update(counts)

    def updates(self, expiry: Callable[[datetime], datetime]) -> list[CounterChange]:
        return [
            CounterChange(
                LinkCounterModel,
                pk,
                sk,
                _nonzero(counts),
                {"url": url, "expires_at": expiry(at)},
            )
            for (pk, sk), (url, at, counts) in self._items.items()
            if any(counts.values())
        ]


def _nonzero(counts: Counter[str]) -> Counter[str]:
    return Counter({name: n for name, n in counts.items() if n})


def _adds(model: type[Model], counts: Counter[str]) -> list[Action]:
    return [getattr(model, name).add(n) for name, n in sorted(counts.items()) if n]


# ------------------------------------------------------------------ the entry's counter changes
#
# Each timeline entry carries the counter changes its event makes (`cc`, compact JSON), and the
# messages table's stream adds them to the counters (ingest/counting.py), outside the ingest
# request path. Keys are relative: the tenant and the shard are the entry's, the expiry follows
# from the hour or day and the retention. An hour: ["h", "2026-11-02T10", {"DELIVERED": 1}];
# a link's day: ["l", "2026-11-02", url, {"clicks": 1, "human": 1}]. `own`, the entry's event's
# hour and status, makes the usual case shorter still: the event's own hour is ["h", {...}],
# and changes that are only its status in its hour, n times, are the number n (most entries:
# 1 byte instead of ~35, kept for the table's whole retention).

Own = tuple[str, str]  # (keys.hour_of(the event's time), its status)


def encode_changes(changes: Iterable[CounterChange], own: Own | None = None) -> Any:
    out: list[list[Any]] = []
    for change in changes:
        adds = {name: n for name, n in sorted(change.adds.items()) if n}
        if not adds:
            continue
        if change.model is CounterModel:
            hour = change.sk.removeprefix("H#")
            out.append(["h", adds] if own is not None and hour == own[0] else ["h", hour, adds])
        else:
            out.append(["l", change.sk.split("#")[1], str(change.sets["url"]), adds])
    if own is not None and len(out) == 1 and len(out[0]) == 2 and list(out[0][1]) == [own[1]]:
        return out[0][1][own[1]]
    return out


def decode_changes(
    encoded: Any, tenant_id: str, shard: int, retention: timedelta, own: Own | None = None
) -> list[CounterChange]:
    """The changes an entry's `cc` names (what is not a well-formed change is left out: the
    caller counts the entry as malformed when nothing is left). `own` as encode_changes."""
    out: list[CounterChange] = []
    if isinstance(encoded, int) and not isinstance(encoded, bool):
        encoded = [["h", {own[1]: encoded}]] if own is not None else []
    for change in encoded if isinstance(encoded, list) else ():
        try:
            if change[0] == "h":
                if len(change) == 2 and own is not None:
                    (_, adds), hour = change, own[0]
                else:
                    _, hour, adds = change
                start = datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=EPOCH.tzinfo)
                sk, expires = keys.counter_sk(start), start + timedelta(hours=1) + retention
                out.append(
                    CounterChange(
                        CounterModel,
                        keys.counter_pk(tenant_id, shard),
                        sk,
                        Counter({str(k): int(v) for k, v in adds.items()}),
                        {"expires_at": expires},
                    )
                )
            elif change[0] == "l":
                _, day, url, adds = change
                start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=EPOCH.tzinfo)
                out.append(
                    CounterChange(
                        LinkCounterModel,
                        keys.link_pk(tenant_id, start, shard),
                        keys.link_day_sk(start, str(url)),
                        Counter({str(k): int(v) for k, v in adds.items()}),
                        {"url": str(url), "expires_at": start + timedelta(days=1) + retention},
                    )
                )
        except (TypeError, ValueError, AttributeError):
            continue
    return out


def minus(changes: Iterable[CounterChange]) -> list[CounterChange]:
    """The changes undone (what a rewritten entry's old counter changes take back)."""
    return [
        CounterChange(c.model, c.pk, c.sk, Counter({k: -n for k, n in c.adds.items()}), c.sets)
        for c in changes
    ]
