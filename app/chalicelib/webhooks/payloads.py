"""What SESami tells a tenant's endpoints: the event types and the JSON payloads.

Every payload has the Standard Webhooks shape, `{"type", "timestamp", "data"}`:

    email.<status>        one SES event for one recipient (email.sent, email.delivered,
                          email.bounced, email.complained, email.opened, email.clicked,
                          email.rejected, email.rendering_failed, email.delivery_delayed,
                          email.subscription). `data`: SESami's event ID (the `id` of GET /events),
                          the SES message ID, SES's event type, the status, the recipient (null
                          for an open or click SES cannot attribute), when it happened, from,
                          subject, the tenant's own tags (not `ses:*`, not `sesami-tenant`) and the
                          status detail (bounce type and diagnostic code, complaint feedback type,
                          link clicked, ...), as GET /events shows them. An open or click also
                          carries `engagement`, who made it (human, apple_privacy, image_proxy,
                          scanner, unknown: see events/engagement.py), and `detail.engagement`
                          and `detail.engagement_reason` (the rule that decided it), the class
                          ingest gave it, as its row in GET /events; null for other events.
    suppression.added     an address was suppressed (a bounce, a complaint, by hand, unsubscribed)
    suppression.removed   an address was removed from the suppression list
    alert.fired           a reputation alert crossed its line (alerts.py)
    alert.resolved        ... and went back under its resolve line
    webhook.test          the dashboard's "send test event" (sent whatever the endpoint's types)

The `webhook-id` of a message is a digest of what it reports (the tenant and SESami's event ID,
say), so the same SES event ingested twice, or retried, is the same message: receivers may
deduplicate on it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.events.engagement import signal_of
from chalicelib.events.messages import event_detail
from chalicelib.events.ses import SesEvent
from chalicelib.events.status import Status

EMAIL_TYPES: dict[Status, str] = {s: f"email.{s.value.lower()}" for s in Status}
SUPPRESSION_ADDED, SUPPRESSION_REMOVED = "suppression.added", "suppression.removed"
ALERT_FIRED, ALERT_RESOLVED = "alert.fired", "alert.resolved"
TEST = "webhook.test"
EVENT_TYPES: tuple[str, ...] = (
    *EMAIL_TYPES.values(),
    SUPPRESSION_ADDED,
    SUPPRESSION_REMOVED,
    ALERT_FIRED,
    ALERT_RESOLVED,
)
# What an endpoint may subscribe to: a type, a family (`email.*`) or everything (`*`).
PATTERNS: tuple[str, ...] = ("*", "email.*", "suppression.*", "alert.*", *EVENT_TYPES)
HIDDEN_TAGS = ("sesami-tenant",)  # SESami's own tag; `ses:*` tags are SES's
MAX_SUBJECT = 256


@dataclass(frozen=True)
class Outgoing:
    """One message for the tenant's endpoints: its ID, type, time, the exact body every attempt
    signs, and the tags an endpoint's tag filter looks at (`name=value`)."""

    webhook_id: str
    type: str
    at: datetime
    body: str
    tag_pairs: frozenset[str] = frozenset()


def matches(patterns: Iterable[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def webhook_id(*parts: str) -> str:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()
    return f"msg_{digest}"


def _body(event_type: str, at: datetime, data: Mapping[str, Any]) -> str:
    document = {"type": event_type, "timestamp": keys.iso_ms(at), "data": data}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)


def visible_tags(tags: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    return {
        name: list(values)
        for name, values in tags.items()
        if not name.startswith("ses:") and name not in HIDDEN_TAGS
    }


def from_ses_event(
    tenant_id: str, event: SesEvent, engagement: Mapping[str, str] | None = None
) -> list[Outgoing]:
    """One message per recipient the event concerns (as GET /events has one row each).
    `engagement`: the class ingest gave an Open or Click (`engagement`, `engagement_reason`);
    without it (a caller that did not classify), the event's own signal."""
    mail = event.mail
    tags = visible_tags(mail.tags)
    pairs = frozenset(f"{k}={v}" for k, vs in tags.items() for v in vs)
    event_type = EMAIL_TYPES[event.status]
    judged = dict(engagement) if engagement else _signal(event)
    out = []
    for index, address in enumerate(event.recipients or (None,)):
        event_id = f"{event.key}:{index:02d}"
        data = {
            "id": event_id,
            "message_id": mail.message_id,
            "event_type": event.event_type.value,
            "status": event.status.value,
            "recipient": address,
            "at": keys.iso_ms(event.timestamp),
            "from": mail.source,
            "subject": (mail.subject or "")[:MAX_SUBJECT] or None,
            "tags": tags,
            "detail": {**event_detail(event, address), **judged},
            "engagement": judged.get("engagement"),
        }
        out.append(
            Outgoing(
                webhook_id(tenant_id, event_id),
                event_type,
                event.timestamp,
                _body(event_type, event.timestamp, data),
                pairs,
            )
        )
    return out


def _signal(event: SesEvent) -> dict[str, str]:
    """The class an Open or Click says of itself (its user agent and address, no timing)."""
    signal = signal_of(event)
    if signal is None:
        return {}
    return {"engagement": signal.engagement.value, "engagement_reason": signal.reason}


def suppression(
    tenant_id: str,
    kind: str,
    address: str,
    *,
    reason: str | None,
    at: datetime,
    by: str | None = None,
    source_message_id: str | None = None,
    cause: str = "",
) -> Outgoing:
    """`kind` is SUPPRESSION_ADDED or SUPPRESSION_REMOVED; `cause` makes the ID unique per change
    (the SES event that caused it, or the change's time)."""
    data = {
        "address": address,
        "reason": reason,
        "by": by,
        "source_message_id": source_message_id,
        "at": keys.iso_ms(at),
    }
    ident = webhook_id(tenant_id, kind, address, cause or keys.iso_ms(at))
    return Outgoing(ident, kind, at, _body(kind, at, data))


def alert(tenant_id: str, kind: str, data: Mapping[str, Any], at: datetime) -> Outgoing:
    """`kind` is ALERT_FIRED or ALERT_RESOLVED; `data` carries the alert's `alert_id`."""
    ident = webhook_id(tenant_id, kind, str(data["alert_id"]))
    return Outgoing(ident, kind, at, _body(kind, at, data))


def sample_event(tenant_id: str, endpoint_id: str, at: datetime) -> Outgoing:
    data = {
        "endpoint_id": endpoint_id,
        "message": "a test event from SESami: your endpoint received and can verify it",
    }
    ident = webhook_id(tenant_id, TEST, endpoint_id, keys.iso_ms(at))
    return Outgoing(ident, TEST, at, _body(TEST, at, data))
