"""The message aggregate: one state per message, folded from its events in any order.

`apply(state, event)` is pure and order-independent for everything it keeps: statuses are decided
by precedence (see `status.py`), first/last times by min/max, counters by addition. Applying the
same set of events in any order yields the same state; deduplication happens before this (an event
is applied at most once, see `store.py`). Past a bound (50 links, 50 recipients), which ones are
kept by name depends on arrival order (the first ones); the totals and the counts of what was
left out do not.

Opens and clicks are also kept as facts (`engagement.EngagementLog`) with the earliest delivery
time, so that whether a person or a machine made each one is re-derived from the whole set, not
decided by whichever event came first (see `engagement.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.core.item_size import compact_json
from chalicelib.events.engagement import EngagementLog, Signal, fact_of, ms_between, signal_of
from chalicelib.events.ses import Bounce, Click, Delivery, Open, SesEvent, Subscription
from chalicelib.events.status import Status, rank

# Bounds that keep the aggregate item far under DynamoDB's 400 KB whatever its events carry (the
# parser bounds each event: 50 addresses of 320 characters, 50 tags of 256 + 256, links cut to
# 200 printable ASCII characters by events/links.py). What a bound leaves out is counted, never
# dropped silently: `links_other` clicks, `recipients_other` recipient events, `tags_dropped`
# tag values. tests/events/test_aggregate_bounds.py builds the worst case and sizes the item.
MAX_LINKS_PER_MESSAGE = 50  # distinct links kept per message; more are counted in links_other
MAX_RECIPIENTS_PER_MESSAGE = 50  # SES's own limit per message; more are counted
MAX_TAG_BYTES = 32_000  # the tags document, as stored (50 SES tags of 256 + 256 fit)


@dataclass(frozen=True)
class RecipientState:
    status: Status
    rank: int
    status_at: datetime
    opens: int = 0
    clicks: int = 0
    first_open_at: datetime | None = None
    last_open_at: datetime | None = None
    bounce_type: str | None = None
    unsubscribed: bool = False


@dataclass(frozen=True)
class MessageState:
    message_id: str
    source: str
    subject: str | None
    sent_at: datetime
    destination: tuple[str, ...]
    tags: dict[str, tuple[str, ...]]
    status: Status
    rank: int
    status_at: datetime
    recipients: dict[str, RecipientState] = field(default_factory=dict)
    events: int = 0
    opens: int = 0
    clicks: int = 0
    first_open_at: datetime | None = None
    last_open_at: datetime | None = None
    last_click_at: datetime | None = None
    links: dict[str, int] = field(default_factory=dict)
    links_other: int = 0
    recipients_other: int = 0  # events to an address past MAX_RECIPIENTS_PER_MESSAGE, each once
    tags_dropped: int = 0  # tag values past MAX_TAG_BYTES (the most any one event brought)
    delivered_at: datetime | None = None  # the earliest Delivery: what timing rules measure from
    engagement: EngagementLog = field(default_factory=EngagementLog)

    @property
    def reference_ms(self) -> int:
        """Milliseconds from the send to the earliest delivery (0 while none is known)."""
        if self.delivered_at is None:
            return 0
        return ms_between(self.sent_at, self.delivered_at)


def _min(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _max(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def _json_bytes(text: str) -> int:
    """An upper bound of the bytes `text` takes in the stored JSON (with its quotes)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2  # nothing JSON escapes: the text between its quotes
    return len(compact_json(text).encode())


def _merge_tags(
    old: Mapping[str, tuple[str, ...]], new: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, tuple[str, ...]], int]:
    """The union of two tag maps, kept in name and value order within MAX_TAG_BYTES, and how
    many values did not fit. The same union gives the same result in any order."""
    union: dict[str, set[str]] = {name: set(values) for name, values in old.items()}
    for name, values in new.items():
        union.setdefault(name, set()).update(values)
    merged: dict[str, tuple[str, ...]] = {}
    used, dropped = 2, 0  # "{}"
    for name in sorted(union):
        values = tuple(sorted(union[name]))
        cost = _json_bytes(name) + 4  # ':[' ']' ','
        if used + cost > MAX_TAG_BYTES:
            dropped += max(1, len(values))
            continue
        kept: list[str] = []
        for value in values:
            more = _json_bytes(value) + 1
            if used + cost + more > MAX_TAG_BYTES:
                dropped += 1
                continue
            kept.append(value)
            cost += more
        if kept or not values:
            merged[name] = tuple(kept)
            used += cost
    return merged, dropped


def _wins(new_rank: int, new_at: datetime, old_rank: int, old_at: datetime) -> bool:
    """Higher rank wins; at equal rank the earlier event wins, so the result is order-free."""
    return new_rank > old_rank or (new_rank == old_rank and new_at < old_at)


def _event_rank(event: SesEvent) -> int:
    detail = event.detail
    permanent = isinstance(detail, Bounce) and detail.permanent
    return rank(event.status, permanent_bounce=permanent)


def _bounce_type(event: SesEvent) -> str | None:
    return event.detail.bounce_type if isinstance(event.detail, Bounce) else None


def new_state(event: SesEvent) -> MessageState:
    """The state before `event` is applied. Its status is the event's own, not SENT: a message
    known only from a Subscription event (rank below SENT) shows SUBSCRIPTION, since SESami has
    seen no Send event for it. Any event of rank SENT or above outranks it, in any order, so
    only that case differs from starting at SENT."""
    mail = event.mail
    tags, dropped = _merge_tags({}, mail.tags)
    return MessageState(
        message_id=mail.message_id,
        source=mail.source,
        subject=mail.subject,
        sent_at=mail.timestamp,
        destination=mail.destination[:MAX_RECIPIENTS_PER_MESSAGE],  # the parser refuses more
        tags=tags,
        tags_dropped=dropped,
        status=event.status,
        rank=_event_rank(event),
        status_at=event.timestamp,
    )


def apply(
    state: MessageState | None, event: SesEvent, *, signal: Signal | None = None
) -> MessageState:
    """Fold one (not yet applied) event into the message's state. `signal`: the open's or
    click's own signal, if the caller has it already (else it is classified here)."""
    if state is None:
        state = new_state(event)
    if event.mail.subject and not state.subject:
        state = replace(state, subject=event.mail.subject)
    if any(state.tags.get(k) != v for k, v in event.mail.tags.items()):
        # SES adds tags after sending (ses:outgoing-ip on a Delivery): keep the union.
        tags, dropped = _merge_tags(state.tags, event.mail.tags)
        state = replace(state, tags=tags, tags_dropped=max(state.tags_dropped, dropped))

    event_rank = _event_rank(event)
    recipients = dict(state.recipients)
    recipients_other = state.recipients_other
    for address in event.recipients:
        if address in recipients or len(recipients) < MAX_RECIPIENTS_PER_MESSAGE:
            recipients[address] = _apply_recipient(recipients.get(address), event, event_rank)
        else:
            recipients_other += 1

    status, status_rank, status_at = state.status, state.rank, state.status_at
    if _wins(event_rank, event.timestamp, status_rank, status_at):
        status, status_rank, status_at = event.status, event_rank, event.timestamp

    opens, clicks = state.opens, state.clicks
    first_open, last_open, last_click = state.first_open_at, state.last_open_at, state.last_click_at
    links, links_other = state.links, state.links_other
    if event.status is Status.OPENED:
        opens += 1
        first_open, last_open = _min(first_open, event.timestamp), _max(last_open, event.timestamp)
    elif isinstance(event.detail, Click):
        clicks += 1
        last_click = _max(last_click, event.timestamp)
        link = event.detail.link
        if link in links or len(links) < MAX_LINKS_PER_MESSAGE:
            links = {**links, link: links.get(link, 0) + 1}
        else:
            links_other += 1
    delivered_at, log = state.delivered_at, state.engagement
    if isinstance(event.detail, Delivery):
        delivered_at = _min(delivered_at, event.timestamp)
    elif isinstance(event.detail, Open | Click):
        signal = signal or signal_of(event)
        assert signal is not None
        url = event.detail.link if isinstance(event.detail, Click) else None
        log = log.add(fact_of(event, state.sent_at, signal, url if url in links else None))

    return replace(
        state,
        recipients=recipients,
        recipients_other=recipients_other,
        status=status,
        rank=status_rank,
        status_at=status_at,
        events=state.events + 1,
        opens=opens,
        clicks=clicks,
        first_open_at=first_open,
        last_open_at=last_open,
        last_click_at=last_click,
        links=links,
        links_other=links_other,
        delivered_at=delivered_at,
        engagement=log,
    )


def _apply_recipient(
    current: RecipientState | None, event: SesEvent, event_rank: int
) -> RecipientState:
    if current is None:  # as for the message: the first event's own status, not SENT
        current = RecipientState(
            event.status, event_rank, event.timestamp, bounce_type=_bounce_type(event)
        )
    updates: dict[str, Any] = {}
    if _wins(event_rank, event.timestamp, current.rank, current.status_at):
        updates.update(status=event.status, rank=event_rank, status_at=event.timestamp)
        if event.status is Status.BOUNCED:
            updates["bounce_type"] = _bounce_type(event)
    if event.status is Status.OPENED:
        updates.update(
            opens=current.opens + 1,
            first_open_at=_min(current.first_open_at, event.timestamp),
            last_open_at=_max(current.last_open_at, event.timestamp),
        )
    elif event.status is Status.CLICKED:
        updates["clicks"] = current.clicks + 1
    elif isinstance(event.detail, Subscription) and event.detail.unsubscribed_all:
        updates["unsubscribed"] = True
    return replace(current, **updates) if updates else current
