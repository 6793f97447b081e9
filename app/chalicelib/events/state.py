"""The message aggregate: one state per message, folded from its events in any order.

`apply(state, event)` is pure and order-independent for everything it keeps: statuses are decided
by precedence (see `status.py`), first/last times by min/max, counters by addition. Applying the
same set of events in any order yields the same state; deduplication happens before this (an event
is applied at most once, see `store.py`).

Opens and clicks are also kept as facts (`engagement.EngagementLog`) with the earliest delivery
time, so that whether a person or a machine made each one is re-derived from the whole set, not
decided by whichever event came first (see `engagement.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chalicelib.events.engagement import EngagementLog, Signal, fact_of, ms_between, signal_of
from chalicelib.events.ses import Bounce, Click, Delivery, Open, SesEvent, Subscription
from chalicelib.events.status import Status, rank

MAX_LINKS_PER_MESSAGE = 50  # distinct links kept per message; more are counted in links_other


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


def _merge_tags(
    old: Mapping[str, tuple[str, ...]], new: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    merged = dict(old)
    for name, values in new.items():
        merged[name] = tuple(sorted(set(merged.get(name, ())) | set(values)))
    return merged


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
    return MessageState(
        message_id=mail.message_id,
        source=mail.source,
        subject=mail.subject,
        sent_at=mail.timestamp,
        destination=mail.destination,
        tags=_merge_tags({}, mail.tags),
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
        state = replace(state, tags=_merge_tags(state.tags, event.mail.tags))

    event_rank = _event_rank(event)
    recipients = dict(state.recipients)
    for address in event.recipients:
        recipients[address] = _apply_recipient(recipients.get(address), event, event_rank)

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
