"""The message state's one reader and writer: `MessageState` <-> the `messages` table's aggregate
item (`message_item`, `state_of`), the compact per-event facts (`event_detail`) that event rows
and the message timeline keep, and the timeline entry itself (`timeline_entry`, with its reader
`entry_recipients`). Ingest and sending both write aggregates through here.

Every item one event makes stays under 16 KB whatever SES reports (50 recipients of 320
characters, 4 KB diagnostic codes, 50 link tags): a timeline entry names its recipients only
when they are not the message's destination (the usual case is that they are: the reader takes
the aggregate's), and then at most MAX_ENTRY_RECIPIENTS of them within MAX_ENTRY_RECIPIENT_BYTES,
the others counted (`recipients_more`); a Bounce's per-recipient facts, link tags and topics are
kept within a byte budget each, the rest counted (`recipients_other`, `link_tags_other`,
`topics_other`). Nothing is dropped without a count."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.item_size import compact_json
from chalicelib.core.tables import AGGREGATE_SK, MessageEventModel, MessageModel
from chalicelib.events.engagement import log_from_doc, log_to_doc
from chalicelib.events.ses import (
    Bounce,
    Click,
    Complaint,
    Delivery,
    DeliveryDelay,
    Open,
    Reject,
    RenderingFailure,
    SesEvent,
    Subscription,
)
from chalicelib.events.state import MessageState, RecipientState
from chalicelib.events.status import Status

MAX_DETAIL_TEXT = 1_000  # characters of a diagnostic code, user agent, SMTP response kept
# A Bounce's timeline entry keeps the facts of its first recipients only (each recipient's own
# rows keep theirs), with shorter diagnostic codes, within a byte budget (compact JSON; the first
# recipient's always), and counts the others (`recipients_other`).
MAX_TIMELINE_RECIPIENTS = 10
MAX_TIMELINE_DIAGNOSTIC = 200
MAX_TIMELINE_BOUNCE_BYTES = 6_000
# A click's link tags and a subscription's topics (SES bounds neither tightly): kept within this
# many bytes of compact JSON, in name order, the others counted.
MAX_DETAIL_MAP_BYTES = 2_000
# The recipients a timeline entry names when they are not the message's destination.
MAX_ENTRY_RECIPIENTS = 10
MAX_ENTRY_RECIPIENT_BYTES = 3_000  # UTF-8, as DynamoDB counts a string set


def _within(
    items: dict[str, Any], budget: int, *, first: bool = False
) -> tuple[dict[str, Any], int]:
    """The leading entries of `items` whose compact JSON fits `budget` bytes (the first one
    whatever its size when `first`), and how many were left out."""
    kept: dict[str, Any] = {}
    used = 2
    for n, (key, value) in enumerate(items.items()):
        size = len(compact_json({key: value}).encode()) - 1  # its "key":value and a comma
        if used + size > budget and not (first and n == 0):
            return kept, len(items) - n
        kept[key] = value
        used += size
    return kept, 0


def _cut(text: str | None, limit: int = MAX_DETAIL_TEXT) -> str | None:
    return text[:limit] if text else text


# Facts of the device and the transport: on the timeline entry (the message page) only, not on
# the event's rows (the activity list, its CSV): a user agent is ~120 bytes on most opens and
# clicks, kept a second time for the whole retention, and the list shows none of them.
TIMELINE_ONLY = frozenset({"user_agent", "ip_address", "smtp_response", "processing_time_ms"})


def row_detail(event: SesEvent, address: str | None) -> dict[str, Any]:
    """The facts of one event row (`address`: its recipient, None on a row without one):
    event_detail's, less TIMELINE_ONLY."""
    return {k: v for k, v in event_detail(event, address).items() if k not in TIMELINE_ONLY}


def event_detail(event: SesEvent, address: str | None) -> dict[str, Any]:
    """The type-specific facts of one event row (`address`: its recipient) or of its timeline
    entry (None), compact. Free text (up to 4 KB each in SES's record) is cut to
    MAX_DETAIL_TEXT characters."""
    d = event.detail
    out: dict[str, Any]
    if isinstance(d, Bounce):
        out = {"bounce_type": d.bounce_type, "bounce_subtype": d.bounce_subtype}
        if address is None:
            facts = {
                b.address: {
                    k: v
                    for k, v in (
                        ("status", b.status),
                        ("diagnostic_code", _cut(b.diagnostic_code, MAX_TIMELINE_DIAGNOSTIC)),
                        ("action", b.action),
                    )
                    if v is not None
                }
                for b in d.bounced[:MAX_TIMELINE_RECIPIENTS]
            }
            out["recipients"], other = _within(facts, MAX_TIMELINE_BOUNCE_BYTES, first=True)
            out["recipients_other"] = other + max(0, len(d.bounced) - len(facts)) or None
        for b in d.bounced if address is not None else ():
            if b.address == address:
                out.update(
                    status=b.status, diagnostic_code=_cut(b.diagnostic_code), action=b.action
                )
    elif isinstance(d, Complaint):
        out = {
            "feedback_type": d.feedback_type,
            "subtype": d.subtype,
            "user_agent": _cut(d.user_agent),
        }
    elif isinstance(d, Open):
        out = {"user_agent": _cut(d.user_agent), "ip_address": d.ip_address}
    elif isinstance(d, Click):
        out = {
            "link": d.link,
            "user_agent": _cut(d.user_agent),
            "ip_address": d.ip_address,
        }
        tags = {k: list(v) for k, v in sorted(d.link_tags.items())}
        out["link_tags"], left = _within(tags, MAX_DETAIL_MAP_BYTES)
        out["link_tags_other"] = left or None
    elif isinstance(d, Delivery):
        out = {"smtp_response": _cut(d.smtp_response), "processing_time_ms": d.processing_time_ms}
    elif isinstance(d, DeliveryDelay):
        mine_delay = next((r for r in d.delayed if r.address == address), None)
        out = {
            "delay_type": d.delay_type,
            "expiration_time": keys.iso_ms(d.expiration_time) if d.expiration_time else None,
            "diagnostic_code": _cut(mine_delay.diagnostic_code) if mine_delay else None,
        }
    elif isinstance(d, Reject):
        out = {"reason": _cut(d.reason)}
    elif isinstance(d, RenderingFailure):
        out = {"error_message": _cut(d.error_message), "template_name": d.template_name}
    elif isinstance(d, Subscription):
        out = {"contact_list": d.contact_list, "unsubscribed_all": d.unsubscribed_all}
        topics = dict(sorted(d.topics.items()))
        out["topics"], left = _within(topics, MAX_DETAIL_MAP_BYTES)
        out["topics_other"] = left or None
    else:
        out = {}
    return {k: v for k, v in out.items() if v not in (None, {}, [])}


def timeline_entry(
    pk: str,
    event: SesEvent,
    destination: tuple[str, ...],
    *,
    shard: int,
    extra: Mapping[str, Any],
    expires_at: datetime,
) -> MessageEventModel:
    """The event's entry in its message's partition (the timeline, and ingest's deduplication
    record), as ingest stores it: `extra` joins its detail (the engagement signal, the caps)."""
    named = set(event.recipients)
    stored: set[str] | None = None
    more: int | None = None
    if named == set(destination) and named:
        to_destination: bool | None = True
    else:
        to_destination = None
        kept: list[str] = []
        used = 0
        for address in sorted(named):
            size = len(address.encode())
            full = used + size > MAX_ENTRY_RECIPIENT_BYTES
            if len(kept) == MAX_ENTRY_RECIPIENTS or (kept and full):
                break
            kept.append(address)
            used += size
        stored = set(kept) or None
        more = len(named) - len(kept) or None
    return MessageEventModel(
        pk,
        keys.message_event_sk(event.timestamp, event.key),  # its key and time: key(), at()
        event_type=event.event_type.value,  # its status: STATUS_OF[event_type]
        recipients=stored,
        recipients_more=more,
        to_destination=to_destination,
        shard=shard or None,
        detail={**event_detail(event, None), **extra} or None,
        expires_at=expires_at,
    )


def entry_recipients(entry: MessageEventModel, destination: list[str]) -> tuple[list[str], int]:
    """The recipients a timeline entry names, and how many more it concerns but does not name:
    the message's destination (the aggregate's, an erased address already gone from it) when the
    entry says so, else the ones it stored."""
    if entry.for_destination():
        return sorted(destination), 0
    return sorted(entry.recipients or ()), int(entry.recipients_more or 0)


def _iso(ts: datetime | None) -> str | None:
    return keys.iso_ms(ts) if ts else None


def _dt(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def message_item(
    pk: str, state: MessageState, current: MessageModel | None, expires: datetime
) -> MessageModel:
    item = MessageModel(
        pk,
        AGGREGATE_SK,  # the message ID is the key's: MessageModel.message()
        source=state.source,
        subject=state.subject,
        sent_at=keys.iso_ms(state.sent_at),
        status=state.status.value,
        status_rank=state.rank,
        status_at=keys.iso_ms(state.status_at),
        events=state.events,
        opens=state.opens,
        clicks=state.clicks,
        body=_body(state),
        expires_at=expires,
    )
    if current is not None:
        item.version = current.version
    return item


def _body(state: MessageState) -> dict[str, Any]:
    """The aggregate's document. Empty and zero fields are left out (readers default them):
    every byte is written again with each event of the message."""
    body: dict[str, Any] = {
        "destination": list(state.destination),
        "tags": {k: list(v) for k, v in state.tags.items()},
        "first_open_at": _iso(state.first_open_at),
        "last_open_at": _iso(state.last_open_at),
        "last_click_at": _iso(state.last_click_at),
        "links": state.links,
        # What the bounds of events/state.py left out, counted.
        "links_other": state.links_other,
        "recipients_other": state.recipients_other,
        "tags_dropped": state.tags_dropped,
        **_engagement_doc(state),
        "recipients": {a: _recipient_doc(r, state) for a, r in state.recipients.items()},
    }
    keep = ("destination", "tags", "recipients")  # read by other code without defaults
    return {k: v for k, v in body.items() if k in keep or v not in (None, 0, {})}


def _engagement_doc(state: MessageState) -> dict[str, Any]:
    """The facts every verdict is derived from (engagement.log_to_doc's compact form). The counts
    by class are not stored: readers derive them from these (`engagement.assess`), since every
    byte is written again with each event and an aggregate past 1 KB costs twice as much."""
    log = state.engagement
    delivered = state.reference_ms if state.delivered_at is not None else None
    if not (log.facts or log.overflow or delivered is not None):
        return {}
    return {"engagement": log_to_doc(log, state.links, delivered)}


def _recipient_doc(r: RecipientState, state: MessageState) -> dict[str, Any]:
    """A recipient's state; its status, rank and time only where they are not the message's (a
    message to one address, or to several all at one status: readers take the item's)."""
    doc: dict[str, Any] = {}
    if (r.status, r.rank, r.status_at) != (state.status, state.rank, state.status_at):
        doc.update(status=r.status.value, rank=r.rank, status_at=keys.iso_ms(r.status_at))
    if r.opens:
        doc.update(
            opens=r.opens, first_open_at=_iso(r.first_open_at), last_open_at=_iso(r.last_open_at)
        )
    if r.clicks:
        doc["clicks"] = r.clicks
    if r.bounce_type:
        doc["bounce_type"] = r.bounce_type
    if r.unsubscribed:
        doc["unsubscribed"] = True
    return doc


def state_of(item: MessageModel | None) -> MessageState | None:
    if item is None:
        return None
    body: Mapping[str, Any] = item.body or {}
    links = dict(body.get("links", {}))
    log, delivered = log_from_doc(body.get("engagement"), links)
    sent_at = datetime.fromisoformat(item.sent_at)
    recipients = {
        address: RecipientState(
            status=Status(doc.get("status", item.status)),
            rank=int(doc.get("rank", item.status_rank)),
            status_at=datetime.fromisoformat(doc.get("status_at", item.status_at)),
            opens=int(doc.get("opens", 0)),
            clicks=int(doc.get("clicks", 0)),
            first_open_at=_dt(doc.get("first_open_at")),
            last_open_at=_dt(doc.get("last_open_at")),
            bounce_type=doc.get("bounce_type"),
            unsubscribed=bool(doc.get("unsubscribed", False)),
        )
        for address, doc in body.get("recipients", {}).items()
    }
    return MessageState(
        message_id=item.message(),
        source=item.source or "",
        subject=item.subject,
        sent_at=sent_at,
        destination=tuple(body.get("destination", ())),
        tags={k: tuple(v) for k, v in body.get("tags", {}).items()},
        status=Status(item.status),
        rank=int(item.status_rank),
        status_at=datetime.fromisoformat(item.status_at),
        recipients=recipients,
        events=int(item.events),
        opens=int(item.opens),
        clicks=int(item.clicks),
        first_open_at=_dt(body.get("first_open_at")),
        last_open_at=_dt(body.get("last_open_at")),
        last_click_at=_dt(body.get("last_click_at")),
        links=links,
        links_other=int(body.get("links_other", 0)),
        recipients_other=int(body.get("recipients_other", 0)),
        tags_dropped=int(body.get("tags_dropped", 0)),
        delivered_at=sent_at + timedelta(milliseconds=delivered) if delivered is not None else None,
        engagement=log,
    )
