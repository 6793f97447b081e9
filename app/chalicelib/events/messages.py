"""The message state's one reader and writer: `MessageState` <-> the `messages` table's aggregate
item (`message_item`, `state_of`), and the compact per-event facts (`event_detail`) that event
rows and the message timeline keep. Ingest and sending both write aggregates through here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from chalicelib.core import keys
from chalicelib.core.tables import AGGREGATE_SK, MessageModel
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
# rows keep theirs), with shorter diagnostic codes, and counts the others (`recipients_other`).
MAX_TIMELINE_RECIPIENTS = 10
MAX_TIMELINE_DIAGNOSTIC = 200


def _cut(text: str | None, limit: int = MAX_DETAIL_TEXT) -> str | None:
    return text[:limit] if text else text


def event_detail(event: SesEvent, address: str | None) -> dict[str, Any]:
    """The type-specific facts of one event row (`address`: its recipient) or of its timeline
    entry (None), compact. Free text (up to 4 KB each in SES's record) is cut to
    MAX_DETAIL_TEXT characters."""
    d = event.detail
    out: dict[str, Any]
    if isinstance(d, Bounce):
        out = {"bounce_type": d.bounce_type, "bounce_subtype": d.bounce_subtype}
        if address is None:
            for b in d.bounced[:MAX_TIMELINE_RECIPIENTS]:
                out.setdefault("recipients", {})[b.address] = {
                    "status": b.status,
                    "diagnostic_code": _cut(b.diagnostic_code, MAX_TIMELINE_DIAGNOSTIC),
                    "action": b.action,
                }
            out["recipients_other"] = max(0, len(d.bounced) - MAX_TIMELINE_RECIPIENTS) or None
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
            "link_tags": {k: list(v) for k, v in d.link_tags.items()},
            "user_agent": _cut(d.user_agent),
            "ip_address": d.ip_address,
        }
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
        out = {
            "contact_list": d.contact_list,
            "unsubscribed_all": d.unsubscribed_all,
            "topics": dict(d.topics),
        }
    else:
        out = {}
    return {k: v for k, v in out.items() if v not in (None, {}, [])}


def _iso(ts: datetime | None) -> str | None:
    return keys.iso_ms(ts) if ts else None


def _dt(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def message_item(
    pk: str, state: MessageState, current: MessageModel | None, expires: datetime
) -> MessageModel:
    item = MessageModel(
        pk,
        AGGREGATE_SK,
        message_id=state.message_id,
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
        "recipients": {a: _recipient_doc(r) for a, r in state.recipients.items()},
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


def _recipient_doc(r: RecipientState) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": r.status.value,
        "rank": r.rank,
        "status_at": keys.iso_ms(r.status_at),
    }
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
            status=Status(doc["status"]),
            rank=int(doc["rank"]),
            status_at=datetime.fromisoformat(doc["status_at"]),
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
        message_id=item.message_id,
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
